/**
 * Splits an entity into its header section and body (RFC 5322 section 2.1, RFC 2045
 * section 3) and the header section into fields, keeping each field's exact bytes.
 *
 * Hand-written on purpose: mailsplit (the nodemailer family's splitter) is an
 * asynchronous Transform stream that re-serialises what it parsed and reports no
 * byte offsets, while the S/MIME layer needs the synchronous exact byte ranges of
 * every field and body to verify signatures. Decoding of field values (RFC 2047,
 * RFC 2231) is left to libmime.
 */
import { KakitomeError, malformed } from '../errors.ts';
import type { Limits } from '../limits.ts';
import type { HeaderField } from './entity.ts';

const LF = 0x0a;
const CR = 0x0d;
const SP = 0x20;
const HT = 0x09;
const COLON = 0x3a;

export interface HeaderSection {
  fields: HeaderField[];
  /** End of the header section (exclusive), before the blank separator line. */
  headerEnd: number;
  /** Where the body starts (after the blank line), or `end` when there is none. */
  bodyStart: number;
  warnings: string[];
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** Buffer's own Latin-1 decoder, without toString's argument handling (a measurable share of parsing many short fields). */
const latin1Slice: (this: Buffer, start: number, end: number) => string =
  (Buffer.prototype as unknown as { latin1Slice?: (this: Buffer, start: number, end: number) => string }).latin1Slice ??
  function (this: Buffer, start: number, end: number): string {
    return this.toString('latin1', start, end);
  };

function isTrimmed(b: number): boolean {
  return b === SP || (b >= HT && b <= CR);
}

/**
 * The general reading of a field body (the bytes after the colon, up to and including
 * the field's last line break): UTF-8 when valid (RFC 6532), else Latin-1 so no byte
 * is lost; unfolded (RFC 5322 section 2.2.3: each CRLF followed by WSP is removed);
 * surrounding whitespace trimmed. parseHeaderSection computes the same value more
 * cheaply for the common single-line ASCII field (test/mime/parse-header-section.test.ts
 * compares the two).
 */
export function decodeFieldBody(bytes: Buffer): string {
  let text: string;
  const latin1 = bytes.toString('latin1');
  if (!/[^\x00-\x7f]/.test(latin1)) text = latin1;
  else {
    try {
      text = UTF8.decode(bytes);
    } catch {
      text = latin1;
    }
  }
  return text.replace(/\r?\n(?=[ \t])/g, '').replace(/\r?\n$/, '').trim();
}

/** True when only spaces and tabs stand between `from` and a colon on the line: a field name written with WSP before its colon. */
function isObsoleteFieldName(buf: Buffer, from: number, lineEnd: number): boolean {
  let i = from;
  while (i < lineEnd && (buf[i] === SP || buf[i] === HT)) i++;
  return i < lineEnd && buf[i] === COLON;
}

/**
 * Reads the header section of `buf[start, end)`. Every line is bounded by
 * limits.maxLineLength and the section by limits.maxHeaderBytes (LIMIT errors).
 */
export function parseHeaderSection(buf: Buffer, start: number, end: number, limits: Limits, first = false): HeaderSection {
  const fields: HeaderField[] = [];
  const warnings: string[] = [];
  let pos = start;
  let fieldStart = -1;
  let fieldColon = -1;
  // Whether the open field so far is all ASCII and on one line: then its value is the
  // trimmed Latin-1 text, with no decoding or unfolding to do (decodeFieldBody's result).
  let fieldSimple = true;
  const closeField = (at: number): void => {
    if (fieldStart < 0) return;
    const raw = buf.subarray(fieldStart, at);
    let nameEnd = fieldColon;
    // QUIRK: RFC 5322 section 4.5.1 obsolete syntax allows WSP before the colon ("Subject : x").
    while (nameEnd > fieldStart && (buf[nameEnd - 1] === SP || buf[nameEnd - 1] === HT)) nameEnd--;
    const name = latin1Slice.call(buf, fieldStart, nameEnd);
    let value: string;
    if (fieldSimple) {
      // String.prototype.trim on ASCII removes exactly these bytes (HT, LF, VT, FF, CR, SP): trim them before making the string.
      let a = fieldColon + 1;
      let b = at;
      while (a < b && isTrimmed(buf[a]!)) a++;
      while (b > a && isTrimmed(buf[b - 1]!)) b--;
      value = latin1Slice.call(buf, a, b);
    } else value = decodeFieldBody(buf.subarray(fieldColon + 1, at));
    fields.push({ name, raw, value });
    fieldStart = -1;
  };
  while (pos < end) {
    // One pass over the line: its end, its first colon, and whether it has 8-bit bytes.
    // The scan stops one byte past the line limit, so an endless line costs no more than that.
    const scanEnd = Math.min(end, pos + limits.maxLineLength + 1);
    let nl = pos;
    let colon = -1;
    let high = 0;
    for (; nl < scanEnd; nl++) {
      const b = buf[nl]!;
      if (b === LF) break;
      if (b === COLON && colon < 0) colon = nl;
      high |= b;
    }
    if (nl === scanEnd && scanEnd < end) throw new KakitomeError('LIMIT', `A header line of more than ${limits.maxLineLength} bytes exceeds the line limit.`);
    const lineEnd = nl < end ? nl + 1 : end;
    if (lineEnd - pos > limits.maxLineLength) throw new KakitomeError('LIMIT', `A header line of more than ${limits.maxLineLength} bytes exceeds the line limit.`);
    if (pos - start > limits.maxHeaderBytes) throw new KakitomeError('LIMIT', `A header section of more than ${limits.maxHeaderBytes} bytes exceeds the header limit.`);
    const contentEnd = nl > pos && buf[nl - 1] === CR ? nl - 1 : nl;
    if (contentEnd === pos) {
      // The blank line: end of the header section.
      closeField(pos);
      return { fields, headerEnd: pos, bodyStart: lineEnd, warnings };
    }
    const c = buf[pos]!;
    if (c === SP || c === HT) {
      if (fieldStart < 0) malformed('a header section starts with a continuation line');
      fieldSimple = false;
    } else {
      closeField(pos);
      // QUIRK: files saved from an mbox start with a "From sender date" separator line.
      // "From :" (WSP before the colon, RFC 5322 section 4.5.3's obsolete syntax) is the
      // From field, as Postfix, Dovecot and Python read it: skipping it would hide a
      // second From from the one-From rule (docs/security.md, section 4).
      if (first && fields.length === 0 && pos === start && buf.toString('latin1', pos, pos + 5) === 'From ' && !isObsoleteFieldName(buf, pos + 4, contentEnd)) {
        warnings.push('An mbox "From " separator line before the header section was ignored.');
        pos = lineEnd;
        continue;
      }
      if (colon < 0 || colon >= contentEnd) malformed(`header line without a colon at byte ${pos}`);
      let nameEnd = colon;
      while (nameEnd > pos && (buf[nameEnd - 1] === SP || buf[nameEnd - 1] === HT)) nameEnd--;
      for (let i = pos; i < nameEnd; i++) {
        const b = buf[i]!;
        // RFC 5322 section 3.6.8: ftext is printable US-ASCII except colon (WSP only before the colon, QUIRK in closeField).
        if (b < 33 || b > 126) malformed(`invalid character in a header field name at byte ${i}`);
      }
      if (colon === pos) malformed(`empty header field name at byte ${pos}`);
      fieldStart = pos;
      fieldColon = colon;
      fieldSimple = true;
    }
    if (high & 0x80) fieldSimple = false;
    pos = lineEnd;
  }
  // No blank line: the entity is all header section and has an empty body (RFC 5322 section 3.5 makes the body optional).
  closeField(end);
  return { fields, headerEnd: end, bodyStart: end, warnings };
}
