/**
 * DER encoding (X.690 section 10). Each function returns the complete encoding of
 * one value as a Buffer; composites concatenate their children's encodings.
 * Hand-written beside the reader for the same reasons (see ber.ts); it is a few
 * dozen lines and on the signing hot path.
 */
import { Tag } from './ber.ts';

export function encodeLength(n: number): Buffer {
  const out = Buffer.allocUnsafe(lengthOctets(n));
  writeLength(out, 0, n);
  return out;
}

/** How many octets the DER length `n` takes (X.690 8.1.3: short form below 128, else 1 + 1-4). */
function lengthOctets(n: number): number {
  return n < 0x80 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : n < 0x1000000 ? 4 : 5;
}

/** Writes the DER length `n` at `at` (lengthOctets(n) octets). */
function writeLength(out: Buffer, at: number, n: number): void {
  const size = lengthOctets(n);
  if (size === 1) {
    out[at] = n;
    return;
  }
  out[at] = 0x80 | (size - 1);
  for (let i = size - 1, v = n; i >= 1; i--, v = Math.floor(v / 256)) out[at + i] = v & 0xff;
}

/**
 * A TLV with the given identifier octet and contents. The length octets are written
 * in place, not made as a Buffer of their own: a signed message encodes about fifteen
 * TLVs, each of which allocated two Buffers.
 */
export function tlv(tag: number, ...contents: Uint8Array[]): Buffer {
  let len = 0;
  for (const c of contents) len += c.length;
  const head = lengthOctets(len);
  const out = Buffer.allocUnsafe(1 + head + len);
  out[0] = tag;
  writeLength(out, 1, len);
  let p = 1 + head;
  for (const c of contents) {
    out.set(c, p);
    p += c.length;
  }
  return out;
}

export function sequence(...items: Uint8Array[]): Buffer {
  return tlv(Tag.SEQUENCE, ...items);
}

/** SET with members in the order given (use setOf for DER-sorted SET OF). */
export function set(...items: Uint8Array[]): Buffer {
  return tlv(Tag.SET, ...items);
}

/** DER SET OF: members sorted as octet strings (X.690 11.6). */
export function setOf(items: Uint8Array[]): Buffer {
  return tlv(Tag.SET, ...sortDer(items));
}

export function sortDer(items: Uint8Array[]): Uint8Array[] {
  return [...items].sort(compareDer);
}

/** X.690 11.6 ordering: shorter encodings compare as if padded with zero octets. */
export function compareDer(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  const rest = a.length > b.length ? a.subarray(n) : b.subarray(n);
  if (rest.some((x) => x !== 0)) return a.length - b.length;
  return 0;
}

/** Context-specific [n] EXPLICIT wrapper. */
export function explicit(n: number, inner: Uint8Array): Buffer {
  return tlv(0xa0 | n, inner);
}

/** Context-specific [n] IMPLICIT: the contents of a value under a new tag. */
export function implicit(n: number, constructed: boolean, ...contents: Uint8Array[]): Buffer {
  return tlv(0x80 | (constructed ? 0x20 : 0) | n, ...contents);
}

/** Re-tags an already encoded value (IMPLICIT tagging of an encoded TLV). */
export function retag(encoded: Uint8Array, tag: number): Buffer {
  const b = Buffer.from(encoded);
  b[0] = tag;
  return b;
}

export function octetString(bytes: Uint8Array): Buffer {
  return tlv(Tag.OCTET_STRING, bytes);
}

export const NULL: Buffer = Buffer.of(Tag.NULL, 0);

export function boolean(v: boolean): Buffer {
  return Buffer.of(Tag.BOOLEAN, 1, v ? 0xff : 0);
}

/** INTEGER from a number or bigint (two's complement, minimal). */
export function integer(v: number | bigint): Buffer {
  const n = BigInt(v);
  if (n >= 0n) {
    const hex = n.toString(16);
    return unsignedInteger(Buffer.from(hex.length % 2 ? `0${hex}` : hex, 'hex'));
  }
  let len = 1;
  while (n < -(1n << BigInt(8 * len - 1))) len++;
  const hex = ((1n << BigInt(8 * len)) + n).toString(16).padStart(2 * len, '0');
  return tlv(Tag.INTEGER, Buffer.from(hex, 'hex'));
}

/** INTEGER from an unsigned big-endian magnitude (key material, serials we mint). */
export function unsignedInteger(magnitude: Uint8Array): Buffer {
  let i = 0;
  while (i < magnitude.length - 1 && magnitude[i] === 0) i++;
  const m = magnitude.subarray(i);
  return m[0]! & 0x80 ? tlv(Tag.INTEGER, Buffer.of(0), m) : tlv(Tag.INTEGER, m);
}

const oidCache = new Map<string, Buffer>();

export function oid(dotted: string): Buffer {
  const hit = oidCache.get(dotted);
  if (hit) return hit;
  const arcs = dotted.split('.').map((x) => {
    if (!/^\d+$/.test(x)) throw new TypeError(`bad OID ${dotted}`);
    return Number(x);
  });
  if (arcs.length < 2) throw new TypeError(`bad OID ${dotted}`);
  const out: number[] = [];
  const push = (n: number) => {
    const tmp = [n & 0x7f];
    n = Math.floor(n / 128);
    while (n > 0) {
      tmp.unshift((n & 0x7f) | 0x80);
      n = Math.floor(n / 128);
    }
    out.push(...tmp);
  };
  push(arcs[0]! * 40 + arcs[1]!);
  for (const a of arcs.slice(2)) push(a);
  const enc = tlv(Tag.OID, Buffer.from(out));
  oidCache.set(dotted, enc);
  return enc;
}

export function utf8String(s: string): Buffer {
  return tlv(Tag.UTF8_STRING, Buffer.from(s, 'utf8'));
}

export function ia5String(s: string): Buffer {
  return tlv(Tag.IA5_STRING, Buffer.from(s, 'latin1'));
}

export function bitString(bytes: Uint8Array, unusedBits = 0): Buffer {
  return tlv(Tag.BIT_STRING, Buffer.of(unusedBits), bytes);
}

/** RFC 5280 Time: UTCTime for 1950-2049, GeneralizedTime otherwise. Seconds precision. */
export function time(d: Date): Buffer {
  const y = d.getUTCFullYear();
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  const rest = `${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}Z`;
  if (y >= 1950 && y < 2050) return tlv(Tag.UTC_TIME, Buffer.from(`${p(y % 100)}${rest}`, 'latin1'));
  return tlv(Tag.GENERALIZED_TIME, Buffer.from(`${p(y, 4)}${rest}`, 'latin1'));
}

// ------------------------------------------------- indefinite-length streaming

/** Header of a constructed value with indefinite length (BER, streaming output). */
export function indefiniteHeader(tag: number): Buffer {
  return Buffer.of(tag, 0x80);
}

export const END_OF_CONTENTS: Buffer = Buffer.of(0, 0);
