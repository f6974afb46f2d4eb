/**
 * The Authentication-Results header field the gateway writes on inbound mail
 * (RFC 8601), with the S/MIME method of RFC 7281:
 *
 *   Authentication-Results: mail.example.com; smime=pass reason="..."
 *     smime.smime-identifier=alice@example.org smime.smime-serial=01AB
 *     smime.verdict-code=CERT_UNTRUSTED
 *
 * smime-identifier and smime-serial are RFC 7281's properties (the signer's address
 * and certificate serial); verdict-code is ours: the library's stable error code
 * (docs/errors.md), absent on a pass. The reason is the verdict's plain-language
 * summary, reduced to printable ASCII.
 *
 * Fields that claim our authserv-id on arriving mail are forgeries or stale (RFC 8601
 * section 5: a border MTA removes them); `claimsAuthservId` finds them.
 */
import { formatHeaderField } from '../mime/build-entity.ts';
import { decodeHeaderText } from '../mime/decode-header-text.ts';
import type { HeaderField } from '../mime/entity.ts';
import type { MethodResult } from '../dkim/authenticate-sender.ts';

export type SmimeResult = 'pass' | 'fail' | 'neutral' | 'none' | 'temperror' | 'permerror';

export interface SmimeAuthentication {
  result: SmimeResult;
  /** The library's code for what was found (absent on pass and none). */
  code?: string;
  /** One sentence for the reader. */
  reason: string;
  signer?: { email?: string; serial?: string };
}

const MAX_REASON = 200;

/** A quoted-string (RFC 5322 3.2.4) of printable ASCII: control and 8-bit characters become "?", quotes and backslashes are escaped. */
function quoted(text: string): string {
  let s = text.replace(/[^\x20-\x7e]/g, '?');
  if (s.length > MAX_REASON) s = `${s.slice(0, MAX_REASON - 3)}...`;
  return `"${s.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

/** The longest pvalue written as is: an address's longest (RFC 5321 4.5.3.1.3, a path of 256 octets less its brackets). */
const MAX_PVALUE = 254;

/**
 * An RFC 8601 pvalue: an address or token as is, anything else quoted. A longer one
 * (a certificate's address, a MAIL FROM or a DKIM tag are the sender's to choose) is
 * quoted and so cut at MAX_REASON: a token cannot be folded, and a line of more than
 * 998 characters breaks RFC 5322 2.1.1 (a next hop may refuse the message or split the line).
 */
function pvalue(text: string): string {
  return text.length <= MAX_PVALUE && /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~.]+(@[A-Za-z0-9.-]+)?$/.test(text) ? text : quoted(text);
}

/**
 * The field: our authserv-id, the smime result, then the sender authentication
 * results (dkim, spf, dmarc: authenticate-sender.ts) when they were checked, each
 * a resinfo of its own (RFC 8601 section 2.2), so a reader sees S/MIME and DMARC
 * side by side in the one field our authserv-id vouches for.
 */
export function formatAuthenticationResults(authservId: string, auth: SmimeAuthentication, others: readonly MethodResult[] = []): Buffer {
  const parts = [`${authservId};`, `smime=${auth.result}`, `reason=${quoted(auth.reason)}`];
  if (auth.signer?.email) parts.push(`smime.smime-identifier=${pvalue(auth.signer.email)}`);
  if (auth.signer?.serial) parts.push(`smime.smime-serial=${pvalue(auth.signer.serial)}`);
  if (auth.code) parts.push(`smime.verdict-code=${auth.code}`);
  for (const m of others) {
    parts[parts.length - 1] += ';';
    parts.push(`${m.method}=${m.result}`);
    if (m.reason) parts.push(`reason=${quoted(m.reason)}`);
    for (const [name, value] of m.properties) parts.push(`${name}=${pvalue(value)}`);
  }
  return formatHeaderField('Authentication-Results', parts.join(' '));
}

/** Skips CFWS (whitespace and nested comments) from `i`. */
function skipCfws(v: string, i: number): number {
  for (;;) {
    while (i < v.length && /\s/.test(v[i]!)) i++;
    if (v[i] !== '(') return i;
    let depth = 0;
    for (; i < v.length; i++) {
      if (v[i] === '\\') i++;
      else if (v[i] === '(') depth++;
      else if (v[i] === ')' && --depth === 0) {
        i++;
        break;
      }
    }
  }
}

/**
 * The authserv-id an Authentication-Results field body starts with (token or
 * quoted-string), lower-cased and without final dots. The token ends at white space
 * or any RFC 2045 tspecial, not only at ";" or "(": a reader that parses loosely
 * stops there too ("mx.example.com/1;" reads as mx.example.com), and a DNS name
 * with a final dot is the same name.
 */
export function authservIdOf(value: string): string {
  let i = skipCfws(value, 0);
  if (value[i] === '"') {
    let out = '';
    for (i++; i < value.length && value[i] !== '"'; i++) out += value[i] === '\\' ? (value[++i] ?? '') : value[i];
    return out.trim().toLowerCase().replace(/\.+$/, '');
  }
  const start = i;
  while (i < value.length && !/[\s()<>@,;:\\"/[\]?=]/.test(value[i]!)) i++;
  return value.slice(start, i).toLowerCase().replace(/\.+$/, '');
}

/**
 * True for an Authentication-Results field that claims `authservId` (case-insensitive,
 * RFC 8601 section 2.5), also when written as an encoded word: RFC 8601 has none, but
 * a mail client that decodes every field would show it as ours.
 */
export function claimsAuthservId(field: HeaderField, authservId: string): boolean {
  if (field.name.toLowerCase() !== 'authentication-results') return false;
  const ours = authservId.toLowerCase().replace(/\.+$/, '');
  return authservIdOf(field.value) === ours || (field.value.includes('=?') && authservIdOf(decodeHeaderText(field.value)) === ours);
}

/** The gateway's own header fields: never accepted from outside. */
export function isGatewayHeaderField(field: HeaderField): boolean {
  return field.name.toLowerCase().startsWith('x-kakitome-');
}
