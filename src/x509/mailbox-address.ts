/**
 * What counts as a mailbox address where one is certified or signs in: a local part
 * of 1 to 64 characters without spaces, control characters (NUL, ESC, DEL: a name
 * cut at NUL or a terminal sequence in whatever prints it) or specials, and an ASCII
 * domain of at least two labels (internationalised domains in their xn-- form). The internal CA, the
 * console's people and the organisation's domains all ask this one question.
 */
import { domainToASCII } from 'node:url';

const EMAIL = /^[^\s\x00-\x1f\x7f@"(),:;<>[\\\]]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$/;

export function isMailboxAddress(text: string): boolean {
  return EMAIL.test(text.trim());
}

/**
 * isMailboxAddress of the address as the store files it (normalizeAddress): the domain
 * may be written with its Unicode labels ('山田@例え.jp' is '山田@xn--r8jz45g.jp'). For
 * what a person types (the console's people, sign-in, imports); the caller files the
 * normalized form, never the text as typed.
 */
export function isMailboxAddressInAnyForm(text: string): boolean {
  return isMailboxAddress(normalizeAddress(text));
}

const DOMAIN = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$/;

/** True for a lower-case ASCII mail domain of at least two labels (example.co.jp, xn--...). */
export function isMailDomain(text: string): boolean {
  return DOMAIN.test(text);
}

/**
 * The domain of an address (after its last "@") as mail compares domains: lower case,
 * without a final dot, in its ASCII form; '' for the null sender and addresses without
 * one. An SMTPUTF8 address may write an xn-- domain with its Unicode labels (RFC 6531
 * 3.2, RFC 5890 2.3.2.1): one domain, so one form (UTS 46, as node:url); a non-ASCII
 * domain with no ASCII form is kept as written, and matches no ASCII domain. The
 * gateway's own domains, its recipients, the store's address lookups and the policy's
 * domain lists all compare this form.
 */
export function mailDomainOf(address: string): string {
  const at = address.lastIndexOf('@');
  if (at < 0) return '';
  const d = address.slice(at + 1).toLowerCase().replace(/\.$/, '');
  return /[^\x00-\x7f]/.test(d) ? domainToASCII(d) || d : d;
}

/**
 * Splits local@domain, the domain in mailDomainOf's one form (so name constraints,
 * identity matching, the store and the gateway compare the same string). Undefined
 * when malformed: no local part or domain, a domain with an empty label
 * ("evil.example.", "a..b": RFC 5321 4.1.2 has no final dot, and a certificate's
 * name is refused rather than read leniently), or a domain that is no valid domain
 * name in its ASCII form (UTS 46, as node:url: a Unicode domain without an A-label
 * form, an xn-- label that is no Punycode).
 */
export function splitMailbox(address: string): { local: string; domain: string } | undefined {
  const at = address.lastIndexOf('@');
  if (at <= 0 || at === address.length - 1) return undefined;
  if (address.slice(at + 1).split('.').includes('')) return undefined;
  const domain = mailDomainOf(address);
  if (domainToASCII(domain) !== domain) return undefined;
  return { local: address.slice(0, at), domain };
}

/**
 * One key per mailbox: the local part exactly as given (RFC 5321 2.4: case-sensitive,
 * Bob@ and bob@ are two mailboxes) and the domain as mailDomainOf gives it, so that
 * bob@Example.COM, bob@example.com. and bob@例え.jp / bob@xn--r8jz45g.jp are each one.
 */
export function mailboxKey(address: string): string {
  const at = address.lastIndexOf('@');
  return at < 0 ? address : `${address.slice(0, at)}@${mailDomainOf(address)}`;
}

/**
 * QUIRK: RFC 5321 2.4 makes the local part case-sensitive, but no mail system we
 * meet treats it so and certificates differ in case from From headers; addresses
 * are matched case-insensitively. The domain in its one form (mailDomainOf: ASCII,
 * no final dot), as a certificate's rfc822Name writes it: bob@例え.jp finds the
 * certificate of bob@xn--r8jz45g.jp. Before, it found none, and the gateway sent
 * that spelling a copy in clear while encrypting to the other (migration 26 re-filed
 * addresses stored in the older form).
 */
export function normalizeAddress(email: string): string {
  const a = email.trim().toLowerCase();
  const at = a.lastIndexOf('@');
  return at < 0 ? a : `${a.slice(0, at)}@${mailDomainOf(a)}`;
}
