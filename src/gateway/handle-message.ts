/**
 * One message through the gateway: recipients split by direction
 * (classify-recipients.ts), each direction planned by policy (plan-outbound.ts for
 * the sender's policy, plan-inbound.ts for each recipient's) and transformed
 * (process-inbound.ts, process-outbound.ts; mail passing through is left
 * unchanged), each resulting variant relayed in its own transaction, and the
 * replies computed from what the next hop said (reply-for-outcomes.ts). Per
 * recipient, the outcome is:
 * - the next hop's answer to the copy meant for them;
 * - 4xx when their copy could not be made for a reason that may pass (the store is
 *   down, an internal error): Postfix keeps the message and retries;
 * - 5xx when the message itself cannot be signed or encrypted (malformed, over a
 *   limit): it is bounced with the reason, never passed on unsigned;
 * - inbound CBC content nobody trusted vouches for, policy `unauthenticatedEncryption:
 *   hold`: held in the store as received, then the recipients' answer is that of
 *   the gateway's notice to them (build-held-notice.ts), relayed with the null sender;
 * - encryption required and no valid certificate (policy): held in the store, then
 *   250 (`missingCertificate: hold`); or bounced (`bounce`): under LMTP 554 5.7.5 for
 *   that recipient (Postfix writes the RFC 3464 DSN to the sender); under SMTP, when
 *   other recipients' copies were accepted, a DSN of ours to the sender through the
 *   next hop, and 250 only once it was accepted too; when every recipient is bounced,
 *   554 5.7.5 (Postfix's DSN). No copy for such a recipient is ever relayed. Our DSN
 *   names only the recipients whose NOTIFY asks for failures; none left, none sent.
 * A recipient who asked NOTIFY=SUCCESS whose copy went to a next hop without DSN gets
 * the sender a "relayed" DSN of ours (notifyRelayed).
 * In SMTP mode (one reply for all) nothing is relayed or held once a copy failed to
 * be made: the whole message is retried anyway, and relaying the rest first would
 * only deliver it twice.
 */
import type { MethodResult } from '../dkim/authenticate-sender.ts';
import { boundedLookup } from '../dkim/bounded-resolver.ts';
import type { RecipientDecision } from '../policy/decide-recipient.ts';
import { HeldMessages } from '../store/held-messages.ts';
import { DSN_STATUS, notifiesFailure, returnedContent } from '../smtp/build-delivery-status-notification.ts';
import { buildRelayedNotification } from '../smtp/build-relayed-notification.ts';
import { sendDeliveryStatusNotification } from './send-delivery-status-notification.ts';
import { classifyRecipients, vouchesForSender } from './classify-recipients.ts';
import type { GatewayContext } from './gateway-context.ts';
import type { GatewayLog } from './gateway-log.ts';
import type { GatewayMetrics } from './gateway-metrics.ts';
import { planInbound } from './plan-inbound.ts';
import { buildHeldNotice } from './build-held-notice.ts';
import { labelWith } from './process-inbound.ts';
import type { RecipientOutcome, RelayBody, RelayEnvelope } from '../smtp/relay-message.ts';
import { NOTIFY_NEVER, type MailDsn, type RcptDsn } from '../smtp/dsn-parameters.ts';
import type { ContentSpool } from '../cms/stream/content-spool.ts';
import { Readable } from 'node:stream';
import type { SpooledMessage, SpoolPlace } from './spooled-message.ts';
import { replyForMessage, replyForRecipient, type SmtpReply } from '../smtp/reply-for-outcomes.ts';
import { failedTransform, ownTemporaryFailure, transformSpooled, type Group, type TransformRequest, type TransformResult } from './transform-message.ts';

