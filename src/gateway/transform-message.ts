/**
 * The CPU-heavy part of one message's way through the gateway, for one direction:
 * inbound, each recipient group's copy (plan-inbound.ts, process-inbound.ts:
 * decrypt, verify, label); outbound, the plan (plan-outbound.ts, the one place that
 * decides) and its copies (process-outbound.ts: sign, encrypt, DKIM); mail passing
 * through unchanged. It runs in a worker thread of the gateway's pool
 * (transform-worker.ts) or, with no workers, on the main thread; either way the
 * result is plain data (structured-clonable): the groups of recipients with their
 * copy or why there is none, and what the main thread counts. Sending, holding,
 * bouncing and replying stay with the main thread (handle-message.ts).
 *
 * Failures become groups, never exceptions: a message outbound mail cannot be signed
 * or encrypted from (malformed, over a limit) is refused for good (5xx, never passed
 * on unsigned); anything else (the store down, a bug) defers (4xx).
 */
import { isKakitomeError } from '../errors.ts';
import type { MethodResult } from '../dkim/authenticate-sender.ts';
import type { RecipientDecision } from '../policy/decide-recipient.ts';
import type { Direction } from './classify-recipients.ts';
import type { GatewayContext } from './gateway-context.ts';
import { planInbound } from './plan-inbound.ts';
import { planOutbound } from './plan-outbound.ts';
import { isForeignField, processInbound } from './process-inbound.ts';
import { processOutbound } from './process-outbound.ts';
import { processInboundStream } from './process-inbound-stream.ts';
import { processOutboundStream } from './process-outbound-stream.ts';
import type { SpooledMessage, SpoolPlace } from './spooled-message.ts';
import type { ContentSpool } from '../cms/stream/content-spool.ts';
import type { ResolvedPolicy } from '../policy/resolve-policy.ts';
import type { PolicySettings } from '../policy/policy-settings.ts';
import type { SmimeAuthentication } from './authentication-results.ts';
import type { OutboundPlan } from './plan-outbound.ts';
import { readHeaderFields, rewriteHeaderSection } from './rewrite-header-section.ts';
import { isMessageVerdictError } from './smime-result.ts';

export interface Group {
  direction: Direction;
  recipients: string[];
  action: string;
  /** The copy: in memory, or (a large message) a spool. */
  message?: Buffer | SpooledMessage;
  /** Set when no copy could be made: the outcome for every recipient of the group. */
  failure?: GroupFailure;
  /**
   * Policy: outbound, encryption required and no valid certificate (`decisions`),
   * held (`hold`) or bounced (`bounce`); inbound, unauthenticated encryption held
   * (`unauthenticated`: the reason, and the language of the recipients' notice).
   */
  policy?: { kind: 'hold' | 'bounce'; decisions: RecipientDecision[]; unauthenticated?: { reason: string; language: PolicySettings['noticeLanguage'] } };
  smime?: string;
  /** Inbound with senderAuthentication: the dmarc result (the log's one word on DKIM/SPF/DMARC). */
  dmarc?: string;
  verdictCode?: string;
}

export interface TransformRequest {
  direction: Direction;
  /** The envelope sender. */
  sender: string;
  recipients: string[];
  message: Buffer;
  /** Inbound: DKIM, SPF and DMARC of the message (checked on the main thread, which does the DNS), for groups whose policy asks. */
  senderAuth: MethodResult[];
}

export interface TransformResult {
  groups: Group[];
  /** Outbound: the From address had no signing key (counted). */
  unsignedNoKey?: boolean;
  /** Outbound: policy dkim and no DKIM key for the From domain (counted). */
  dkimNoKey?: boolean;
  /** The code of the failure that made a deferred or refused group (counted). */
  errorCode?: string;
}

/**
 * Copies that could not be made, for these recipients. `own`: the reply is the
 * gateway's (its text as it is), not the next hop's; `cause`: for an internal error,
 * the system's code for it (below).
 */
export interface GroupFailure { status: 'temporary' | 'permanent'; code: number; response: string; errorCode: string; own?: { enhanced: string }; cause?: string }

