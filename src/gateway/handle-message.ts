/**
 * One message through the gateway: recipients split by direction
 * (classify-recipients.ts), each direction transformed (process-inbound.ts,
 * process-outbound.ts; mail passing through is left unchanged), each resulting
 * variant relayed in its own transaction, and the replies computed from what the
 * next hop said (reply-for-outcomes.ts). Per recipient, the outcome is:
 * - the next hop's answer to the copy meant for them;
 * - 4xx when their copy could not be made for a reason that may pass (the store is
 *   down, an internal error): Postfix keeps the message and retries;
 * - 5xx when the message itself cannot be signed or encrypted (malformed, over a
 *   limit): it is bounced with the reason, never passed on unsigned.
 * In SMTP mode (one reply for all) nothing is relayed once a copy failed to be
 * made: the whole message is retried anyway, and relaying the rest first would only
 * deliver it twice.
 */
import { isKakitomeError } from '../errors.ts';
import { classifyRecipients, type Direction } from './classify-recipients.ts';
import type { GatewayContext } from './gateway-context.ts';
import type { GatewayLog } from './gateway-log.ts';
import type { GatewayMetrics } from './gateway-metrics.ts';
import { processInbound } from './process-inbound.ts';
import { processOutbound } from './process-outbound.ts';
import type { RecipientOutcome } from './relay-message.ts';
import { replyForMessage, replyForRecipient, type SmtpReply } from './reply-for-outcomes.ts';
import { isMessageVerdictError } from './smime-result.ts';

export interface MessageEnvelope {
  from: string;
  to: readonly string[];
  /** The MTA's queue id (XFORWARD IDENT), for the log. */
  queueId?: string;
  /** The gateway's own id for the transaction. */
  transactionId: string;
}

export type Relay = (envelope: { from: string; to: readonly string[] }, message: Buffer) => Promise<RecipientOutcome[]>;

export interface HandleDeps {
  ctx: GatewayContext;
  relay: Relay;
  lmtp: boolean;
  log: GatewayLog;
  metrics: GatewayMetrics;
}

interface Group {
  direction: Direction;
  recipients: string[];
  action: string;
  message?: Buffer;
  /** Set when no copy could be made: the outcome for every recipient of the group. */
  failure?: { status: 'temporary' | 'permanent'; code: number; response: string; errorCode: string };
  smime?: string;
  verdictCode?: string;
}

/** What the log may say about an error: its code, and for ours the first line of its message (never a body). */
function describeFailure(e: unknown): { errorCode: string; text: string } {
  if (isKakitomeError(e)) return { errorCode: e.code, text: e.message.split('\n')[0]!.slice(0, 300) };
  const err = e as { code?: unknown; message?: unknown };
  return { errorCode: 'INTERNAL', text: `${typeof err?.code === 'string' ? `${err.code}: ` : ''}${String(err?.message ?? e).split('\n')[0]!.slice(0, 300)}` };
}

async function transform(deps: HandleDeps, direction: Direction, recipients: string[], message: Buffer): Promise<Group[]> {
  try {
    if (direction === 'pass') return [{ direction, recipients, action: 'unchanged', message }];
    if (direction === 'inbound') {
      const r = await processInbound(deps.ctx, message);
      deps.metrics.inc('kakitome_gateway_smime_results_total', { result: r.auth.result });
      return [{ direction, recipients, action: r.action, message: r.message, smime: r.auth.result, ...(r.auth.code ? { verdictCode: r.auth.code } : {}) }];
    }
    const r = await processOutbound(deps.ctx, message, recipients);
    if (r.unsignedNoKey) deps.metrics.inc('kakitome_gateway_unsigned_no_key_total');
    return r.variants.map((v) => ({ direction, recipients: v.recipients, action: v.action, message: v.message, ...(r.unsignedNoKey ? { verdictCode: 'NO_SIGNING_KEY' } : {}) }));
  } catch (e) {
    const { errorCode, text } = describeFailure(e);
    deps.metrics.inc('kakitome_gateway_errors_total', { code: errorCode });
    // A message outbound mail cannot be signed or encrypted from is refused for good, with the reason.
    if (direction === 'outbound' && isMessageVerdictError(e)) {
      return [{ direction, recipients, action: 'refused', failure: { status: 'permanent', code: 554, response: `The gateway cannot sign or encrypt this message (${errorCode}): ${text}`, errorCode } }];
    }
    return [{ direction, recipients, action: 'deferred', failure: { status: 'temporary', code: 0, response: `the gateway could not process the message (${errorCode})`, errorCode } }];
  }
}

