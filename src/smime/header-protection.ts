/**
 * Header protection for cryptographically protected mail (RFC 9788).
 *
 * Sending (section 4): the message's non-structural header fields are copied into
 * the header section of the Cryptographic Payload's root part, whose Content-Type
 * gets hp="clear" (signed only) or hp="cipher" (encrypted). Each header field left
 * on the outside of encrypted mail is recorded inside as "HP-Outer: Name: value"
 * (section 2.2) so the recipient can tell deliberate obscuring from tampering.
 *
 * Which fields encryption hides outside is the Header Confidentiality Policy
 * (section 3.2). The default is hcp_no_confidentiality: every field stays as it is
 * outside, protected (signed and encrypted) inside, because Outlook, Apple Mail, iOS
 * Mail, Gmail and Thunderbird (for S/MIME) show only the outer fields and their
 * users would read "[...]" as the Subject forever. hideSubject chooses hcp_baseline
 * (section 3.2.1): the outer Subject becomes "[...]", Comments and Keywords are
 * dropped, and a Legacy Display Element (legacy-display.ts) puts the real Subject at
 * the top of the body for those clients.
 *
 * Receiving (section 4.10): when the payload root carries hp, its header fields are
 * the ones to show; outer fields that differ without an HP-Outer explanation are
 * reported as mismatches.
 */
import { isAscii } from 'node:buffer';
import { decodeHeaderText } from '../mime/decode-header-text.ts';
import { foldLines, formatHeaderField, type HeaderInput } from '../mime/build-entity.ts';
import { getHeaderFields, type HeaderField, type MimeEntity } from '../mime/entity.ts';
import { parseAddressList } from '../mime/parse-addresses.ts';
import type { ProtectedHeadersReport } from './verdict.ts';

/** Fields copied into the payload: the user-facing, non-structural ones (RFC 9788 section 1.1 "non-structural"). */
export const PROTECTED_HEADER_NAMES: readonly string[] = [
  'from', 'sender', 'reply-to', 'to', 'cc', 'subject', 'date', 'message-id', 'in-reply-to', 'references',
  'keywords', 'comments', 'followup-to', 'mail-followup-to', 'mail-reply-to', 'list-id',
];

const PROTECTED = new Set(PROTECTED_HEADER_NAMES);

/** True for the fields header protection copies (by name, any case). */
export function isProtectedField(name: string): boolean {
  return PROTECTED.has(name.toLowerCase());
}

/** hcp_baseline (RFC 9788 section 3.2.1): Subject obscured, Comments and Keywords removed. */
export const OBSCURED_SUBJECT = '[...]';
const REMOVED_BY_HCP = new Set(['comments', 'keywords']);

/** Structural fields: they describe the MIME entity and move with the content (RFC 2045 section 9). */
export function isContentField(name: string): boolean {
  // The first letter and the length first: most names (From, To, Subject, Received) are neither, and go without a lower-cased copy.
  const c = name.charCodeAt(0) | 0x20;
  if (c === 0x63) return name.length >= 8 && name.slice(0, 8).toLowerCase() === 'content-';
  return c === 0x6d && name.length === 12 && name.toLowerCase() === 'mime-version';
}

/** The message fields to protect, in message order. */
export function selectProtectedFields(messageHeaders: readonly HeaderField[]): HeaderField[] {
  return messageHeaders.filter((h) => isProtectedField(h.name));
}

/** Fields that hold addresses: an RFC 2047 encoded-word is never an address (RFC 2047 section 5 (3)). */
const ADDRESS_FIELDS = new Set(['from', 'sender', 'reply-to', 'to', 'cc', 'bcc']);

/**
 * Copies fields for the inside: raw bytes when 7-bit; other RFC 6532 UTF-8 fields are
 * re-encoded as RFC 2047 words so the payload stays 7-bit, except an address field
 * whose addresses are themselves UTF-8 (info@пример.рф): as an encoded-word it is no
 * address, and its reader (ours too) sees a From that cannot be read. It has no 7-bit
 * form, and the message holding it is 8-bit outside already, so it stays raw.
 */
