/**
 * Which way a message goes, per recipient (issue 13, "What it does by default"):
 * - inbound: the recipient is in one of our domains (whoever sent it, so mail between
 *   two of our users is decrypted, verified and labelled too);
 * - outbound: the envelope sender is in one of our domains and the recipient is not,
 *   and the client that handed the message to Postfix was one of Postfix's own
 *   (`senderVouched`: not XFORWARD SOURCE=REMOTE, see below);
 * - pass: neither (Postfix relays for whom it was told to; the gateway leaves such
 *   mail unchanged and counts it).
 */
import { isOurAddress } from './mail-domain.ts';

/**
 * Whether Postfix vouches for the envelope sender: it does unless its XFORWARD says
 * the client was REMOTE (not matched by main.cf's `local_header_rewrite_clients`:
 * `permit_inet_interfaces` by default, `permit_mynetworks` and
 * `permit_sasl_authenticated` where submission clients are to be signed for). MAIL
 * FROM is the client's word: anyone on the Internet may write one of ours, and when
 * Postfix forwards such mail outside (an alias of ours to an outside address, a
 * domain it relays for that is no --domain) the gateway would sign it with that
 * person's key. Without XFORWARD (a test client, mail the host injects) nothing
 * says otherwise: only Postfix reaches --listen.
 */
export function vouchesForSender(source: string | undefined): boolean {
  return source?.toUpperCase() !== 'REMOTE';
}

export type Direction = 'inbound' | 'outbound' | 'pass';

export function classifyRecipients(sender: string, recipients: readonly string[], domains: ReadonlySet<string>, senderVouched = true): Map<Direction, string[]> {
  const senderOurs = senderVouched && isOurAddress(sender, domains);
  const out = new Map<Direction, string[]>();
  for (const r of recipients) {
    const d: Direction = isOurAddress(r, domains) ? 'inbound' : senderOurs ? 'outbound' : 'pass';
    const list = out.get(d);
    if (list) list.push(r);
    else out.set(d, [r]);
  }
  return out;
}
