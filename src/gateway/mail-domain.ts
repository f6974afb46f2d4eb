/**
 * The domains the gateway serves (--domain): which envelope addresses are ours.
 * A domain is matched exactly, case-insensitively and by its ASCII form, after the
 * last "@" of the address (an SMTP envelope address, RFC 5321 4.1.2); subdomains are not ours unless
 * named. A domain option that is no DNS name is refused at start.
 */
import { domainToASCII } from 'node:url';
import { KakitomeError } from '../errors.ts';

const DOMAIN = /^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

export function normalizeDomain(text: string): string {
  const d = text.trim().toLowerCase().replace(/\.$/, '');
  if (!DOMAIN.test(d)) throw new KakitomeError('INVALID_ARGUMENT', `--domain ${JSON.stringify(text)}: give a mail domain such as example.com (no "@", no wildcard).`);
  return d;
}

/**
 * The lower-cased domain of an envelope address in its ASCII form, or '' for the null
 * sender and addresses without one. An SMTPUTF8 address may write our xn-- domain
 * with its Unicode labels (RFC 6531 3.2): one domain, so one answer (UTS 46, as
 * node:url); a non-ASCII domain with no ASCII form is kept as written, never ours.
 */
export function domainOf(address: string): string {
  const at = address.lastIndexOf('@');
  if (at < 0) return '';
  const d = address.slice(at + 1).toLowerCase().replace(/\.$/, '');
  return /[^\x00-\x7f]/.test(d) ? domainToASCII(d) || d : d;
}

export function isOurAddress(address: string, domains: ReadonlySet<string>): boolean {
  return domains.has(domainOf(address));
}