/**
 * What the log may say about an error: its code, and for ours the first line of its
 * message (never a body). For an error that is not ours, `cause` is its system code
 * when it has one that is a plain token (`ECONNREFUSED` when the store cannot be
 * reached, PostgreSQL's SQLSTATE, `SQLITE_BUSY`): a name an administrator can look
 * up, which carries no address, value or path as a message may.
 */
export function describeFailure(e: unknown): { errorCode: string; text: string; cause?: string } {
  if (isKakitomeError(e)) return { errorCode: e.code, text: e.message.split('\n')[0]!.slice(0, 300) };
  const err = e as { code?: unknown; message?: unknown };
  const cause = typeof err?.code === 'string' && /^[A-Z0-9_]{2,40}$/.test(err.code) ? err.code : undefined;
  return { errorCode: 'INTERNAL', text: `${typeof err?.code === 'string' ? `${err.code}: ` : ''}${String(err?.message ?? e).split('\n')[0]!.slice(0, 300)}`, ...(cause ? { cause } : {}) };
}

/** A temporary failure of the gateway's own (not the next hop's): 451 4.3.0 with this text, so Postfix's log says what failed. */
export function ownTemporaryFailure(what: string, e: unknown): GroupFailure {
  const { errorCode, cause } = describeFailure(e);
  return { status: 'temporary', code: 451, response: `${what} (${errorCode}${cause ? `: ${cause}` : ''}); try again later.`, errorCode, own: { enhanced: '4.3.0' }, ...(cause ? { cause } : {}) };
}

/** The result for a direction whose copies could not be made because of `e`. */
export function failedTransform(direction: Direction, recipients: string[], e: unknown): TransformResult {
  const { errorCode, text } = describeFailure(e);
  // A message outbound mail cannot be signed or encrypted from is refused for good, with the reason.
  if (direction === 'outbound' && isMessageVerdictError(e)) {
    return { errorCode, groups: [{ direction, recipients, action: 'refused', failure: { status: 'permanent', code: 554, response: `The gateway cannot sign or encrypt this message (${errorCode}): ${text}`, errorCode } }] };
  }
  // Inbound, the library's verdicts are labels; one escapes only when the header section itself cannot be read
  // (over maxHeaderBytes or maxLineLength): it can be neither labelled nor cleared of forged results, and every retry would fail alike.
  if (direction === 'inbound' && isMessageVerdictError(e)) {
    return { errorCode, groups: [{ direction, recipients, action: 'refused', failure: { status: 'permanent', code: 554, response: `The gateway cannot read this message's header section (${errorCode}): ${text}`, errorCode } }] };
  }
  return { errorCode, groups: [{ direction, recipients, action: 'deferred', failure: ownTemporaryFailure('The gateway could not process the message', e) }] };
}

/**
 * Mail passing through is left as it is but for Authentication-Results claiming our
 * authserv-id and X-Kakitome- fields: a recipient of ours in a spelling no --domain
 * matches (Postfix's percent hack, `bob%example.com@mx.example.com`, which the
 * before-queue design hands over as the client wrote it) is delivered to one of ours
 * after the gateway. A header section that cannot be read passes as it is.
 */
function withoutForeignFields(ctx: GatewayContext, head: Buffer): Buffer {
  try {
    return rewriteHeaderSection(head, { remove: isForeignField(ctx) });
  } catch (e) {
    if (isMessageVerdictError(e)) return head;
    throw e;
  }
}

export async function transformMessage(ctx: GatewayContext, request: TransformRequest): Promise<TransformResult> {
  const { direction, recipients, message } = request;
  try {
    if (direction === 'pass') return { groups: [{ direction, recipients, action: 'unchanged', message: withoutForeignFields(ctx, message) }] };
    if (direction === 'inbound') return await inboundGroups(ctx, request, (policy, senderAuth, recipients) => processInbound(ctx, message, policy, senderAuth, recipients));
    const plan = await planOutbound(ctx, { sender: request.sender, recipients, fields: readHeaderFields(message) });
    return outboundGroups(plan, await processOutbound(ctx, message, plan));
  } catch (e) {
    return failedTransform(direction, recipients, e);
  }
}

export interface SpooledTransformRequest extends Omit<TransformRequest, 'message'> {
  message: SpooledMessage;
}

