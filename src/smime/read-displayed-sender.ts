/**
 * Who the reader thinks sent the message (issue 9 item 4, "Johnny, you are fired",
 * Müller et al. 2019): the From and Sender fields as a mail program shows them.
 * The per-signer comparison with the certificate (RFC 8550 section 3) lives in
 * src/pki/match-sender-identity.ts; this module answers the other question, the
 * one only the message can answer: can what the reader sees differ from the
 * addresses compared? The verdict rules (judge-message.ts) never say 'trusted'
 * when it can.
 *
 * - More than one From or Sender field is MALFORMED (RFC 5322 section 3.6 allows
 *   one): programs show the first or the last, and we cannot know which.
 * - The field's structure is parsed before encoded-words are decoded
 *   (parse-addresses.ts); a field that cannot be read cleanly is misleading.
 * - Display names, comments and group names are what programs show in place of
 *   the address. They are normalised as a reader perceives them (NFKC, so "＠"
 *   and "﹫" are "@"; invisible format characters such as zero-width spaces
 *   removed) and then may show no address but the mailbox's own: every "@" in
 *   them must belong to that address.
 * - Bidirectional embedding, override and isolate controls anywhere in the field
 *   can reorder what is shown around them, so the field is misleading.
 * - The address itself must not show another address: an "@" in its local part
 *   (quoted, or a look-alike), an encoded-word (which some programs decode), or
 *   invisible characters.
 */
import { domainToUnicode } from 'node:url';
import { readAsLatin } from '../mime/look-alike-letters.ts';
import { malformed } from '../errors.ts';
import type { HeaderField } from '../mime/entity.ts';
import { parseAddressList, type AddressList } from '../mime/parse-addresses.ts';

export interface MisleadingSender {
  /** A plain sentence saying what a reader may see and why it is not the sender. */
  message: string;
  /** The address a reader may see instead, when there is one. */
  shown?: string;
}

export interface DisplayedSender {
  /** The From field's addr-specs (lower-cased), in order. */
  from: string[];
  /** The Sender field's addr-spec, when there is one. */
  sender: string | undefined;
  /** Every way what a mail program shows may differ from `from` and `sender`; empty when it cannot. */
  misleading: MisleadingSender[];
}

