/**
 * A strict, zero-copy BER/DER reader.
 *
 * Why our own and not asn1js/@peculiar/asn1-schema for CMS: verification must hash
 * the exact bytes it received (signed attributes, encapsulated content, certificate
 * TBS), must reject what the brief's "Safe verification" lists (trailing data,
 * impossible lengths, excessive nesting) with coded errors, and must be cheap enough
 * for 10,000 verifications per second per core. asn1js copies every value, keeps no
 * depth limit and accepts trailing bytes, so CMS parsing lives here. The PKI layer
 * uses @peculiar/asn1-x509 where its schemas help and speed does not matter.
 *
 * Strictness (X.690):
 * - BER mode (the default) accepts indefinite lengths on constructed encodings and
 *   constructed (segmented) strings, because NSS, gpgsm and Bouncy Castle write them.
 * - DER mode (signed attributes, certificates where required) accepts only definite,
 *   minimal lengths and primitive strings.
 * - Both modes reject: high-tag-number identifiers (unused by CMS/X.509), lengths
 *   beyond the enclosing value, lengths longer than 4 octets, indefinite length on a
 *   primitive, missing end-of-contents, nesting deeper than the limit, and anything
 *   after the outermost value.
 */
import { KakitomeError, malformed } from '../errors.ts';
import { DEFAULT_LIMITS } from '../limits.ts';

export const Tag = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  ENUMERATED: 0x0a,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  TELETEX_STRING: 0x14,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  VISIBLE_STRING: 0x1a,
  UNIVERSAL_STRING: 0x1c,
  BMP_STRING: 0x1e,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

const CONSTRUCTED = 0x20;

/**
 * Elements one constructed value may have unless its reader gives another bound:
 * above every structure CMS, X.509, OCSP and PKCS#12 mail carries (recipients,
 * certificates, extensions, names), far below what a hostile SET OF can hold.
 */
export const MAX_CHILDREN = 1 << 16;

function tooManyChildren(max: number): never {
  throw new KakitomeError('LIMIT', `An ASN.1 value with more than ${max} elements.`);
}

/** Identifier octet of a context-specific tag [n]. */
export function ctx(n: number, constructed: boolean): number {
  return 0x80 | (constructed ? CONSTRUCTED : 0) | n;
}

export interface ReadOptions {
  /** Require DER: definite minimal lengths, primitive strings. */
  der?: boolean;
  maxDepth?: number;
}

/** One decoded TLV. Offsets index into `buf`; nothing is copied. */
export class Tlv {
  readonly buf: Uint8Array;
  /** The identifier octet (class, constructed bit and tag number). */
  readonly tag: number;
  readonly start: number;
  readonly valueStart: number;
  /** End of the value: for indefinite lengths, the position of the end-of-contents. */
  readonly valueEnd: number;
  /** End of the whole encoding (after the end-of-contents for indefinite lengths). */
  readonly end: number;
  readonly depth: number;
  readonly der: boolean;
  readonly maxDepth: number;
  #children: Tlv[] | undefined;

  constructor(buf: Uint8Array, tag: number, start: number, valueStart: number, valueEnd: number, end: number, depth: number, der: boolean, maxDepth: number) {
    this.buf = buf;
    this.tag = tag;
    this.start = start;
    this.valueStart = valueStart;
    this.valueEnd = valueEnd;
    this.end = end;
    this.depth = depth;
    this.der = der;
    this.maxDepth = maxDepth;
  }

  get constructed(): boolean {
    return (this.tag & CONSTRUCTED) !== 0;
  }

  get indefinite(): boolean {
    return this.end !== this.valueEnd;
  }

  /** The whole original encoding, header included. */
  get bytes(): Uint8Array {
    return this.buf.subarray(this.start, this.end);
  }

  /** The contents octets (for a constructed value: its children's encodings). */
  get value(): Uint8Array {
    return this.buf.subarray(this.valueStart, this.valueEnd);
  }