export interface MessageEnvelope {
  from: string;
  to: readonly string[];
  /** The MTA's queue id (XFORWARD IDENT), for the log. */
  queueId?: string;
  /** The gateway's own id for the transaction. */
  transactionId: string;
  /** The client that handed the message to Postfix (XFORWARD ADDR, HELO): for SPF. */
  clientAddress?: string;
  clientHelo?: string;
  /** XFORWARD SOURCE: REMOTE when the client was none of Postfix's own (classify-recipients.ts, vouchesForSender). */
  clientSource?: string;
  /** RET and ENVID as received (RFC 3461): relayed with every copy of the message. */
  dsn?: MailDsn;
  /**
   * NOTIFY and ORCPT as received, one entry per address of `to` in its order
   * (receivedDsn; an exact address: RFC 5321 2.4, Bob@ and bob@ are two mailboxes):
   * relayed with that recipient's copy.
   */
  recipientDsn?: ReadonlyArray<RcptDsn | undefined>;
}

export type Relay = (envelope: RelayEnvelope, message: RelayBody) => Promise<RecipientOutcome[]>;

/** The envelope of the copy for `recipients`: the sender's DSN requests with it, each recipient's own. */
function copyEnvelope(envelope: MessageEnvelope, recipients: readonly string[]): RelayEnvelope {
  const requests = envelope.recipientDsn && requestsByRecipient(envelope);
  return {
    from: envelope.from,
    to: recipients,
    ...(envelope.dsn ? { dsn: envelope.dsn } : {}),
    ...(requests ? { recipientDsn: recipients.map((r) => requests.get(r)) } : {}),
  };
}

/** Each recipient's NOTIFY and ORCPT by its exact address (envelope.recipientDsn is in the order of `to`). */
function requestsByRecipient(envelope: MessageEnvelope): ReadonlyMap<string, RcptDsn | undefined> {
  const all = envelope.recipientDsn;
  return new Map(all ? envelope.to.map((r, i) => [r, all[i]]) : []);
}

/** The envelope of a message the gateway writes itself (a DSN, a notice): the null sender, NOTIFY=NEVER, nothing of the original's DSN requests (no loop). */
function ownEnvelope(to: readonly string[]): RelayEnvelope {
  return { from: '', to, recipientDsn: to.map(() => NOTIFY_NEVER) };
}

export interface HandleDeps {
  ctx: GatewayContext;
  relay: Relay;
  /** The next hop's advertised SIZE when known (RFC 1870): a DSN returning the whole message over it goes with the header section at once. */
  nextHopMaxSize?: () => number | undefined;
  /** Makes one direction's copies: transformMessage on this thread, or in a worker of the pool (crypto-pool.ts). */
  transform: (request: TransformRequest) => Promise<TransformResult>;
  lmtp: boolean;
  log: GatewayLog;
  metrics: GatewayMetrics;
  /** Where a large message's copies are spooled, and the size above which a message is not read into memory. */
  place: SpoolPlace & { inMemoryBytes: number };
}

/** A message in memory, or one too large for that (spooled). */
type Received = Buffer | SpooledMessage;

/**
 * DKIM, SPF and DMARC of an inbound message, once for all its groups that ask for
 * them (policy senderAuthentication), within the per-message DNS bounds; counted
 * per method and result.
 */
async function checkSender(deps: HandleDeps, envelope: MessageEnvelope, message: Received): Promise<MethodResult[]> {
  // mailauth (about 20 MiB) loads only when a policy asks for it.
  const { authenticateSender } = await import('../dkim/authenticate-sender.ts');
  const results = await authenticateSender(Buffer.isBuffer(message) ? message : Readable.from(message.bytes()), {
    sender: envelope.from,
    ...(envelope.clientAddress ? { ip: envelope.clientAddress } : {}),
    ...(envelope.clientHelo ? { helo: envelope.clientHelo } : {}),
    authservId: deps.ctx.authservId,
  }, boundedLookup(deps.ctx.resolver));
  for (const r of results) deps.metrics.inc('kakitome_gateway_sender_auth_results_total', { method: r.method, result: r.result });
  return results;
}

