/**
 * What counts as a mailbox address where one is certified or signs in: a local part
 * of 1 to 64 characters without spaces, control characters (NUL, ESC, DEL: a name
 * cut at NUL or a terminal sequence in whatever prints it) or specials, and an ASCII
 * domain of at least two labels (internationalised domains in their xn-- form). The internal CA, the
 * console's people and the organisation's domains all ask this one question.
 */
const EMAIL = /^[^\s\x00-\x1f\x7f@"(),:;<>[\\\]]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$/;

export function isMailboxAddress(text: string): boolean {
  return EMAIL.test(text.trim());
}

const DOMAIN = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$/;

/** True for a lower-case ASCII mail domain of at least two labels (example.co.jp, xn--...). */
export function isMailDomain(text: string): boolean {
  return DOMAIN.test(text);
}
