/**
 * Sender identity (RFC 8550 3): the mailbox in From (or Sender) must be an
 * address the signer's certificate names.
 *
 * Addresses in the certificate: rfc822Name and SmtpUTF8Mailbox (RFC 9598) entries
 * of subjectAltName; the subject's emailAddress only when there is no
 * subjectAltName address at all (RFC 8550 3: legacy certificates). One reading,
 * x509/certificate-mailboxes.ts, the one the store files certificates by.
 *
 * Comparison (decided for Kakitome, documented in the report):
 *   - domain: case-insensitive and IDN-aware: both sides are converted to A-labels
 *     (node:url domainToASCII), so "bücher.example" matches "xn--bcher-kva.example";
 *   - local part: case-sensitive by RFC 5321 2.4. QUIRK: a match that differs only
 *     in the case of the local part is accepted with a warning, because nearly every
 *     mail system folds case there and CAs often lower-case the address they
 *     validated; exact matches never warn.
 *
 * From with several mailboxes: RFC 5322 3.6.2 then requires Sender, and the
 * Sender is matched (with a warning that it is the Sender, not the author).
 * A Sender that differs from a matching From is not needed and not used. The
 * report's `field` says which one matched: this is RFC 8550's per-signer answer;
 * whether a reader, who sees From, may call the message trusted is decided with
 * what the reader sees (src/smime/read-displayed-sender.ts, judge-message.ts),
 * and a Sender-only match is not.
 */
import type { Certificate } from '../x509/certificate.ts';
import type { IdentityReport } from './types.ts';
import { certificateMailboxes } from '../x509/certificate-mailboxes.ts';
import { splitMailbox } from '../x509/mailbox-address.ts';

export interface IdentityResult {
  report: IdentityReport;
  warnings: string[];
}

type Match = 'exact' | 'case-folded' | 'none';

function compare(address: string, candidate: string): Match {
  const a = splitMailbox(address);
  const b = splitMailbox(candidate);
  if (!a || !b || a.domain !== b.domain) return 'none';
  if (a.local === b.local) return 'exact';
  return a.local.toLowerCase() === b.local.toLowerCase() ? 'case-folded' : 'none';
}

function best(address: string, addrs: string[]): Match {
  let m: Match = 'none';
  for (const c of addrs) {
    const r = compare(address, c);
    if (r === 'exact') return r;
    if (r === 'case-folded') m = r;
  }
  return m;
}

/** Matches From/Sender with the certificate. `from` and `sender` are addr-specs. */
export function matchSenderIdentity(cert: Certificate, from: string[] | undefined, sender: string | undefined): IdentityResult {
  const certificateAddresses = certificateMailboxes(cert);
  const warnings: string[] = [];
  const list = certificateAddresses.join(', ') || 'no address';
  if (certificateAddresses.length === 0) {
    return { report: { status: 'mismatch', certificateAddresses, message: 'The signer\'s certificate names no email address, so it cannot vouch for the sender.' }, warnings };
  }
  const fromList = from ?? [];
  if (fromList.length === 0 && !sender) {
    return { report: { status: 'unknown', certificateAddresses, message: `No From address to compare with the certificate (${list}).` }, warnings };
  }
  const tryAddress = (addr: string, role: 'From' | 'Sender'): IdentityResult | undefined => {
    const m = best(addr, certificateAddresses);
    if (m === 'none') return undefined;
    if (m === 'case-folded') warnings.push(`The ${role} address ${addr} matches the certificate only if upper and lower case are treated alike in the local part.`);
    if (role === 'Sender') warnings.push(`The certificate matches the Sender (${addr}), not the author in From.`);
    return { report: { status: 'match', from: addr, field: role, certificateAddresses, message: `The ${role} address ${addr} is in the signer's certificate.` }, warnings };
  };
  if (fromList.length === 1) {
    const r = tryAddress(fromList[0]!, 'From');
    if (r) return r;
  }
  if (sender) {
    const r = tryAddress(sender, 'Sender');
    if (r) return r;
  }
  const shown = fromList.length === 1 ? fromList[0]! : sender ?? fromList.join(', ');
  const why = fromList.length > 1 ? `From lists ${fromList.length} mailboxes (${fromList.join(', ')})${sender ? ` and the Sender ${sender} is not in the certificate either` : ' and there is no Sender'}` : `${shown} is not among the certificate's addresses (${list})`;
  const report: IdentityReport = { status: 'mismatch', certificateAddresses, message: `The signer's certificate does not match the sender: ${why}.` };
  if (shown) report.from = shown;
  return { report, warnings };
}