/** Bidirectional embedding, override and isolate controls (UAX #9): they reorder the text around them. */
const BIDI_CONTROLS = /[\u202a-\u202e\u2066-\u2069]/u;
/** Invisible format characters (zero-width spaces and joiners, marks, soft hyphen, BOM...). */
const FORMAT = /\p{Cf}/gu;
const FORMAT_ONE = /\p{Cf}/u;
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;
/** Where a shown address ends: white space and the characters around addresses in text. */
const SEPARATOR = /[\s<>()[\]"',;:]/u;

/** Text as a reader perceives it: compatibility forms folded (NFKC: "＠" is "@"), invisible format characters removed. */
export function normalizeShownText(text: string): string {
  // Printable ASCII is its own NFKC form and has no format characters (the usual case, kept cheap).
  if (PRINTABLE_ASCII.test(text)) return text;
  return text.normalize('NFKC').replace(FORMAT, '');
}

/** The address-like runs of `text` around each "@" (after normalisation), lower-cased. */
function addressesShownIn(text: string): string[] {
  const t = normalizeShownText(text);
  const out: string[] = [];
  if (!t.includes('@')) return out;
  for (let at = t.indexOf('@'); at >= 0; at = t.indexOf('@', at + 1)) {
    let a = at;
    while (a > 0 && !SEPARATOR.test(t[a - 1]!)) a--;
    let b = at + 1;
    while (b < t.length && !SEPARATOR.test(t[b]!)) b++;
    out.push(t.slice(a, b).replace(/[.]+$/, '').toLowerCase());
    at = b - 1;
  }
  return out;
}

/**
 * The domain as a reader reads it, when one of its labels (as Unicode: an A-label
 * "xn--..." is shown decoded by many programs) mixes Latin with Cyrillic, Greek or
 * Armenian letters, or is made of look-alikes of Latin ones ("exаmple.com" with a
 * Cyrillic "а"); undefined for any other domain. Whoever registers such a domain can
 * have a certificate for its mailboxes, so the signature matches the address and only
 * the reader is misled.
 */
function readDomainAsLatin(domain: string): { reading: string; scripts: string[] } | undefined {
  if (PRINTABLE_ASCII.test(domain) && !/(^|\.)xn--/i.test(domain)) return undefined;
  const scripts = new Set<string>();
  let misleads = false;
  const reading = domain.split('.').map((label) => {
    const shown = /^xn--/i.test(label) ? domainToUnicode(label) || label : label;
    const r = readAsLatin(shown);
    if (!r) return shown;
    misleads = true;
    for (const sc of r.scripts) scripts.add(sc);
    return r.reading;
  });
  return misleads ? { reading: reading.join('.'), scripts: [...scripts] } : undefined;
}

/** Appends `m` unless the same sentence is already there (the outer and the protected field can repeat it). */
function flag(misleading: MisleadingSender[], m: MisleadingSender): void {
  if (!misleading.some((x) => x.message === m.message)) misleading.push(m);
}

/** The texts a reader sees in place of the address, with what to say when one shows another address. */
function shownTexts(list: AddressList): Array<{ where: string; texts: readonly string[]; why: string }> {
  const names: string[] = [];
  for (const m of list.mailboxes) {
    if (m.displayName.includes('@') || !PRINTABLE_ASCII.test(m.displayName)) names.push(m.displayName);
    if (m.displayNameRaw !== m.displayName) names.push(m.displayNameRaw);
  }
  return [
    { where: 'display name', texts: names, why: '' },
    { where: 'comment', texts: [...list.comments, ...list.commentsRaw], why: '; some mail programs show a comment as the sender\'s name' },
    { where: 'group name', texts: list.groups, why: '' },
  ];
}

/** Reads one From or Sender field and appends what can mislead about it. */
function readField(role: 'From' | 'Sender', value: string, misleading: MisleadingSender[]): string[] {
  const list = parseAddressList(value);
  const addresses = list.mailboxes.map((m) => m.address);
  const actual = (): string => addresses.join(', ') || 'no address';
  if (list.problems.length > 0) {
    flag(misleading, { message: `The ${role} field cannot be read unambiguously (${list.problems.slice(0, 3).join('; ')}): a mail program may show a sender other than ${actual()}.` });
  }
  if (list.groups.length > 0) {
    flag(misleading, { message: `The ${role} field uses group syntax ("${list.groups[0]!.slice(0, 80)}:"), which RFC 5322 does not allow there; the group name is shown instead of an address.` });
  }
  // Decoded text can only hold a bidi control if the field is not plain ASCII or has encoded-words.
  if ((!PRINTABLE_ASCII.test(value) || value.includes('=?')) && [value, ...list.comments, ...list.groups, ...list.mailboxes.map((m) => m.displayName)].some((t) => BIDI_CONTROLS.test(t))) {
    flag(misleading, { message: `The ${role} field contains invisible bidirectional-text controls, which can change the order in which a mail program shows the name and the address.` });
  }
  let own: Set<string> | undefined;
  for (const { where, texts, why } of shownTexts(list)) {
    for (const text of texts) {
      for (const shown of addressesShownIn(text)) {
        own ??= new Set(addresses.map((a) => normalizeShownText(a).toLowerCase()));
        if (own.has(shown)) continue;
        const whose = role === 'From' ? 'the message is from' : 'the Sender address is';
        // A lone "@" ("Bob @ Home") is flagged too, but is no address to name in the summary.
        flag(misleading, { ...(/.@./u.test(shown) ? { shown } : {}), message: `${where === 'comment' ? `A comment in the ${role} field` : `The ${role} ${where}`} shows ${shown}, but ${whose} ${actual()}${why}.` });
      }
    }
  }
  for (const address of addresses) {
    const plain = PRINTABLE_ASCII.test(address);
    const at = address.lastIndexOf('@');
    // An "@" in the local part: quoted, or a look-alike that NFKC makes one.
    if (address.indexOf('@') !== at || !plain) {
      const local = address.slice(0, at);
      const shownLocal = normalizeShownText(local.startsWith('"') ? local.slice(1, -1) : local);
      if (shownLocal.includes('@')) flag(misleading, { shown: shownLocal, message: `The ${role} address ${address} has an "@" in its local part, so a mail program can show it as ${shownLocal}.` });
    }
    if (address.includes('=?')) flag(misleading, { message: `The ${role} address ${address} contains an RFC 2047 encoded-word, which some mail programs decode into other text.` });
    if (!plain && (FORMAT_ONE.test(address) || BIDI_CONTROLS.test(address))) {
      flag(misleading, { message: `The ${role} address ${address} contains invisible characters, so it is shown as another address.` });
    }
    const lookAlike = readDomainAsLatin(address.slice(at + 1));
    if (lookAlike) {
      const shown = `${address.slice(0, at)}@${lookAlike.reading}`;
      flag(misleading, { shown, message: `The ${role} address ${address} has a domain written in ${lookAlike.scripts.join(' and ')} letters that look like Latin ones, so a mail program shows it as ${shown}.` });
    }
  }
  return addresses;
}

/**
 * MALFORMED when a header section has more than one From or Sender field (RFC 5322
 * section 3.6 allows one of each): mail programs show one of them, and which one
 * differs from program to program. Readers check it through readDisplayedSender;
 * writers (splitMessage, stream-payload.ts) check it too, so that Kakitome never
 * signs or encrypts a message its own reader refuses. Returns the two fields.
 */
export function refuseRepeatedOriginator(headers: readonly HeaderField[]): { from?: HeaderField; sender?: HeaderField } {
  let from: HeaderField | undefined;
  let sender: HeaderField | undefined;
  const repeated = (name: string): never =>
    malformed(`the message has more than one ${name} field (RFC 5322 section 3.6 allows one): mail programs show one of them, and which one differs from program to program`);
  for (const h of headers) {
    // Lengths first: most field names are neither.
    if (h.name.length === 4 && h.name.toLowerCase() === 'from') from = from ? repeated('From') : h;
    else if (h.name.length === 6 && h.name.toLowerCase() === 'sender') sender = sender ? repeated('Sender') : h;
  }
  // One object, its fields only when present (no spread of conditional objects: splitMessage checks every message).
  const found: { from?: HeaderField; sender?: HeaderField } = {};
  if (from) found.from = from;
  if (sender) found.sender = sender;
  return found;
}

/**
 * The sender as the reader sees it, from one header section (the message's, or
 * the protected one of RFC 9788). Throws MALFORMED for two From or two Sender
 * fields.
 */
export function readDisplayedSender(headers: readonly HeaderField[]): DisplayedSender {
  const fields = refuseRepeatedOriginator(headers);
  const misleading: MisleadingSender[] = [];
  const from = fields.from ? readField('From', fields.from.value, misleading) : [];
  const senders = fields.sender ? readField('Sender', fields.sender.value, misleading) : [];
  if (senders.length > 1) misleading.push({ message: `The Sender field names ${senders.length} mailboxes; RFC 5322 allows one.` });
  return { from, sender: senders[0], misleading };
}