/** One direction's copies, and what the main thread counts of them. A large message's are made here, streaming, their spools pushed to `owned`. */
async function transform(deps: HandleDeps, request: Omit<TransformRequest, 'message'> & { message: Received }, owned: ContentSpool[], failed?: TransformResult): Promise<Group[]> {
  const { message } = request;
  const r = failed ?? (Buffer.isBuffer(message) ? await deps.transform({ ...request, message }) : await transformSpooled(deps.ctx, { ...request, message }, deps.place, owned));
  if (r.errorCode) deps.metrics.inc('kakitome_gateway_errors_total', { code: r.errorCode });
  if (r.unsignedNoKey) deps.metrics.inc('kakitome_gateway_unsigned_no_key_total');
  if (r.dkimNoKey) deps.metrics.inc('kakitome_gateway_dkim_no_key_total');
  for (const g of r.groups) if (g.smime) deps.metrics.inc('kakitome_gateway_smime_results_total', { result: g.smime });
  return r.groups;
}

export interface HandledMessage {
  /** One reply per recipient, in RCPT order (LMTP). */
  perRecipient: SmtpReply[];
  /** The one reply for SMTP. */
  whole: SmtpReply;
}

/** A short reason for one recipient, for the reply, the DSN and the held record (ASCII, one line). */
function policyReason(d: RecipientDecision): string {
  const c = d.encrypt.certificate;
  const why = !c || c.status === 'missing' ? 'no certificate is known for the recipient' : c.status === 'refused' ? `the recipient's certificate may not be used (${c.code})` : 'no usable certificate';
  return `Encryption to ${d.recipient} is required by policy and ${why}.`;
}

async function holdGroup(deps: HandleDeps, envelope: MessageEnvelope, g: Group, received: Received): Promise<RecipientOutcome[]> {
  const { decisions, unauthenticated } = g.policy!;
  const arrival = new Date();
  // The sender's DSN requests, relayed with the message when it is released.
  const { dsn, recipientDsn } = copyEnvelope(envelope, g.recipients);
  // A spooled message goes into the store from its spool, one sealed segment at a time.
  const id = await new HeldMessages(deps.ctx.store).hold({
    sender: envelope.from,
    recipients: g.recipients,
    message: Buffer.isBuffer(received) ? received : { size: received.size, read: () => received.bytes() },
    reasonCode: unauthenticated ? 'UNAUTH_ENC' : 'ENCRYPTION_REQUIRED',
    reason: unauthenticated ? unauthenticated.reason : decisions.map((d) => d.summary).join(' '),
    ...(envelope.queueId ? { queueId: envelope.queueId } : {}),
    ...(dsn ? { dsn } : {}),
    ...(recipientDsn ? { recipientDsn } : {}),
  });
  if (!unauthenticated) return g.recipients.map((recipient) => ({ recipient, status: 'accepted', code: 250, response: `Held for an administrator (${id}): encryption is required and no valid certificate is known.`, own: { enhanced: '2.0.0' } }));
  // Inbound: the recipients learn of it from the gateway's own notice; their answer is the notice's.
  const notice = labelWith(deps.ctx, buildHeldNotice({ authservId: deps.ctx.authservId, received: Buffer.isBuffer(received) ? received : received.head, heldId: id, arrival, language: unauthenticated.language }), { result: 'neutral', code: 'UNAUTH_ENC', reason: unauthenticated.reason }, []);
  const sent = await deps.relay(ownEnvelope(g.recipients), notice);
  // The outcome is the hold's, not a relay of the message: nothing of the notice's next hop (withoutDsn) is kept.
  return sent.map((o) => (o.status === 'accepted' ? { recipient: o.recipient, status: o.status, code: o.code, response: `Held for an administrator (${id}): unauthenticated encryption; the recipient was notified.` } : o));
}

/** What became of the gateway's own DSN for a bounced group, for the log line: how many recipients it named, how many NOTIFY left out, and the next hop's answer (`wholeRefused`: to the one with the header section, sent after the next hop refused the whole message for its size). */
interface DsnNote {
  notified: number;
  suppressed: number;
  outcome: RecipientOutcome['status'] | 'none';
  wholeRefused?: true;
  /** The next hop's advertised SIZE, when the whole message would have taken the DSN over it: the header section went at once. */
  wholeOverSize?: number;
}