/**
 * transformMessage for a message too large to hold in memory: the same plans, with
 * the library's streaming twins (process-outbound-stream.ts,
 * process-inbound-stream.ts), on this thread; the copies are spools, each pushed to
 * `owned` for the caller to dispose of. Held messages (policy hold) are stored by
 * the caller from the spool, segment by segment (held-messages.ts).
 */
export async function transformSpooled(ctx: GatewayContext, request: SpooledTransformRequest, place: SpoolPlace & { inMemoryBytes: number }, owned: ContentSpool[]): Promise<TransformResult> {
  const { direction, recipients, message } = request;
  try {
    if (direction === 'pass') return { groups: [{ direction, recipients, action: 'unchanged', message: message.withHead(withoutForeignFields(ctx, message.head)) }] };
    if (direction === 'inbound') return await inboundGroups(ctx, request, (policy, senderAuth, recipients) => processInboundStream(ctx, message, policy, senderAuth, recipients, place, owned));
    const plan = await planOutbound(ctx, { sender: request.sender, recipients, fields: readHeaderFields(message.head) });
    return outboundGroups(plan, await processOutboundStream(ctx, message, plan, place, owned));
  } catch (e) {
    return failedTransform(direction, recipients, e);
  }
}

type ProcessInbound = (policy: ResolvedPolicy, senderAuth: readonly MethodResult[], recipients: readonly string[]) => Promise<{ message: Buffer | SpooledMessage; action: string; auth: SmimeAuthentication; notFor?: string[] }>;

/** One copy per group of recipients whose inbound policy is the same (plan-inbound.ts). */
async function inboundGroups(ctx: GatewayContext, request: Omit<TransformRequest, 'message'>, process: ProcessInbound): Promise<TransformResult> {
  const groups: Group[] = [];
  // A copy opened with Alice's key is Alice's: recipients no opening key names get theirs made apart (unopened).
  const planned = planInbound(ctx, request.recipients).map((g) => ({ ...g, apart: false }));
  for (let i = 0; i < planned.length; i++) {
    const g = planned[i]!;
    const senderAuth = g.policy.settings.senderAuthentication ? request.senderAuth : [];
    const r = await process(g.policy, senderAuth, g.recipients);
    if (r.notFor && !g.apart) {
      planned.push({ ...g, recipients: r.notFor, apart: true });
      g.recipients = g.recipients.filter((x) => !r.notFor!.includes(x));
    }
    const dmarc = senderAuth.find((m) => m.method === 'dmarc')?.result;
    // Held: the caller keeps the message as it received it (no copy comes back from a worker).
    const made = r.action === 'held' ? { policy: { kind: 'hold' as const, decisions: [], unauthenticated: { reason: r.auth.reason, language: g.policy.settings.noticeLanguage } } } : { message: r.message };
    groups.push({ direction: 'inbound', recipients: g.recipients, action: r.action, ...made, smime: r.auth.result, ...(dmarc ? { dmarc } : {}), ...(r.auth.code ? { verdictCode: r.auth.code } : {}) });
  }
  return { groups };
}

/** The copies of an outbound plan, then its held and bounced recipients. */
function outboundGroups(plan: OutboundPlan, r: { variants: Array<{ recipients: string[]; action: string; message: Buffer | SpooledMessage }>; unsignedNoKey: boolean; dkimNoKey: boolean }): TransformResult {
  const direction = 'outbound';
  const code = plan.fromNotSender ? 'FROM_NOT_SENDER' : r.unsignedNoKey ? 'NO_SIGNING_KEY' : r.dkimNoKey ? 'NO_DKIM_KEY' : undefined;
  const groups: Group[] = r.variants.map((v) => ({ direction, recipients: v.recipients, action: v.action, message: v.message, ...(code ? { verdictCode: code } : {}) }));
  for (const [kind, decisions] of [['hold', plan.hold], ['bounce', plan.bounce]] as const) {
    if (decisions.length) groups.push({ direction, recipients: decisions.map((d) => d.recipient), action: kind === 'hold' ? 'held' : 'bounced', verdictCode: 'ENCRYPTION_REQUIRED', policy: { kind, decisions } });
  }
  return { groups, ...(r.unsignedNoKey && !plan.fromNotSender ? { unsignedNoKey: true } : {}), ...(r.dkimNoKey ? { dkimNoKey: true } : {}) };
}
