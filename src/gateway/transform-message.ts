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
import { processInbound } from './process-inbound.ts';
import { processOutbound } from './process-outbound.ts';
import { readHeaderFields } from './rewrite-header-section.ts';
import { isMessageVerdictError } from './smime-result.ts';

export interface Group {
  direction: Direction;
  recipients: string[];
  action: string;
  message?: Buffer;
  /** Set when no copy could be made: the outcome for every recipient of the group. */
  failure?: { status: 'temporary' | 'permanent'; code: number; response: string; errorCode: string };
  /** Policy: encryption required, no valid certificate; held (`hold`) or bounced (`bounce`). */
  policy?: { kind: 'hold' | 'bounce'; decisions: RecipientDecision[] };
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

/** What the log may say about an error: its code, and for ours the first line of its message (never a body). */
export function describeFailure(e: unknown): { errorCode: string; text: string } {
  if (isKakitomeError(e)) return { errorCode: e.code, text: e.message.split('\n')[0]!.slice(0, 300) };
  const err = e as { code?: unknown; message?: unknown };
  return { errorCode: 'INTERNAL', text: `${typeof err?.code === 'string' ? `${err.code}: ` : ''}${String(err?.message ?? e).split('\n')[0]!.slice(0, 300)}` };
}

/** The result for a direction whose copies could not be made because of `e`. */
export function failedTransform(direction: Direction, recipients: string[], e: unknown): TransformResult {
  const { errorCode, text } = describeFailure(e);
  // A message outbound mail cannot be signed or encrypted from is refused for good, with the reason.
  if (direction === 'outbound' && isMessageVerdictError(e)) {
    return { errorCode, groups: [{ direction, recipients, action: 'refused', failure: { status: 'permanent', code: 554, response: `The gateway cannot sign or encrypt this message (${errorCode}): ${text}`, errorCode } }] };
  }
  return { errorCode, groups: [{ direction, recipients, action: 'deferred', failure: { status: 'temporary', code: 0, response: `the gateway could not process the message (${errorCode})`, errorCode } }] };
}

export async function transformMessage(ctx: GatewayContext, request: TransformRequest): Promise<TransformResult> {
  const { direction, recipients, message } = request;
  try {
    if (direction === 'pass') return { groups: [{ direction, recipients, action: 'unchanged', message }] };
    if (direction === 'inbound') {
      const groups: Group[] = [];
      for (const g of planInbound(ctx, recipients)) {
        const senderAuth = g.policy.settings.senderAuthentication ? request.senderAuth : [];
        const r = await processInbound(ctx, message, g.policy, senderAuth);
        const dmarc = senderAuth.find((m) => m.method === 'dmarc')?.result;
        groups.push({ direction, recipients: g.recipients, action: r.action, message: r.message, smime: r.auth.result, ...(dmarc ? { dmarc } : {}), ...(r.auth.code ? { verdictCode: r.auth.code } : {}) });
      }
      return { groups };
    }
    const plan = await planOutbound(ctx, { sender: request.sender, recipients, fields: readHeaderFields(message) });
    const r = await processOutbound(ctx, message, plan);
    const code = r.unsignedNoKey ? 'NO_SIGNING_KEY' : r.dkimNoKey ? 'NO_DKIM_KEY' : undefined;
    const groups: Group[] = r.variants.map((v) => ({ direction, recipients: v.recipients, action: v.action, message: v.message, ...(code ? { verdictCode: code } : {}) }));
    for (const [kind, decisions] of [['hold', plan.hold], ['bounce', plan.bounce]] as const) {
      if (decisions.length) groups.push({ direction, recipients: decisions.map((d) => d.recipient), action: kind === 'hold' ? 'held' : 'bounced', verdictCode: 'ENCRYPTION_REQUIRED', policy: { kind, decisions } });
    }
    return { groups, ...(r.unsignedNoKey ? { unsignedNoKey: true } : {}), ...(r.dkimNoKey ? { dkimNoKey: true } : {}) };
  } catch (e) {
    return failedTransform(direction, recipients, e);
  }
}