/**
 * The outcome of policy-bounced recipients. LMTP, or every recipient bounced: 554
 * 5.7.5 (Postfix returns the message with its own DSN, as the recipients' NOTIFY
 * asks). SMTP with other copies accepted: our DSN to the sender through the next
 * hop, naming the recipients whose NOTIFY asks for failures (RFC 3461), and its
 * answer stands for theirs; when NOTIFY leaves none, no DSN is sent and they are
 * done (250, the log says the DSN was suppressed). A DSN with the whole message
 * (RET=FULL) refused for its size goes again with the header section, or goes so at
 * once when it is over the next hop's advertised SIZE (sendDeliveryStatusNotification). With other copies not accepted,
 * theirs follows (the message is retried or returned whole).
 */
async function bounceGroup(deps: HandleDeps, envelope: MessageEnvelope, g: Group, message: Received, others: readonly RecipientOutcome[]): Promise<{ results: RecipientOutcome[]; dsn?: DsnNote }> {
  const decisions = g.policy!.decisions;
  const reason = policyReason;
  const refused = (d: RecipientDecision): RecipientOutcome => ({ recipient: d.recipient, status: 'permanent', code: 554, response: reason(d), own: { enhanced: DSN_STATUS } });
  if (deps.lmtp || others.length === 0) return { results: decisions.map(refused) };
  if (others.some((o) => o.status === 'temporary')) return { results: decisions.map((d) => ({ recipient: d.recipient, status: 'temporary', code: 0, response: 'held back: another copy of the message was not accepted yet', heldBack: true })) };
  if (others.some((o) => o.status !== 'accepted')) return { results: decisions.map(refused) };
  const byRecipient = requestsByRecipient(envelope);
  const requests = (d: RecipientDecision) => byRecipient.get(d.recipient);
  const notified = decisions.filter((d) => notifiesFailure(requests(d)?.notify));
  const note: DsnNote = { notified: notified.length, suppressed: decisions.length - notified.length, outcome: 'none' };
  const done = (response: string): RecipientOutcome[] => decisions.map((d) => ({ recipient: d.recipient, status: 'accepted', code: 250, response, own: { enhanced: '2.0.0' } }));
  if (notified.length === 0) {
    deps.metrics.inc('kakitome_gateway_dsn_total', { action: 'failed', outcome: 'suppressed' });
    return { results: done('Not sent (encryption required, no valid certificate); no delivery status notification: the sender asked for none (NOTIFY).'), dsn: note };
  }
  const ret = envelope.dsn?.ret;
  const { outcome: sent, wholeRefused, wholeOverSize } = await sendDeliveryStatusNotification({
    reportingMta: deps.ctx.authservId,
    sender: envelope.from,
    recipients: notified.map((d) => ({ recipient: d.recipient, reason: reason(d), ...(requests(d)?.orcpt !== undefined ? { orcpt: requests(d)!.orcpt! } : {}) })),
    ...(envelope.dsn?.envid !== undefined ? { envid: envelope.dsn.envid } : {}),
    returned: Buffer.isBuffer(message)
      ? await returnedContent(ret, message.length, async () => message, async () => message)
      : await returnedContent(ret, message.size, async () => {
        const chunks: Buffer[] = [];
        for await (const c of message.bytes()) chunks.push(c);
        return Buffer.concat(chunks);
      }, async () => message.head),
    arrival: new Date(),
    ...(envelope.queueId ? { queueId: envelope.queueId } : {}),
  }, async (dsn) => (await deps.relay(ownEnvelope([envelope.from]), dsn))[0]!, deps.nextHopMaxSize?.());
  note.outcome = sent.status;
  if (wholeRefused) note.wholeRefused = true;
  if (wholeOverSize !== undefined) note.wholeOverSize = wholeOverSize;
  deps.metrics.inc('kakitome_gateway_dsn_total', { action: 'failed', outcome: sent.status });
  if (sent.status === 'accepted') return { results: done(`Not sent (encryption required, no valid certificate): a delivery status notification went to the sender${note.suppressed ? ` (${note.suppressed} recipient(s) left out of it: NOTIFY)` : ''}.`), dsn: note };
  if (sent.status === 'temporary') return { results: decisions.map((d) => ({ recipient: d.recipient, status: 'temporary', code: 0, response: `the delivery status notification was not accepted yet (${sent.response})` })), dsn: note };
  return { results: decisions.map(refused), dsn: note };
}