export interface HandledMessage {
  /** One reply per recipient, in RCPT order (LMTP). */
  perRecipient: SmtpReply[];
  /** The one reply for SMTP. */
  whole: SmtpReply;
}

export async function handleMessage(deps: HandleDeps, envelope: MessageEnvelope, message: Buffer): Promise<HandledMessage> {
  const started = process.hrtime.bigint();
  const groups: Group[] = [];
  for (const [direction, recipients] of classifyRecipients(envelope.from, envelope.to, deps.ctx.domains)) {
    groups.push(...(await transform(deps, direction, recipients, message)));
  }
  const holdAll = !deps.lmtp && groups.some((g) => g.failure?.status === 'temporary');
  const outcomes = new Map<string, RecipientOutcome>();
  const logged: Array<Record<string, unknown>> = [];
  for (const g of groups) {
    let results: RecipientOutcome[];
    if (g.failure) results = g.recipients.map((recipient) => ({ recipient, ...g.failure! }));
    else if (holdAll) results = g.recipients.map((recipient) => ({ recipient, status: 'temporary', code: 0, response: 'held back: another copy of the message could not be made' }));
    else results = await deps.relay({ from: envelope.from, to: g.recipients }, g.message!);
    for (const r of results) outcomes.set(r.recipient.toLowerCase(), r);
    const counts = { accepted: 0, temporary: 0, permanent: 0 };
    for (const r of results) {
      counts[r.status]++;
      deps.metrics.inc('kakitome_gateway_recipients_total', { direction: g.direction, action: g.action, outcome: r.status });
    }
    logged.push({ direction: g.direction, action: g.action, recipients: g.recipients.length, ...(g.smime ? { smime: g.smime } : {}), ...(g.verdictCode ? { verdictCode: g.verdictCode } : {}), ...(g.failure ? { error: g.failure.errorCode } : {}), nextHop: counts });
  }
  const ordered = envelope.to.map((r) => outcomes.get(r.toLowerCase()));
  const perRecipient = ordered.map(replyForRecipient);
  const whole = ordered.every((o) => o !== undefined) ? replyForMessage(ordered as RecipientOutcome[]) : replyForRecipient(undefined);
  const replyClass = (r: SmtpReply) => `${String(r.code)[0]}xx`;
  if (!deps.lmtp && whole.code >= 400 && ordered.some((o) => o?.status === 'accepted')) deps.metrics.inc('kakitome_gateway_duplicates_risked_total');
  const directions = [...new Set(groups.map((g) => g.direction))].join('+');
  const actions = [...new Set(groups.map((g) => g.action))].join('+');
  deps.metrics.inc('kakitome_gateway_messages_total', { direction: directions, action: actions, reply: replyClass(whole) });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  deps.metrics.observe('kakitome_gateway_message_seconds', ms / 1000);
  deps.log('message', {
    ...(envelope.queueId ? { queueId: envelope.queueId } : {}),
    transactionId: envelope.transactionId,
    recipients: envelope.to.length,
    bytes: message.length,
    groups: logged,
    reply: deps.lmtp ? perRecipient.map((r) => r.code) : whole.code,
    ms: Math.round(ms * 10) / 10,
  });
  return { perRecipient, whole };
}
