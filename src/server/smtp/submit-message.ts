/**
 * One message through the submission port: signed by its From with the tenant's
 * identity, by POST /sign's rules (api/sign.ts: the sender a reader sees, the
 * tenant's domains and identities, the current identity), relayed with its
 * envelope unchanged, and answered by the gateway's no-loss rule
 * (smtp/reply-for-outcomes.ts):
 * - 250 only once the relay accepted every recipient's copy;
 * - 5xx with the reason when the message is refused (what POST /sign answers with
 *   4xx: two From fields, a From outside the tenant's domains, a display name
 *   carrying another address, no current identity, over a limit): never relayed;
 * - 4xx for anything that may pass (the store, the relay down or refusing for now,
 *   an internal error): nothing is lost, the client keeps the message and retries;
 * - the relay's own 5xx when it refused recipients for good.
 * Recipients who asked NOTIFY=SUCCESS, whose copy the relay accepted without
 * advertising DSN, get the sender the "relayed" DSN (RFC 3461 4.1, 6.2;
 * smtp/build-relayed-notification.ts, the gateway's), sent through the same relay
 * once the reply is 250 (a deferred message is told on its retry); its fate does
 * not change the reply (the copies are delivered): it is in `relayedDsn`.
 */
import { isKakitomeError } from '../../errors.ts';
import type { RecipientOutcome, RelayEnvelope } from '../../smtp/relay-message.ts';
import { oneLine } from '../../smtp/relay-message.ts';
import { buildRelayedNotification } from '../../smtp/build-relayed-notification.ts';
import { replyForMessage, type SmtpReply } from '../../smtp/reply-for-outcomes.ts';
import type { ApiKeyRecord } from '../../store/tenant-directory.ts';
import { signForTenant } from '../api/sign.ts';
import { actorOf, type ServiceContext } from '../service-context.ts';

export type Relay = (envelope: RelayEnvelope, message: Buffer) => Promise<RecipientOutcome[]>;

export interface SubmissionResult {
  reply: SmtpReply;
  /** relayed, refused (5xx from us), deferred (4xx), or rejected by the relay (its 5xx). */
  outcome: 'relayed' | 'refused' | 'deferred' | 'rejected';
  /** The error code behind a refusal or deferral (our codes; INTERNAL for anything else). */
  code?: string;
  signedBytes?: number;
  relay?: { accepted: number; temporary: number; permanent: number };
  /** The relayed DSN sent: the relay's answer to it. */
  relayedDsn?: RecipientOutcome['status'];
}

/** The reply to a message the signing rules refused, from its code (as POST /sign maps codes to 4xx). */
function refusal(code: string, message: string): SmtpReply {
  const text = oneLine(`${code}: ${message}`);
  if (code === 'LIMIT') return { code: 552, enhanced: '5.3.4', text };
  if (code === 'FORBIDDEN' || code === 'IDENTITY_MISMATCH' || code === 'KEY_INVALID') return { code: 550, enhanced: '5.7.1', text };
  return { code: 554, enhanced: '5.6.0', text };
}

/** `name`: this host's, the relayed DSN's Reporting-MTA. */
export async function submitMessage(ctx: ServiceContext, relay: Relay, key: ApiKeyRecord, envelope: RelayEnvelope, message: Buffer, name: string): Promise<SubmissionResult> {
  let signed: Buffer;
  try {
    // The store's cache revision was read at this message's MAIL FROM (start-submission.ts), as
    // POST /sign reads it once before the body: what the signing looks up is current as of then.
    // (A second read here cost every message an event-loop turn and a query.)
    signed = await signForTenant(ctx, key, message, {}, 'smtp.sign');
  } catch (e) {
    // A KakitomeError is a decision about this message (POST /sign answers it with 4xx); anything else (the store, a bug) may pass.
    if (!isKakitomeError(e)) return { reply: { code: 451, enhanced: '4.3.0', text: 'The message could not be signed now; try again later.' }, outcome: 'deferred', code: 'INTERNAL' };
    await ctx.store.actingAs(actorOf(key)).audit('smtp.sign.refused', undefined, `${e.code}: ${e.message}`).catch(() => undefined);
    return { reply: refusal(e.code, e.message), outcome: 'refused', code: e.code };
  }
  const outcomes = await relay(envelope, signed);
  const counts = { accepted: 0, temporary: 0, permanent: 0 };
  for (const o of outcomes) counts[o.status]++;
  const reply = replyForMessage(outcomes);
  const outcome = reply.code < 300 ? 'relayed' : reply.code < 500 ? 'deferred' : 'rejected';
  if (reply.code < 300) {
    const owed = buildRelayedNotification({ reportingMta: name, sender: envelope.from, ...(envelope.dsn?.envid !== undefined ? { envid: envelope.dsn.envid } : {}), outcomes, ...(envelope.recipientDsn ? { recipientDsn: envelope.recipientDsn } : {}), head: message });
    const relayedDsn = owed && (await relay(owed.envelope, owed.dsn))[0]!.status;
    return { reply: { ...reply, text: `Signed and relayed: ${outcomes[0]?.response || 'accepted'}` }, outcome, signedBytes: signed.length, relay: counts, ...(relayedDsn ? { relayedDsn } : {}) };
  }
  return { reply, outcome, signedBytes: signed.length, relay: counts, code: 'RELAY' };
}