export function copyFieldsInside(fields: readonly HeaderField[]): HeaderInput[] {
  return fields.map(fieldInside);
}

/** copyFieldsInside(selectProtectedFields(messageHeaders)) appended to `out`, with no arrays in between (every signed message). */
export function pushProtectedFieldsInside(out: HeaderInput[], messageHeaders: readonly HeaderField[]): void {
  for (const f of messageHeaders) if (isProtectedField(f.name)) out.push(fieldInside(f));
}

function fieldInside(f: HeaderField): HeaderInput {
  return isAscii(f.raw) || hasInternationalAddress(f) ? f : ([f.name, f.value] as const);
}

/**
 * The HP-Outer field that records outer field `f`, in the form fieldInside gives the
 * field itself: an address field whose addresses are UTF-8 stays raw UTF-8, for as
 * encoded-words its parts would decode to another value. `From: =?UTF-8?B?5bGx55Sw?=
 * <yamada@例え.jp>` was written as two adjacent encoded-words, whose separating space
 * every decoder drops (RFC 2047 section 6.2): "山田<yamada@例え.jp>", a mismatch with
 * the outer From reported on every such message.
 */
function hpOuterField(f: HeaderField): Buffer {
  // An ASCII field (nearly all) holds no UTF-8 address: no address parse on every encryption.
  if (isAscii(f.raw) || !hasInternationalAddress(f)) return formatHeaderField('HP-Outer', `${f.name}: ${f.value}`);
  return Buffer.from(`${foldLines(`HP-Outer: ${f.name}: ${f.value}`, 76).replace(/\r?\n/g, '\r\n')}\r\n`, 'utf8');
}

function hasInternationalAddress(f: HeaderField): boolean {
  return ADDRESS_FIELDS.has(f.name.toLowerCase()) && parseAddressList(f.value).mailboxes.some((m) => /[^\x00-\x7f]/.test(m.address));
}

export interface ConfidentialHeaders {
  /** The outer message fields after the Header Confidentiality Policy. */
  outer: HeaderInput[];
  /** HP-Outer fields for the inside, one per outer non-structural field (RFC 9788 section 2.2). */
  hpOuter: Buffer[];
}

/** RFC 9788 section 3.2: what encryption hides outside. 'none' is hcp_no_confidentiality, 'baseline' hcp_baseline. */
export type HeaderConfidentiality = 'none' | 'baseline';

/** Applies the Header Confidentiality Policy to the outer message header fields (encryption only). */
export function applyHeaderConfidentiality(messageHeaders: readonly HeaderField[], policy: HeaderConfidentiality): ConfidentialHeaders {
  const outer: HeaderInput[] = [];
  const hpOuter: Buffer[] = [];
  const baseline = policy === 'baseline';
  for (const f of messageHeaders) {
    const n = f.name.toLowerCase();
    if (baseline && REMOVED_BY_HCP.has(n)) continue;
    if (baseline && n === 'subject') {
      outer.push(['Subject', OBSCURED_SUBJECT]);
      if (PROTECTED_HEADER_NAMES.includes(n)) hpOuter.push(formatHeaderField('HP-Outer', `Subject: ${OBSCURED_SUBJECT}`));
      continue;
    }
    outer.push(f);
    if (PROTECTED_HEADER_NAMES.includes(n)) hpOuter.push(hpOuterField(f));
  }
  return { outer, hpOuter };
}

/** The Subject a reader would see (the first Subject field, encoded-words decoded), or undefined. */
export function subjectOf(messageHeaders: readonly HeaderField[]): string | undefined {
  const f = messageHeaders.find((h) => h.name.toLowerCase() === 'subject');
  return f ? decodeHeaderText(f.value) : undefined;
}

function normalize(value: string): string {
  return collapseWhitespace(decodeHeaderText(value));
}

/** Runs of whitespace become one space, ends trimmed; text that is already so (the usual case) is returned without a regular expression. */
export function collapseWhitespace(text: string): string {
  let previousSpace = true; // a leading space needs trimming
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x20) {
      if (previousSpace) return text.replace(/\s+/g, ' ').trim();
      previousSpace = true;
    } else if (c < 0x21 || c > 0x7e) return text.replace(/\s+/g, ' ').trim();
    else previousSpace = false;
  }
  return previousSpace && text.length > 0 ? text.replace(/\s+/g, ' ').trim() : text;
}