  /** The tag number ignoring the constructed bit: matches 0x04 and 0x24 alike. */
  get baseTag(): number {
    return this.tag & ~CONSTRUCTED;
  }

  /**
   * The children, read once and kept. The first reading stops past `max` (MAX_CHILDREN
   * unless the caller knows its bound: a SET OF with a limit of its own, a CRL's
   * entries) with LIMIT. Each child is an object of about 150 bytes for at least two
   * bytes of input, so without a bound 4 million empty elements (8 MB) in one SET OF
   * cost 660 MB before any check of their count (test/security/11-segmented-octets).
   */
  children(max = MAX_CHILDREN): Tlv[] {
    // Read already (under a bound given then): nothing more to spend; the caller's own count check applies.
    if (this.#children) return this.#children;
    if (!this.constructed) malformed(`expected a constructed value, found tag 0x${this.tag.toString(16)}`);
    const out: Tlv[] = [];
    let pos = this.valueStart;
    while (pos < this.valueEnd) {
      if (out.length === max) tooManyChildren(max);
      const child = readTlvAt(this.buf, pos, this.valueEnd, this.depth + 1, this.der, this.maxDepth);
      out.push(child);
      pos = child.end;
    }
    this.#children = out;
    return out;
  }

  /** Reads the children in order, as the fields of a SEQUENCE. */
  fields(what: string): Fields {
    return new Fields(this.children(), what);
  }
}

/**
 * Sequential access to the fields of a SEQUENCE with clear errors for missing,
 * unexpected and surplus fields.
 */
export class Fields {
  readonly #items: Tlv[];
  readonly #what: string;
  #i = 0;

  constructor(items: Tlv[], what: string) {
    this.#items = items;
    this.#what = what;
  }

  peek(): Tlv | undefined {
    return this.#items[this.#i];
  }

  /** The next field, whatever its tag. */
  next(field: string): Tlv {
    const t = this.#items[this.#i++];
    if (!t) malformed(`${this.#what}: missing ${field}`);
    return t;
  }

  /** The next field, which must carry `tag`. */
  expect(tag: number, field: string): Tlv {
    const t = this.next(field);
    if (t.tag !== tag) malformed(`${this.#what}: ${field} has tag 0x${t.tag.toString(16)}, expected 0x${tag.toString(16)}`);
    return t;
  }

  /** The next field if it carries `tag` (constructed or not when `anyForm`). */
  optional(tag: number, anyForm = false): Tlv | undefined {
    const t = this.#items[this.#i];
    if (t && (t.tag === tag || (anyForm && t.baseTag === (tag & ~CONSTRUCTED)))) {
      this.#i++;
      return t;
    }
    return undefined;
  }

