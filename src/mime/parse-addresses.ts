/**
 * Mailbox addresses (addr-spec) from an address-list field such as From or To
 * (RFC 5322 section 3.4). Only the addr-specs are extracted, for comparing a
 * sender with a certificate (RFC 8550 section 3): display names and groups are
 * skipped. Hand-written because the address parsers in the nodemailer family are
 * internal modules of larger packages; the grammar handled here is small: quoted
 * strings, comments, angle addresses, and commas as separators.
 */
import { decodeHeaderText } from './decode-header-text.ts';

export interface Mailbox {
  /** The addr-spec, lower-cased. */
  address: string;
  /** The display name as a reader sees it (quoted strings unquoted), possibly empty. */
  displayName: string;
}

/** Lower-cased addr-specs in order of appearance. */
export function parseAddresses(value: string): string[] {
  return parseMailboxes(value).map((m) => m.address);
}

/** Mailboxes with their display names, in order of appearance. */
export function parseMailboxes(value: string): Mailbox[] {
  const text = decodeHeaderText(value);
  const out: Mailbox[] = [];
  let cur = '';
  let phrase = '';
  let angle: string | undefined;
  let inAngle = false;
  let depth = 0;
  let quoted = false;
  const flush = (): void => {
    const candidate = (angle ?? cur).trim();
    // Group syntax "name: a@b, c@d;" leaves "name:" before the first address.
    const spec = candidate.replace(/^[^:<>"]*:\s*/, '').replace(/;$/, '').trim();
    const displayName = (angle === undefined ? phrase : phrase + cur).replace(/^[^:<>"]*:\s*/, '').replace(/\s+/g, ' ').trim();
    if (/^[^\s@<>(),;:"]+@[^\s@<>(),;:"]+$/.test(spec)) out.push({ address: spec.toLowerCase(), displayName });
    cur = '';
    phrase = '';
    angle = undefined;
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '\\') phrase += text[++i] ?? '';
      else if (c === '"') quoted = false;
      else phrase += c;
      continue;
    }
    if (depth > 0) {
      if (c === '\\') i++;
      else if (c === '(') depth++;
      else if (c === ')') depth--;
      continue;
    }
    if (c === '"') quoted = true;
    else if (c === '(') depth = 1;
    else if (c === '<') {
      inAngle = true;
      phrase += cur;
      cur = '';
      angle = '';
    } else if (c === '>') inAngle = false;
    else if (inAngle) angle += c;
    else if (c === ',' || c === ';') flush();
    else cur += c;
  }
  flush();
  return out;
}

/**
 * Display names that show an e-mail address other than the mailbox's own, as in
 * `"alice@example.com" <mallory@example.com>`: most clients show only the display
 * name, so a valid signature by mallory would read as alice's ("Johnny, you are
 * fired", 2019). Returns the misleading pairs.
 */
export function findDisplayNameSpoofs(value: string): Array<{ shown: string; actual: string }> {
  return findDisplayNameSpoofsIn(parseMailboxes(value));
}

/** findDisplayNameSpoofs for mailboxes already parsed (a caller that also needs the addresses parses once). */
export function findDisplayNameSpoofsIn(mailboxes: readonly Mailbox[]): Array<{ shown: string; actual: string }> {
  const out: Array<{ shown: string; actual: string }> = [];
  for (const m of mailboxes) {
    // Only a display name containing "@" can show an address.
    if (!m.displayName.includes('@')) continue;
    for (const shown of m.displayName.match(/[^\s<>"'(),;:@]+@[^\s<>"'(),;:@]+\.[^\s<>"'(),;:@]+/g) ?? []) {
      if (shown.toLowerCase() !== m.address) out.push({ shown, actual: m.address });
    }
  }
  return out;
}