/** The hp parameter of a payload root, or undefined when it carries no header protection. */
export function headerProtectionMode(payload: MimeEntity): 'cipher' | 'clear' | undefined {
  const hp = payload.contentType.params.hp?.toLowerCase();
  return hp === 'cipher' || hp === 'clear' ? hp : undefined;
}

/**
 * Reads the protected header fields of `payload` and compares them with the
 * outer message header fields. Returns undefined when the payload has no hp.
 */
export function readProtectedHeaders(payload: MimeEntity, outerHeaders: readonly HeaderField[], encrypted: boolean): ProtectedHeadersReport | undefined {
  const mode = headerProtectionMode(payload);
  if (!mode) return undefined;
  const headers: Array<[string, string]> = [];
  // Protected fields by lower-case name, values normalised, in order: inner names first, then outer-only ones.
  const innerByName = new Map<string, string[]>();
  const outerByName = new Map<string, string[]>();
  for (const h of payload.headers) {
    const n = h.name.toLowerCase();
    if (!PROTECTED.has(n)) continue;
    const text = decodeHeaderText(h.value);
    headers.push([h.name, text]);
    const list = innerByName.get(n);
    const v = collapseWhitespace(text);
    if (list) list.push(v);
    else innerByName.set(n, [v]);
  }
  for (const h of outerHeaders) {
    const n = h.name.toLowerCase();
    if (!PROTECTED.has(n)) continue;
    const list = outerByName.get(n);
    const v = normalize(h.value);
    if (list) list.push(v);
    else outerByName.set(n, [v]);
  }
  const mismatches: string[] = [];
  if (mode === 'cipher' && !encrypted) mismatches.push('The payload says hp="cipher" but no encryption layer was removed: the header protection claims confidentiality it did not have.');
  // What the sender says it put outside (RFC 9788 section 2.2), by lower-case name.
  const declaredOuter = new Map<string, string[]>();
  for (const f of getHeaderFields(payload, 'hp-outer')) {
    const colon = f.value.indexOf(':');
    if (colon <= 0) continue;
    const n = f.value.slice(0, colon).trim().toLowerCase();
    declaredOuter.set(n, [...(declaredOuter.get(n) ?? []), normalize(f.value.slice(colon + 1))]);
  }
  const names = new Set([...innerByName.keys(), ...outerByName.keys()]);
  for (const n of names) {
    const innerValues = innerByName.get(n) ?? [];
    const outerValues = outerByName.get(n) ?? [];
    const expected = mode === 'cipher' && declaredOuter.size > 0 ? (declaredOuter.get(n) ?? []) : innerValues;
    if (expected.join('\n') !== outerValues.join('\n')) {
      const shown = outerValues.length ? `"${outerValues.join(', ').slice(0, 120)}"` : 'absent';
      const want = expected.length ? `"${expected.join(', ').slice(0, 120)}"` : 'absent';
      mismatches.push(`Outer ${n} is ${shown} but the protected message says ${want}.`);
    }
  }
  return { mode, headers, mismatches };
}

/**
 * The protected header fields a reader should be shown: each hp layer on the way in
 * (outermost first) read against the header fields of the layer outside it, the
 * innermost one winning (`layer`), with every layer's mismatches. Undefined when
 * none has hp.
 */
export function collectProtectedHeaders<T extends { entity: MimeEntity; encrypted: boolean }>(hpLayers: readonly T[], messageHeaders: readonly HeaderField[]): { report: ProtectedHeadersReport; layer: T } | undefined {
  let found: { report: ProtectedHeadersReport; layer: T } | undefined;
  let reference = messageHeaders;
  const mismatches: string[] = [];
  for (const layer of hpLayers) {
    const r = readProtectedHeaders(layer.entity, reference, layer.encrypted);
    if (!r) continue;
    mismatches.push(...r.mismatches);
    found = { report: { ...r, mismatches }, layer };
    reference = layer.entity.headers;
  }
  return found;
}