  /** Fails when fields remain: unknown trailing fields are ambiguity, not extensibility, in CMS. */
  end(): void {
    if (this.#i < this.#items.length) malformed(`${this.#what}: unexpected extra field`);
  }
}

/** Parses exactly one value spanning all of `buf`; trailing bytes are an error. */
export function decode(buf: Uint8Array, opts: ReadOptions = {}): Tlv {
  const der = opts.der ?? false;
  const maxDepth = opts.maxDepth ?? DEFAULT_LIMITS.maxAsn1Depth;
  if (buf.length === 0) malformed('empty input');
  const tlv = readTlvAt(buf, 0, buf.length, 0, der, maxDepth);
  // Walk the whole tree once so that any damage anywhere is found now, not when a
  // field happens to be read. Children are materialised lazily afterwards.
  if (tlv.constructed && !tlv.indefinite) walk(buf, tlv.valueStart, tlv.valueEnd, 1, der, maxDepth);
  if (tlv.end !== buf.length) malformed(`${buf.length - tlv.end} bytes of trailing data after the value`);
  return tlv;
}

interface Header {
  tag: number;
  valueStart: number;
  /** -1 for indefinite. */
  length: number;
}

function readHeader(buf: Uint8Array, pos: number, limit: number, der: boolean): Header {
  if (pos >= limit) malformed('unexpected end of data');
  const tag = buf[pos]!;
  if ((tag & 0x1f) === 0x1f) malformed('high tag numbers are not used in CMS');
  if (pos + 1 >= limit) malformed('unexpected end of data in length');
  const l0 = buf[pos + 1]!;
  let p = pos + 2;
  if (l0 < 0x80) return { tag, valueStart: p, length: l0 };
  if (l0 === 0x80) {
    if (der) malformed('indefinite length is not allowed in DER');
    if ((tag & CONSTRUCTED) === 0) malformed('indefinite length on a primitive value');
    return { tag, valueStart: p, length: -1 };
  }
  const n = l0 & 0x7f;
  if (n > 4 || l0 === 0xff) malformed('length field longer than 4 octets');
  if (p + n > limit) malformed('unexpected end of data in length');
  let len = 0;
  for (let i = 0; i < n; i++) len = len * 256 + buf[p + i]!;
  if (der && (buf[p] === 0 || len < 0x80)) malformed('non-minimal length in DER');
  p += n;
  return { tag, valueStart: p, length: len };
}

function readTlvAt(buf: Uint8Array, pos: number, limit: number, depth: number, der: boolean, maxDepth: number): Tlv {
  if (depth > maxDepth) throw new KakitomeError('LIMIT', `ASN.1 nesting deeper than ${maxDepth} levels.`);
  const h = readHeader(buf, pos, limit, der);
  if (h.length >= 0) {
    const end = h.valueStart + h.length;
    if (end > limit) malformed('length runs past the end of the enclosing value');
    checkUniversalForm(h.tag, h.length);
    if (der) checkDerForm(h.tag);
    return new Tlv(buf, h.tag, pos, h.valueStart, end, end, depth, der, maxDepth);
  }
  // Indefinite: children up to the end-of-contents octets.
  const eoc = walk(buf, h.valueStart, limit, depth + 1, der, maxDepth, true);
  return new Tlv(buf, h.tag, pos, h.valueStart, eoc, eoc + 2, depth, der, maxDepth);
}

/**
 * Validates the values in [pos, limit) (or up to an end-of-contents when `untilEoc`)
 * and returns where they end (the EOC position when `untilEoc`).
 */
function walk(buf: Uint8Array, pos: number, limit: number, depth: number, der: boolean, maxDepth: number, untilEoc = false): number {
  if (depth > maxDepth) throw new KakitomeError('LIMIT', `ASN.1 nesting deeper than ${maxDepth} levels.`);
  while (pos < limit) {
    if (buf[pos] === 0 && untilEoc) {
      if (pos + 1 >= limit || buf[pos + 1] !== 0) malformed('bad end-of-contents octets');
      return pos;
    }
    const h = readHeader(buf, pos, limit, der);
    if (h.tag === 0) malformed('unexpected end-of-contents');
    if (h.length >= 0) {
      const end = h.valueStart + h.length;
      if (end > limit) malformed('length runs past the end of the enclosing value');
      checkUniversalForm(h.tag, h.length);
      if (der) checkDerForm(h.tag);
      if (h.tag & CONSTRUCTED) walk(buf, h.valueStart, end, depth + 1, der, maxDepth);
      pos = end;
    } else {
      const eoc = walk(buf, h.valueStart, limit, depth + 1, der, maxDepth, true);
      pos = eoc + 2;
    }
  }
  if (untilEoc) malformed('missing end-of-contents octets');
  return pos;
}

/**
 * Universal types whose encoding X.690 fixes in BER as well as DER: BOOLEAN (8.2.1:
 * primitive, one octet), INTEGER and ENUMERATED (8.3.1, 8.4: primitive, at least one
 * octet), NULL (8.8: primitive, no contents octets), OBJECT IDENTIFIER (8.19.1:
 * primitive, at least one octet). Anything else is not a value of the type, and a
 * reader that skipped over it (a NULL carrying bytes in an unprotected field) would
 * accept two encodings of one structure. `length` is -1 for an indefinite length,
 * which is already refused on primitives.
 */
export function checkUniversalForm(tag: number, length: number): void {
  if (tag & 0xc0) return;
  const n = tag & 0x1f;
  if (n !== 0x01 && n !== 0x02 && n !== 0x05 && n !== 0x06 && n !== 0x0a) return;
  if (tag & CONSTRUCTED) malformed(`a constructed encoding of universal type ${n}, which X.690 allows only in primitive form`);
  if (n === 0x05 ? length !== 0 : n === 0x01 ? length !== 1 : length < 1) {
    malformed(n === 0x05 ? 'a NULL with contents octets (X.690 8.8.2)' : `a universal type ${n} value of ${length} octets (X.690 8.${n === 0x01 ? '2' : n === 0x06 ? '19' : '3'})`);
  }
}

// Universal string and time types that DER requires to be primitive.
const DER_PRIMITIVE = new Set([0x03, 0x04, 0x0c, 0x13, 0x14, 0x16, 0x17, 0x18, 0x1a, 0x1c, 0x1e]);

function checkDerForm(tag: number): void {
  if (tag & CONSTRUCTED && (tag & 0xc0) === 0 && DER_PRIMITIVE.has(tag & 0x1f)) malformed('constructed string in DER');
}

// ---------------------------------------------------------------- value readers

/**
 * OCTET STRING contents; a constructed (segmented) BER string is joined.
 *
 * Segments are read from the bytes, not as Tlv children: X.690 allows any number of
 * them, empty ones too, and a child object plus a view for each made 4 million
 * two-byte segments (8 MB) cost over a gigabyte (test/security/11-segmented-octets).
 * One pass counts and checks them, a second copies them into one buffer: memory is
 * the contents' size whatever the segment count.
 */
export function readOctets(t: Tlv, maxSegments = DEFAULT_LIMITS.maxSegments): Uint8Array {
  if (!t.constructed) return t.value;
  const count = { segments: 0, bytes: 0, last: -1, lastEnd: -1, max: maxSegments };
  forEachSegment(t.buf, t.valueStart, t.valueEnd, false, t.der, (a, b) => {
    if (++count.segments > count.max) throw new KakitomeError('LIMIT', `More than ${count.max} OCTET STRING segments.`);
    if (b > a) {
      count.bytes += b - a;
      count.last = count.last === -1 ? a : -2;
      count.lastEnd = b;
    }
  });
  // Empty, or one non-empty segment among empty ones: a view, no copy.
  if (count.bytes === 0) return t.buf.subarray(t.valueStart, t.valueStart);
  if (count.last >= 0) return t.buf.subarray(count.last, count.lastEnd);
  const out = Buffer.allocUnsafe(count.bytes);
  let at = 0;
  forEachSegment(t.buf, t.valueStart, t.valueEnd, false, t.der, (a, b) => {
    out.set(t.buf.subarray(a, b), at);
    at += b - a;
  });
  return out;
}

/**
 * Calls `segment(start, end)` for each primitive segment of the constructed string
 * whose contents are [pos, limit) (or end at an end-of-contents when `untilEoc`), in
 * order, and returns where they end. The bytes were checked by decode(); each segment
 * must be an OCTET STRING (X.690 8.7.3.2).
 */
function forEachSegment(buf: Uint8Array, pos: number, limit: number, untilEoc: boolean, der: boolean, segment: (start: number, end: number) => void): number {
  while (pos < limit) {
    if (untilEoc && buf[pos] === 0) return pos + 2;
    const h = readHeader(buf, pos, limit, der);
    if ((h.tag & ~CONSTRUCTED) !== Tag.OCTET_STRING) malformed('segment of a constructed OCTET STRING is not an OCTET STRING');
    if (h.length < 0) pos = forEachSegment(buf, h.valueStart, limit, true, der, segment);
    else {
      const end = h.valueStart + h.length;
      if (h.tag & CONSTRUCTED) forEachSegment(buf, h.valueStart, end, false, der, segment);
      else segment(h.valueStart, end);
      pos = end;
    }
  }
  if (untilEoc) malformed('missing end-of-contents octets');
  return pos;
}

/** Appends the contents of a (possibly constructed) OCTET STRING to `out`, joined (readOctets). */
export function collectSegments(t: Tlv, out: Uint8Array[], maxSegments = DEFAULT_LIMITS.maxSegments): void {
  out.push(readOctets(t, maxSegments));
}

export function readOctetString(t: Tlv, field = 'OCTET STRING'): Uint8Array {
  if (t.baseTag !== Tag.OCTET_STRING) malformed(`${field} is not an OCTET STRING`);
  return readOctets(t);
}

/** INTEGER as its minimal two's-complement content octets (no copy). */
export function readIntegerBytes(t: Tlv, field = 'INTEGER'): Uint8Array {
  if (t.tag !== Tag.INTEGER) malformed(`${field} is not an INTEGER`);
  const v = t.value;
  if (v.length === 0) malformed(`${field} is empty`);
  // X.690 8.3.2: the first nine bits are never all zero or all one.
  if (v.length > 1 && ((v[0] === 0 && (v[1]! & 0x80) === 0) || (v[0] === 0xff && (v[1]! & 0x80) !== 0))) malformed(`${field} is not minimally encoded`);
  return v;
}

export function readBigInt(t: Tlv, field = 'INTEGER'): bigint {
  const v = readIntegerBytes(t, field);
  let n = 0n;
  for (const b of v) n = (n << 8n) | BigInt(b);
  if (v[0]! & 0x80) n -= 1n << BigInt(v.length * 8);
  return n;
}

/** A small non-negative INTEGER such as a version (bounded to 2^31). */
export function readSmallInt(t: Tlv, field = 'INTEGER'): number {
  const v = readIntegerBytes(t, field);
  if (v.length > 4 || v[0]! & 0x80) malformed(`${field} out of range`);
  let n = 0;
  for (const b of v) n = n * 256 + b;
  return n;
}

const oidCache = new Map<string, string>();

export function readOid(t: Tlv, field = 'OBJECT IDENTIFIER'): string {
  if (t.tag !== Tag.OID) malformed(`${field} is not an OBJECT IDENTIFIER`);
  const v = t.value;
  if (v.length === 0 || v.length > 64) malformed(`${field} has a bad length`);
  const key = Buffer.from(v.buffer, v.byteOffset, v.length).toString('latin1');
  const hit = oidCache.get(key);
  if (hit) return hit;
  const arcs: number[] = [];
  let n = 0;
  let started = false;
  for (let i = 0; i < v.length; i++) {
    const b = v[i]!;
    if (!started && b === 0x80) malformed(`${field} is not minimally encoded`);
    started = true;
    n = n * 128 + (b & 0x7f);
    if (n > Number.MAX_SAFE_INTEGER / 256) malformed(`${field} arc too large`);
    if ((b & 0x80) === 0) {
      arcs.push(n);
      n = 0;
      started = false;
    }
  }
  if (started) malformed(`${field} is truncated`);
  const first = arcs[0]!;
  const head = first < 40 ? [0, first] : first < 80 ? [1, first - 40] : [2, first - 80];
  const s = [...head, ...arcs.slice(1)].join('.');
  if (oidCache.size < 4096) oidCache.set(key, s);
  return s;
}

export function readNull(t: Tlv, field = 'NULL'): void {
  if (t.tag !== Tag.NULL || t.valueEnd !== t.valueStart) malformed(`${field} is not NULL`);
}

export function readBoolean(t: Tlv, field = 'BOOLEAN'): boolean {
  if (t.tag !== Tag.BOOLEAN || t.value.length !== 1) malformed(`${field} is not a BOOLEAN`);
  const b = t.value[0]!;
  if (t.der && b !== 0 && b !== 0xff) malformed(`${field} is not DER`);
  return b !== 0;
}

export interface BitString {
  bytes: Uint8Array;
  unusedBits: number;
}

export function readBitString(t: Tlv, field = 'BIT STRING'): BitString {
  if (t.tag !== Tag.BIT_STRING) malformed(`${field} is not a primitive BIT STRING`);
  const v = t.value;
  if (v.length === 0 || v[0]! > 7 || (v.length === 1 && v[0] !== 0)) malformed(`${field} is malformed`);
  return { bytes: v.subarray(1), unusedBits: v[0]! };
}

/** UTCTime or GeneralizedTime in the RFC 5280 profile (seconds, Z, no fractions). */
export function readTime(t: Tlv, field = 'Time'): Date {
  const s = Buffer.from(t.value).toString('latin1');
  let m: RegExpExecArray | null;
  let y: number;
  if (t.tag === Tag.UTC_TIME) {
    m = /^(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(s);
    if (!m) malformed(`${field} is not a UTCTime of the form YYMMDDHHMMSSZ`);
    const yy = Number(m[1]);
    y = yy >= 50 ? 1900 + yy : 2000 + yy; // RFC 5280 4.1.2.5.1
  } else if (t.tag === Tag.GENERALIZED_TIME) {
    m = /^(\d\d\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(s);
    if (!m) malformed(`${field} is not a GeneralizedTime of the form YYYYMMDDHHMMSSZ`);
    y = Number(m[1]);
  } else {
    malformed(`${field} is not a time`);
  }
  const [mo, d, h, mi, se] = [m[2], m[3], m[4], m[5], m[6]].map(Number) as [number, number, number, number, number];
  // Not Date.UTC: it maps years 0-99 to 1900-1999, so GeneralizedTime 0050 would read
  // as 1950 (found while writing test/fuzz). setUTCFullYear takes the year as given.
  const date = new Date(0);
  date.setUTCFullYear(y, mo - 1, d);
  date.setUTCHours(h, mi, se, 0);
  if (date.getUTCMonth() !== mo - 1 || date.getUTCDate() !== d || h > 23 || mi > 59 || se > 59) malformed(`${field} is not a valid date`);
  return date;
}

/** Any of the ASN.1 character string types used in names and attributes. */
export function readString(t: Tlv, field = 'string'): string {
  const v = Buffer.from(t.value.buffer, t.value.byteOffset, t.value.length);
  switch (t.tag) {
    case Tag.UTF8_STRING:
      return v.toString('utf8');
    case Tag.PRINTABLE_STRING:
    case Tag.IA5_STRING:
    case Tag.VISIBLE_STRING:
    case Tag.TELETEX_STRING:
      return v.toString('latin1');
    case Tag.BMP_STRING: {
      if (v.length % 2) malformed(`${field} BMPString has odd length`);
      const sw = Buffer.from(v);
      sw.swap16();
      return sw.toString('utf16le');
    }
    case Tag.UNIVERSAL_STRING: {
      if (v.length % 4) malformed(`${field} UniversalString length`);
      let s = '';
      for (let i = 0; i < v.length; i += 4) {
        const cp = v.readUInt32BE(i);
        // String.fromCodePoint throws a RangeError above U+10FFFF (found while writing
        // test/fuzz); surrogates are not characters in UCS-4 either.
        if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) malformed(`${field} UniversalString holds an invalid code point`);
        s += String.fromCodePoint(cp);
      }
      return s;
    }
    default:
      malformed(`${field} is not a character string`);
  }
}