/**
 * RFC 3461 4.1 and 6.2: a recipient who asked NOTIFY=SUCCESS, whose copy the next hop
 * accepted without advertising DSN, will hear nothing from beyond it; the relaying
 * side tells the sender itself with a "relayed" DSN (build-relayed-notification.ts,
 * shared with the submission port). One DSN for all such recipients of the message,
 * sent once their copies are final (`final`: LMTP, or the SMTP reply is 2xx; a
 * retried message is told on its retry), never for the null sender. Its fate does not change the replies (the copies are
 * delivered; deferring would deliver them twice): it is counted and logged.
 */
async function notifyRelayed(deps: HandleDeps, envelope: MessageEnvelope, message: Received, outcomes: ReadonlyArray<RecipientOutcome | undefined>, final: boolean): Promise<DsnNote | undefined> {
  if (!final) return undefined;
  const owed = buildRelayedNotification({
    reportingMta: deps.ctx.authservId,
    sender: envelope.from,
    ...(envelope.dsn?.envid !== undefined ? { envid: envelope.dsn.envid } : {}),
    outcomes,
    ...(envelope.recipientDsn ? { recipientDsn: envelope.recipientDsn } : {}),
    head: Buffer.isBuffer(message) ? message : message.head,
    ...(envelope.queueId ? { queueId: envelope.queueId } : {}),
  });
  if (!owed) return undefined;
  const [sent] = await deps.relay(owed.envelope, owed.dsn);
  deps.metrics.inc('kakitome_gateway_dsn_total', { action: 'relayed', outcome: sent!.status });
  return { notified: owed.notified, suppressed: 0, outcome: sent!.status };
}

/**
 * `message`: in memory, or spooled (larger than deps.place.inMemoryBytes), when its
 * copies are made with the streaming APIs on this thread and relayed from their
 * spools; every spool made for them is disposed of before this returns, whatever
 * happened (the received one is the caller's).
 */
export async function handleMessage(deps: HandleDeps, envelope: MessageEnvelope, message: Received): Promise<HandledMessage> {
  const owned: ContentSpool[] = [];
  try {
    return await handle(deps, envelope, message, owned);
  } finally {
    await Promise.all(owned.map((s) => s.dispose().catch(() => undefined)));
  }
}

