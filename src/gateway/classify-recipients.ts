/**
 * Which way a message goes, per recipient (issue 13, "What it does by default"):
 * - inbound: the recipient is in one of our domains (whoever sent it, so mail between
 *   two of our users is decrypted, verified and labelled too);
 * - outbound: the envelope sender is in one of our domains and the recipient is not;
 * - pass: neither (Postfix relays for whom it was told to; the gateway leaves such
 *   mail unchanged and counts it).
 */
import { isOurAddress } from './mail-domain.ts';

export type Direction = 'inbound' | 'outbound' | 'pass';

export function classifyRecipients(sender: string, recipients: readonly string[], domains: ReadonlySet<string>): Map<Direction, string[]> {
  const senderOurs = isOurAddress(sender, domains);
  const out = new Map<Direction, string[]>();
  for (const r of recipients) {
    const d: Direction = isOurAddress(r, domains) ? 'inbound' : senderOurs ? 'outbound' : 'pass';
    const list = out.get(d);
    if (list) list.push(r);
    else out.set(d, [r]);
  }
  return out;
}
