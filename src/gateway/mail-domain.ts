/**
 * The domains the gateway serves (--domain): which envelope addresses are ours.
 * A domain is matched exactly, case-insensitively and by its ASCII form, after the
 * last "@" of the address (an SMTP envelope address, RFC 5321 4.1.2); subdomains are not ours unless
 * named. A domain option that is no DNS name is refused at start.
 */
import { mailDomainOf } from '../x509/mailbox-address.ts';
import { KakitomeError } from '../errors.ts';

const DOMAIN = /^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

export function normalizeDomain(text: string): string {
  const d = text.trim().toLowerCase().replace(/\.$/, '');
  if (!DOMAIN.test(d)) throw new KakitomeError('INVALID_ARGUMENT', `--domain ${JSON.stringify(text)}: give a mail domain such as example.com (no "@", no wildcard).`);
  return d;
}

/** The lower-cased domain of an envelope address in its ASCII form (x509/mailbox-address.ts: the one form every domain comparison uses). */
export { mailDomainOf as domainOf } from '../x509/mailbox-address.ts';

export function isOurAddress(address: string, domains: ReadonlySet<string>): boolean {
  return domains.has(mailDomainOf(address));
}
