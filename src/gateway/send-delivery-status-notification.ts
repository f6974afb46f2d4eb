/**
 * Sends one of the gateway's DSNs (build-delivery-status-notification.ts) to the
 * sender, for the SMTP-mode policy bounce (handle-message.ts) and the held bounce
 * (release-held-message.ts). A DSN that returned the whole message (RET=FULL) and
 * that the next hop refused for its size (552, RFC 5321 4.2.2 "exceeded storage
 * allocation"; 5.3.4, RFC 3463 "message too big for system"; or another 5xx whose
 * text names the size) is sent once more with the header section only, and its
 * text says the message was too large to be returned whole (RFC 3461 4.3 lets the
 * MTA return less than RET=FULL asks; Postfix does the same). Otherwise the size
 * refusal would stand for the DSN: the SMTP bounce would answer 554 and Postfix
 * would tell the sender that every recipient failed, those delivered too; a held
 * message could never be bounced.
 */
import type { RecipientOutcome } from '../smtp/relay-message.ts';
import { buildDeliveryStatusNotification, crossesSmtp, type DsnInput } from '../smtp/build-delivery-status-notification.ts';

export interface SentDsn {
  /** The next hop's answer to the DSN that was sent last. */
  outcome: RecipientOutcome;
  /** The next hop's refusal of the DSN with the whole message, when the one with the header section was sent after it. */
  wholeRefused?: RecipientOutcome;
}

/** Whether the next hop refused a message for its size: 552, a 5.3.4 status, or a permanent reply that names the size. */
export function refusedForSize(o: RecipientOutcome): boolean {
  return o.status === 'permanent' && (o.code === 552 || /\b5\.3\.4\b|\bsize\b|too (?:big|large)/i.test(o.response));
}

export async function sendDeliveryStatusNotification(input: DsnInput, send: (dsn: Buffer) => Promise<RecipientOutcome>): Promise<SentDsn> {
  const outcome = await send(buildDeliveryStatusNotification(input));
  // Only a DSN that did carry the whole message has something smaller to send.
  if (!('whole' in input.returned) || !crossesSmtp(input.returned.whole) || !refusedForSize(outcome)) return { outcome };
  const headersOnly = await send(buildDeliveryStatusNotification({ ...input, returned: { head: input.returned.whole, tooLarge: true } }));
  return { outcome: headersOnly, wholeRefused: outcome };
}
