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
 * message could never be bounced. When the next hop's SIZE is known (`maxSize`: it
 * advertised one at EHLO, RFC 1870) and the DSN with the whole message is over it,
 * the one with the header section goes at once: the next hop would refuse the whole
 * at MAIL FROM (552 5.3.4). The retry stays for next hops that advertise no SIZE,
 * and for limits that count more than the DSN's bytes (Postfix's message_size_limit
 * counts envelope records and the Received field it adds).
 */
import type { RecipientOutcome } from '../smtp/relay-message.ts';
import { buildDeliveryStatusNotification, crossesSmtp, type DsnInput } from '../smtp/build-delivery-status-notification.ts';

export interface SentDsn {
  /** The next hop's answer to the DSN that was sent last. */
  outcome: RecipientOutcome;
  /** The next hop's refusal of the DSN with the whole message, when the one with the header section was sent after it. */
  wholeRefused?: RecipientOutcome;
  /** The next hop's SIZE, when the DSN with the whole message was over it and the one with the header section went instead. */
  wholeOverSize?: number;
}

/** Whether the next hop refused a message for its size: 552, a 5.3.4 status, or a permanent reply that names the size. */
export function refusedForSize(o: RecipientOutcome): boolean {
  return o.status === 'permanent' && (o.code === 552 || /\b5\.3\.4\b|\bsize\b|too (?:big|large)/i.test(o.response));
}

export async function sendDeliveryStatusNotification(input: DsnInput, send: (dsn: Buffer) => Promise<RecipientOutcome>, maxSize?: number): Promise<SentDsn> {
  // Only a DSN that does carry the whole message has something smaller to send.
  const whole = 'whole' in input.returned && crossesSmtp(input.returned.whole) ? input.returned.whole : undefined;
  const dsn = buildDeliveryStatusNotification(input);
  const headersOnly = () => buildDeliveryStatusNotification({ ...input, returned: { head: whole!, tooLarge: true } });
  if (whole && maxSize !== undefined && dsn.length > maxSize) return { outcome: await send(headersOnly()), wholeOverSize: maxSize };
  const outcome = await send(dsn);
  if (!whole || !refusedForSize(outcome)) return { outcome };
  return { outcome: await send(headersOnly()), wholeRefused: outcome };
}