async function handle(deps: HandleDeps, envelope: MessageEnvelope, message: Received, owned: ContentSpool[]): Promise<HandledMessage> {
  const started = process.hrtime.bigint();
  const groups: Group[] = [];
  for (const [direction, recipients] of classifyRecipients(envelope.from, envelope.to, deps.ctx.domains, vouchesForSender(envelope.clientSource))) {
    let senderAuth: MethodResult[] = [];
    if (direction === 'inbound' && planInbound(deps.ctx, recipients).some((g) => g.policy.settings.senderAuthentication)) {
      try {
        senderAuth = await checkSender(deps, envelope, message);
      } catch (e) {
        // checkSender turns DNS trouble into temperror results; anything else defers like a failed copy.
        groups.push(...(await transform(deps, { direction, sender: envelope.from, recipients, message, senderAuth }, owned, failedTransform(direction, recipients, e))));
        continue;
      }
    }
    groups.push(...(await transform(deps, { direction, sender: envelope.from, recipients, message, senderAuth }, owned)));
  }
  // Every copy made (sender checks, plans, crypto, the key uses' commits): the rest of `ms` is handing them on.
  const copiesMs = Number(process.hrtime.bigint() - started) / 1e6;
  let holdAll = !deps.lmtp && groups.some((g) => g.failure?.status === 'temporary');
  const outcomes = new Map<string, RecipientOutcome>();
  const logged: Array<Record<string, unknown>> = [];
  // Holds first (a failed hold under SMTP stops the rest), bounces last (they depend on the other copies' outcomes).
  const order = (g: Group) => (g.policy?.kind === 'hold' ? 0 : g.policy?.kind === 'bounce' ? 2 : 1);
  for (const g of [...groups].sort((a, b) => order(a) - order(b))) {
    let results: RecipientOutcome[];
    let dsn: DsnNote | undefined;
    if (g.failure) results = g.recipients.map((recipient) => ({ recipient, ...g.failure! }));
    else if (holdAll) results = g.recipients.map((recipient) => ({ recipient, status: 'temporary', code: 451, response: 'Held back: another copy of the message could not be made; try again later.', own: { enhanced: '4.3.0' }, heldBack: true }));
    else if (g.policy?.kind === 'hold') {
      try {
        results = await holdGroup(deps, envelope, g, message);
      } catch (e) {
        g.failure = ownTemporaryFailure('The message could not be held', e);
        deps.metrics.inc('kakitome_gateway_errors_total', { code: g.failure.errorCode });
        results = g.recipients.map((recipient) => ({ recipient, ...g.failure! }));
        holdAll = !deps.lmtp;
      }
    } else if (g.policy?.kind === 'bounce') ({ results, dsn } = await bounceGroup(deps, envelope, g, message, [...outcomes.values()]));
    else results = await deps.relay(copyEnvelope(envelope, g.recipients), Buffer.isBuffer(g.message) ? g.message : g.message!.relayBody());
    for (const r of results) outcomes.set(r.recipient, r);
    const counts = { accepted: 0, temporary: 0, permanent: 0 };
    for (const r of results) {
      counts[r.status]++;
      deps.metrics.inc('kakitome_gateway_recipients_total', { direction: g.direction, action: g.action, outcome: r.status });
    }
    logged.push({ direction: g.direction, action: g.action, recipients: g.recipients.length, ...(g.smime ? { smime: g.smime } : {}), ...(g.dmarc ? { dmarc: g.dmarc } : {}), ...(g.verdictCode ? { verdictCode: g.verdictCode } : {}), ...(g.failure ? { error: g.failure.errorCode } : {}), ...(g.failure?.cause ? { cause: g.failure.cause } : {}), ...(dsn ? { dsn } : {}), nextHop: counts });
  }
  // By exact address, as `to` was received (received-recipients.ts): Bob@ and bob@ each get their own outcome.
  const ordered = envelope.to.map((r) => outcomes.get(r));
  const perRecipient = ordered.map(replyForRecipient);
  const whole = ordered.every((o) => o !== undefined) ? replyForMessage(ordered as RecipientOutcome[]) : replyForRecipient(undefined);
  const relayedDsn = await notifyRelayed(deps, envelope, message, ordered, deps.lmtp || whole.code < 300);
  const replyClass = (r: SmtpReply) => `${String(r.code)[0]}xx`;
  if (!deps.lmtp && whole.code >= 400 && ordered.some((o) => o?.status === 'accepted')) deps.metrics.inc('kakitome_gateway_duplicates_risked_total');
  const directions = [...new Set(groups.map((g) => g.direction))].join('+');
  const actions = [...new Set(groups.map((g) => g.action))].join('+');
  deps.metrics.inc('kakitome_gateway_messages_total', { direction: directions, action: actions, reply: replyClass(whole) });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  deps.metrics.observeSeconds(ms / 1000);
  deps.log('message', {
    ...(envelope.queueId ? { queueId: envelope.queueId } : {}),
    transactionId: envelope.transactionId,
    recipients: envelope.to.length,
    ...(envelope.clientSource ? { source: envelope.clientSource } : {}),
    bytes: Buffer.isBuffer(message) ? message.length : message.size,
    ...(Buffer.isBuffer(message) ? {} : { streamed: true }),
    groups: logged,
    ...(relayedDsn ? { relayedDsn } : {}),
    reply: deps.lmtp ? perRecipient.map((r) => r.code) : whole.code,
    ms: Math.round(ms * 10) / 10,
    copiesMs: Math.round(copiesMs * 10) / 10,
  });
  return { perRecipient, whole };
}
