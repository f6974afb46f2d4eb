/**
 * The deterministic fuzzing kit shared by test/fuzz/*.test.ts: a seeded PRNG,
 * byte-level and ASN.1-structure-aware mutators, and the oracle every target is
 * held to (each failure is a KakitomeError with a code of the ErrorCode union).
 *
 * Hand-written rather than a fuzzing library: the suite must run inside
 * `node --test` with no native build and replay exactly from a seed, and the
 * mutators need to know BER (length forms, TLV boundaries), which generic
 * fuzzers do not.
 *
 * KAKITOME_FUZZ_ITERATIONS=N runs every target N times (default per target);
 * KAKITOME_FUZZ_SEED=S changes the seed (default fixed, so CI is reproducible);
 * KAKITOME_FUZZ_ONLY=target:case replays one case of a failure message;
 * KAKITOME_FUZZ_REPORT=file appends one JSON line per target run (target, cases,
 * milliseconds), which test/fuzz/campaign.ts adds up.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { appendFileSync } from 'node:fs';
import { KakitomeError, DecryptionError, UnauthenticatedContentError, type ErrorCode } from '../../src/errors.ts';
import type { Tlv } from '../../src/asn1/ber.ts';
import type { ParsedSignedData } from '../../src/cms/signed-data/parse.ts';

export const ERROR_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'MALFORMED', 'NO_SIGNERS', 'AMBIGUOUS_CONTENT', 'ATTR_INVALID', 'DIGEST_MISMATCH', 'BAD_SIG', 'UNSUPPORTED_ALG', 'WEAK_ALG',
  'CERT_UNTRUSTED', 'CERT_EXPIRED', 'CERT_REVOKED', 'CERT_USAGE', 'IDENTITY_MISMATCH', 'PARTIAL_SIGNED', 'UNAUTH_ENC',
  'DECRYPT_FAILED', 'NOT_RECIPIENT', 'LIMIT', 'KEY_INVALID', 'INVALID_ARGUMENT',
]);

/** Iterations for one target: the default, unless KAKITOME_FUZZ_ITERATIONS says otherwise. */
export function iterations(defaultCount: number): number {
  const env = process.env['KAKITOME_FUZZ_ITERATIONS'];
  if (env === undefined || env === '') return defaultCount;
  const n = Number(env);
  if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`KAKITOME_FUZZ_ITERATIONS must be a positive integer, got ${env}`);
  return n;
}

/**
 * Records that `cases` cases of `target` ran (in `ms`), when KAKITOME_FUZZ_REPORT
 * names a file: the campaign runner's count of cases. Called by fuzz() and by the
 * tests that loop over cases themselves.
 */
export function reportCases(target: string, cases: number, ms: number): void {
  const file = process.env['KAKITOME_FUZZ_REPORT'];
  if (file === undefined || file === '' || REPLAYING) return;
  appendFileSync(file, `${JSON.stringify({ target, seed: BASE_SEED, cases, ms: Math.round(ms) })}\n`);
}

/** True when replaying one case: the tests' "the fuzzer explored" sanity checks do not apply. */
export const REPLAYING = (process.env['KAKITOME_FUZZ_ONLY'] ?? '') !== '';

export const BASE_SEED = Number(process.env['KAKITOME_FUZZ_SEED'] ?? 0x6b616b69) >>> 0;

/** Hang guard for one fuzz test: generous, scaled with the iteration count. */
export function timeoutFor(defaultCount: number, msPerIteration = 20): number {
  return Math.max(120_000, iterations(defaultCount) * msPerIteration);
}

/** mulberry32: tiny, fast, good enough to drive mutations, and replayable from one 32-bit seed. */
export class Prng {
  #s: number;
  constructor(seed: number) {
    this.#s = seed >>> 0;
  }
  next(): number {
    this.#s = (this.#s + 0x6d2b79f5) >>> 0;
    let t = this.#s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

/** The seed of iteration `i` of a target, so one failing case can be replayed on its own. */
export function caseSeed(target: string, i: number): number {
  let h = BASE_SEED ^ 0x9e3779b9;
  for (const c of target) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193);
  return (h ^ Math.imul(i + 1, 0x85ebca6b)) >>> 0;
}

// ------------------------------------------------------------- TLV scanning

/** One TLV of a (valid) seed, found by a lenient BER scan. */
export interface TlvSpan {
  start: number;
  /** Offset of the first length octet. */
  lengthAt: number;
  valueStart: number;
  valueEnd: number;
  end: number;
  constructed: boolean;
  indefinite: boolean;
  depth: number;
  /** Index of the parent in the span list, -1 for the top. */
  parent: number;
}

/**
 * Lists the TLVs of a BER encoding (depth-first). Tolerant: stops quietly where the
 * bytes stop being BER, so it can also scan the non-ASN.1 parts of a seed.
 */
export function scanTlvs(buf: Uint8Array, maxSpans = 20_000): TlvSpan[] {
  const out: TlvSpan[] = [];
  const scan = (pos: number, limit: number, depth: number, parent: number, untilEoc: boolean): number => {
    while (pos < limit && out.length < maxSpans) {
      if (untilEoc && buf[pos] === 0 && buf[pos + 1] === 0) return pos;
      const tag = buf[pos]!;
      if ((tag & 0x1f) === 0x1f || pos + 1 >= limit) return -1;
      const l0 = buf[pos + 1]!;
      let valueStart = pos + 2;
      let len: number;
      if (l0 < 0x80) len = l0;
      else if (l0 === 0x80) len = -1;
      else {
        const n = l0 & 0x7f;
        if (n > 4 || valueStart + n > limit) return -1;
        len = 0;
        for (let i = 0; i < n; i++) len = len * 256 + buf[valueStart + i]!;
        valueStart += n;
      }
      const constructed = (tag & 0x20) !== 0;
      const index = out.length;
      const span: TlvSpan = { start: pos, lengthAt: pos + 1, valueStart, valueEnd: 0, end: 0, constructed, indefinite: len < 0, depth, parent };
      out.push(span);
      if (len >= 0) {
        if (valueStart + len > limit) { out.pop(); return -1; }
        span.valueEnd = valueStart + len;
        span.end = span.valueEnd;
        if (constructed && scan(valueStart, span.valueEnd, depth + 1, index, false) < 0) { out.length = index + 1; }
      } else {
        if (!constructed) { out.pop(); return -1; }
        const eoc = scan(valueStart, limit, depth + 1, index, true);
        if (eoc < 0) { out.length = index; return -1; }
        span.valueEnd = eoc;
        span.end = eoc + 2;
      }
      pos = span.end;
    }
    return untilEoc ? -1 : pos;
  };
  scan(0, buf.length, 0, -1, false);
  return out;
}

// ---------------------------------------------------------------- mutators

export const BOUNDARY = [0x00, 0x7f, 0x80, 0x81, 0xff] as const;

/**
 * [start, end) ranges of `der` (a ContentInfo(SignedData), `parsed` from it) whose change
 * must never stay valid: each signer's signed attributes and signature value, and the
 * content octets segment by segment (a BER segment's header may be re-encoded, a
 * long-form length, without changing meaning).
 */
export function signedMaterialRanges(der: Buffer, parsed: ParsedSignedData): [number, number][] {
  const ranges: [number, number][] = [];
  for (const si of parsed.signerInfos) {
    if (si.signedAttrs) ranges.push([si.signedAttrs.valueStart, si.signedAttrs.valueEnd]);
    const off = si.signature.byteOffset - der.byteOffset;
    ranges.push([off, off + si.signature.length]);
  }
  const octets = (t: Tlv): void => {
    if (t.constructed) for (const c of t.children()) octets(c);
    else ranges.push([t.valueStart, t.valueEnd]);
  };
  if (parsed.eContent) octets(parsed.eContent);
  return ranges;
}

export interface Seed {
  name: string;
  bytes: Buffer;
  spans: TlvSpan[];
}

export function seed(name: string, bytes: Uint8Array): Seed {
  const b = Buffer.from(bytes);
  return { name, bytes: b, spans: scanTlvs(b) };
}

export interface Mutation {
  bytes: Buffer;
  /** What was done, for the failure message (replayable with the case seed). */
  what: string;
  /** Byte range of the original that was touched (for position-aware oracles, through `touches`); -1 when unknown. */
  from: number;
  to: number;
  /** Stacked mutations: every range of the original each step touched (`from`/`to` then span them all). */
  ranges?: [number, number][];
  /**
   * How the bytes were changed, in the original's offsets, sorted: [start, end, length]
   * replaces [start, end) by `length` new bytes. Lets a second, stacked mutation's
   * offsets be mapped back to the original.
   */
  edits?: Edit[];
  /**
   * Whole TLVs were moved (swapped siblings), wrapped (nested) or brought in from
   * another seed: the bytes are intact signed material of their own, e.g. SignerInfos
   * in another order, or a BER segment inside nested constructed OCTET STRINGs (X.690 8.7.3).
   */
  spliced?: boolean;
}

export type Edit = [start: number, end: number, length: number];

/**
 * The range of the original that bytes [from, to) of a mutation's output came from:
 * offsets outside every edit shift back, and any offset inside an edit's new bytes
 * stands for the whole range that edit replaced.
 */
function mapBack(edits: readonly Edit[], from: number, to: number): [number, number] {
  /** The original range output offset `p` came from: [q, q + 1) for an unchanged byte (or [q, q) for a position), an edit's whole range inside new bytes. */
  const origin = (p: number, width: 0 | 1): [number, number] => {
    let shift = 0;
    for (const [start, end, length] of edits) {
      const outStart = start + shift;
      if (p < outStart) break;
      if (p < outStart + length) return [start, end];
      shift += length - (end - start);
    }
    return [p - shift, p - shift + width];
  };
  if (to <= from) return origin(from, 0);
  return [origin(from, 1)[0], origin(to - 1, 1)[1]];
}

/** Whether the mutation touched any of `ranges` (offsets of the original); unknown counts as touched. */
export function touches(m: Mutation, ranges: readonly [number, number][]): boolean {
  const hit = (from: number, to: number): boolean => from < 0 || ranges.some(([a, b]) => from < b && to > a);
  return m.ranges ? m.ranges.some(([from, to]) => hit(from, to)) : hit(m.from, m.to);
}

function splice(buf: Buffer, start: number, end: number, insert: Uint8Array): Buffer {
  return Buffer.concat([buf.subarray(0, start), insert, buf.subarray(end)]);
}

/** The DER length octets for `n`. */
export function lengthOctets(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

type Mutator = (r: Prng, s: Seed, others: readonly Seed[]) => Mutation;

const bitFlip: Mutator = (r, s) => {
  const out = Buffer.from(s.bytes);
  const at = r.int(out.length);
  const bit = r.int(8);
  out[at]! ^= 1 << bit;
  return { bytes: out, what: `bit ${bit} of byte ${at}`, from: at, to: at + 1, edits: [[at, at + 1, 1]] };
};

const boundaryByte: Mutator = (r, s) => {
  const out = Buffer.from(s.bytes);
  const at = r.int(out.length);
  const v = r.pick(BOUNDARY);
  out[at] = v;
  return { bytes: out, what: `byte ${at} := 0x${v.toString(16)}`, from: at, to: at + 1, edits: [[at, at + 1, 1]] };
};

const truncate: Mutator = (r, s) => {
  const at = r.int(s.bytes.length);
  return { bytes: Buffer.from(s.bytes.subarray(0, at)), what: `truncated to ${at}`, from: at, to: s.bytes.length, edits: [[at, s.bytes.length, 0]] };
};

const insertBytes: Mutator = (r, s) => {
  const at = r.int(s.bytes.length + 1);
  const n = 1 + r.int(4);
  const ins = Buffer.alloc(n);
  for (let i = 0; i < n; i++) ins[i] = r.chance(0.5) ? r.pick(BOUNDARY) : r.int(256);
  return { bytes: splice(s.bytes, at, at, ins), what: `inserted ${ins.toString('hex')} at ${at}`, from: at, to: at, edits: [[at, at, n]] };
};

const pickSpan = (r: Prng, s: Seed): TlvSpan | undefined => (s.spans.length ? r.pick(s.spans) : undefined);

/** Rewrites a length field: long forms, indefinite, huge, off by one. */
const lengthRewrite: Mutator = (r, s) => {
  const t = pickSpan(r, s);
  if (!t) return bitFlip(r, s, []);
  const len = t.valueEnd - t.valueStart;
  const choices: Buffer[] = [
    Buffer.from([0x80]),
    Buffer.from([0x84, 0xff, 0xff, 0xff, 0xff]),
    Buffer.from([0x84, 0x7f, 0xff, 0xff, 0xff]),
    Buffer.from([0x85, 0x01, 0, 0, 0, 0]),
    Buffer.from([0xff]),
    Buffer.from([0x81, 0x00]),
    Buffer.from([0x84, (len >>> 24) & 0xff, (len >>> 16) & 0xff, (len >>> 8) & 0xff, len & 0xff]),
    lengthOctets(len + 1),
    lengthOctets(Math.max(0, len - 1)),
    lengthOctets(len + 0x100),
    lengthOctets(r.int(0x10000)),
  ];
  const l = r.pick(choices);
  return { bytes: splice(s.bytes, t.lengthAt, t.valueStart, l), what: `length of TLV@${t.start} := ${l.toString('hex')}`, from: t.start, to: t.valueStart, edits: [[t.lengthAt, t.valueStart, l.length]] };
};

const removeTlv: Mutator = (r, s) => {
  const t = pickSpan(r, s);
  if (!t) return truncate(r, s, []);
  return { bytes: splice(s.bytes, t.start, t.end, Buffer.alloc(0)), what: `removed TLV@${t.start}..${t.end}`, from: t.start, to: t.end, edits: [[t.start, t.end, 0]] };
};

const duplicateTlv: Mutator = (r, s) => {
  const t = pickSpan(r, s);
  if (!t) return insertBytes(r, s, []);
  const copy = s.bytes.subarray(t.start, t.end);
  return { bytes: splice(s.bytes, t.end, t.end, copy), what: `duplicated TLV@${t.start}..${t.end}`, from: t.start, to: t.end, edits: [[t.end, t.end, copy.length]] };
};

const swapSiblings: Mutator = (r, s) => {
  const t = pickSpan(r, s);
  if (!t) return bitFlip(r, s, []);
  const sibs = s.spans.filter((x) => x.parent === t.parent && x !== t);
  if (sibs.length === 0) return removeTlv(r, s, []);
  const u = r.pick(sibs);
  const [a, b] = t.start < u.start ? [t, u] : [u, t];
  const out = Buffer.concat([
    s.bytes.subarray(0, a.start), s.bytes.subarray(b.start, b.end), s.bytes.subarray(a.end, b.start), s.bytes.subarray(a.start, a.end), s.bytes.subarray(b.end),
  ]);
  return { bytes: out, what: `swapped TLV@${a.start} and TLV@${b.start}`, from: a.start, to: b.end, spliced: true, edits: [[a.start, b.end, b.end - a.start]] };
};

/** Replaces the tag octet: a neighbour tag, the constructed bit toggled, a context tag, EOC. */
const retagTlv: Mutator = (r, s) => {
  const t = pickSpan(r, s);
  if (!t) return bitFlip(r, s, []);
  const out = Buffer.from(s.bytes);
  const old = out[t.start]!;
  // Structural tags, and every universal type a reader might meet (strings, times, BOOLEAN...).
  const v = r.chance(0.6)
    ? r.pick([old ^ 0x20, 0x04, 0x24, 0x30, 0x31, 0xa0, 0x80, 0x00, 0x05, 0x06, 0x1f, (old + 1) & 0xff])
    : r.pick([0x01, 0x02, 0x03, 0x0a, 0x0c, 0x12, 0x13, 0x14, 0x16, 0x17, 0x18, 0x1a, 0x1c, 0x1e, 0x81, 0x82, 0x86, 0x87, 0xa1, 0xa2, 0xa3, 0xa4]);
  out[t.start] = v;
  return { bytes: out, what: `tag of TLV@${t.start} := 0x${v.toString(16)}`, from: t.start, to: t.start + 1, edits: [[t.start, t.start + 1, 1]] };
};

/** Wraps a TLV in many constructed layers (definite or indefinite). */
const nestBomb: Mutator = (r, s) => {
  const t = pickSpan(r, s);
  if (!t) return bitFlip(r, s, []);
  const depth = r.pick([20, 47, 49, 64, 200, 2000]);
  const indefinite = r.chance(0.5);
  const tag = r.pick([0x30, 0x24, 0x31, 0xa0]);
  let inner = Buffer.from(s.bytes.subarray(t.start, t.end));
  if (indefinite) {
    inner = Buffer.concat([Buffer.alloc(depth * 2, Buffer.from([tag, 0x80])), inner, Buffer.alloc(depth * 2)]);
  } else {
    for (let i = 0; i < depth; i++) inner = Buffer.concat([Buffer.from([tag]), lengthOctets(inner.length), inner]);
  }
  return { bytes: splice(s.bytes, t.start, t.end, inner), what: `TLV@${t.start} nested ${depth}x in 0x${tag.toString(16)}${indefinite ? ' (indefinite)' : ''}`, from: t.start, to: t.end, spliced: true, edits: [[t.start, t.end, inner.length]] };
};

/** Replaces a TLV with a TLV of another (or the same) seed. */
const spliceOther: Mutator = (r, s, others) => {
  const t = pickSpan(r, s);
  const pool = others.filter((o) => o.spans.length > 0);
  if (!t || pool.length === 0) return duplicateTlv(r, s, []);
  const o = r.pick(pool);
  const u = r.pick(o.spans);
  return { bytes: splice(s.bytes, t.start, t.end, o.bytes.subarray(u.start, u.end)), what: `TLV@${t.start} replaced by ${o.name} TLV@${u.start}`, from: t.start, to: t.end, spliced: true, edits: [[t.start, t.end, u.end - u.start]] };
};

/** Fixes up the enclosing definite lengths after a TLV changed size, so the damage survives to deeper parsing. */
const resizeWithFixup: Mutator = (r, s) => {
  const t = pickSpan(r, s);
  if (!t || t.indefinite) return bitFlip(r, s, []);
  const oldLen = t.valueEnd - t.valueStart;
  const grow = r.chance(0.5);
  const value = grow
    ? Buffer.concat([s.bytes.subarray(t.valueStart, t.valueEnd), Buffer.alloc(1 + r.int(3), r.pick(BOUNDARY))])
    : Buffer.from(s.bytes.subarray(t.valueStart, t.valueStart + r.int(oldLen + 1)));
  const tlv = Buffer.concat([s.bytes.subarray(t.start, t.lengthAt), lengthOctets(value.length), value]);
  let out = splice(s.bytes, t.start, t.end, tlv);
  const edits: Edit[] = [[t.start, t.end, tlv.length]];
  let delta = out.length - s.bytes.length;
  // Walk up the parents and rewrite their lengths with the new size.
  for (let p = t.parent; p >= 0 && delta !== 0; p = s.spans[p]!.parent) {
    const ps = s.spans[p]!;
    if (ps.indefinite) continue;
    const newLen = ps.valueEnd - ps.valueStart + delta;
    const before = out.length;
    const octets = lengthOctets(newLen);
    out = splice(out, ps.lengthAt, ps.valueStart, octets);
    edits.unshift([ps.lengthAt, ps.valueStart, octets.length]);
    delta += out.length - before;
  }
  return { bytes: out, what: `TLV@${t.start} value resized to ${value.length} (parents fixed)`, from: t.start, to: t.end, edits };
};

const MUTATORS: readonly [Mutator, number][] = [
  [bitFlip, 5], [boundaryByte, 4], [truncate, 2], [insertBytes, 1], [lengthRewrite, 4], [removeTlv, 2], [duplicateTlv, 2],
  [swapSiblings, 2], [retagTlv, 3], [nestBomb, 1], [spliceOther, 2], [resizeWithFixup, 4],
];
const TOTAL_WEIGHT = MUTATORS.reduce((a, [, w]) => a + w, 0);

/** One random mutation (occasionally two stacked) of `s`. */
export function mutate(r: Prng, s: Seed, others: readonly Seed[] = []): Mutation {
  const one = (base: Seed): Mutation => {
    let x = r.int(TOTAL_WEIGHT);
    for (const [m, w] of MUTATORS) {
      if (x < w) return m(r, base, others);
      x -= w;
    }
    return bitFlip(r, base, others);
  };
  const m = one(s);
  if (!r.chance(0.15)) return m;
  const m2 = one(seed(s.name, m.bytes));
  // A step that changed nothing (a byte set to the value it had, a value resized to its
  // size) leaves the other alone, in the original's offsets.
  if (m2.bytes.equals(m.bytes)) return m;
  if (m.bytes.equals(s.bytes)) return m2;
  // The second step's offsets are in the first one's output: map them back through the first step's edits.
  const second = m.edits ? mapBack(m.edits, m2.from, m2.to) : ([-1, -1] as [number, number]);
  const ranges: [number, number][] = [[m.from, m.to], second];
  const known = second[0] >= 0;
  return {
    bytes: m2.bytes,
    what: `${m.what}; then ${m2.what}`,
    from: known ? Math.min(m.from, second[0]) : -1,
    to: known ? Math.max(m.to, second[1]) : -1,
    ranges,
    spliced: (m.spliced ?? false) || (m2.spliced ?? false),
  };
}

// ------------------------------------------------------------------- oracle

/** Asserts that `e` is one of our typed errors with a known code; reports the case otherwise. */
export function assertTypedError(e: unknown, context: string): asserts e is KakitomeError {
  if (!(e instanceof KakitomeError) || !ERROR_CODES.has(e.code)) {
    const detail = e instanceof Error ? `${e.name}: ${e.message}\n${e.stack ?? ''}` : String(e);
    assert.fail(`${context}: untyped failure ${detail}`);
  }
}

/** The one DecryptionError message; a mutation must never produce another. */
export const DECRYPTION_MESSAGE = new DecryptionError().message;

/** The one refusal of CBC content (EFAIL); every failure past a CBC decryption gives this message. */
export const REFUSAL_MESSAGE = new UnauthenticatedContentError().message;

/**
 * Runs `body` on `count` mutations drawn from `seeds`, with the oracle: `body`
 * either returns (it checks its own result) or throws a typed error, which
 * `onError` may check further. Returns how each case ended, for the tests'
 * sanity assertions (a fuzzer that only ever hits one code is not exploring).
 */
/** Cases between two turns of the event loop in fuzz(). */
const YIELD_EVERY = 1000;

export async function fuzz(
  target: string,
  seeds: readonly Seed[],
  count: number,
  /** `i` is the case number (for KAKITOME_FUZZ_ONLY=target:i in a report). */
  body: (m: Mutation, s: Seed, r: Prng, i: number) => unknown,
  onError?: (e: KakitomeError, m: Mutation, s: Seed) => void,
  mutator: (r: Prng, s: Seed, others: readonly Seed[]) => Mutation = mutate,
): Promise<Map<string, number>> {
  const outcomes = new Map<string, number>();
  // KAKITOME_FUZZ_ONLY=target:case replays one reported case (with the same KAKITOME_FUZZ_SEED).
  const only = process.env['KAKITOME_FUZZ_ONLY']?.split(':');
  if (only && only[0] !== target) return outcomes;
  const first = only ? Number(only[1]) : 0;
  const last = only ? first + 1 : count;
  const started = performance.now();
  for (let i = first; i < last; i++) {
    const seedValue = caseSeed(target, i);
    const r = new Prng(seedValue);
    const s = seeds[i % seeds.length]!;
    const m = mutator(r, s, seeds);
    const context = `${target} case ${i} (seed 0x${seedValue.toString(16)}, ${s.name}: ${m.what})`;
    let outcome = 'ok';
    try {
      await body(m, s, r, i);
    } catch (e) {
      if (e instanceof assert.AssertionError) {
        // The body's own assertions name what they saw; the case number makes it replayable.
        const prefix = `${context} [replay: KAKITOME_FUZZ_ONLY=${target}:${i}]: `;
        e.message = prefix + e.message;
        if (e.stack) e.stack = e.stack.replace(/^([^:\n]*: )/, `$1${prefix}`);
        throw e;
      }
      assertTypedError(e, context);
      onError?.(e, m, s);
      outcome = e.code;
    }
    outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
    // A turn of the event loop every YIELD_EVERY cases. A body that waits for no I/O
    // runs the whole target as one chain of microtasks, and what Node defers to
    // process.nextTick waits for its end: each failed inflateSync (a damaged zlib
    // stream, compressed-data) destroys its stream on the next tick, so its handle and
    // 16 KiB output buffer stayed reachable for the whole target (about 3.6 KB of RSS a
    // case: 1.06 GB peak at 229k cases against 0.36 GB with the turns; a campaign
    // round gives it millions). In the services each message is a turn of its own.
    if ((i - first) % YIELD_EVERY === YIELD_EVERY - 1) await new Promise((resolve) => setImmediate(resolve));
  }
  reportCases(target, last - first, performance.now() - started);
  return outcomes;
}

/** Runs one input through `fn` and checks the oracle (for fixed corpora rather than mutations). */
export async function expectTypedFailure(what: string, fn: () => unknown, code?: ErrorCode): Promise<KakitomeError> {
  try {
    await fn();
  } catch (e) {
    assertTypedError(e, what);
    if (code) assert.equal(e.code, code, `${what}: ${e.message}`);
    return e;
  }
  assert.fail(`${what}: expected a failure`);
}

// ------------------------------------------------------------ MIME mutators

/** Splits into lines keeping each line's terminator. */
function lines(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let start = 0;
  for (let i = 0; i < buf.length; i++) {
    if (buf[i] === 0x0a) {
      out.push(buf.subarray(start, i + 1));
      start = i + 1;
    }
  }
  if (start < buf.length) out.push(buf.subarray(start));
  return out;
}

const TEXT_SNIPPETS = [
  '\r\n', '\n', '\r', '--', ';', '"', '=', ':', ' ', '\t', '=?UTF-8?B?', '?=', 'boundary=', '\x00', '\xff', 'Content-Type: multipart/mixed; boundary=x\r\n',
  'Content-Type: application/pkcs7-mime; smime-type=signed-data\r\n', 'Content-Transfer-Encoding: base64\r\n', 'Content-Transfer-Encoding: quoted-printable\r\n',
  'protocol="application/pkcs7-signature"', 'From: mallory@example.net\r\n', '=\r\n', '=ZZ', '====',
];

/**
 * One mutation of an RFC 5322 message: the byte mutators plus line-level ones
 * (duplicate, drop or swap a line, inject a header or a snippet, corrupt a
 * boundary, change line endings).
 */
export function mutateText(r: Prng, s: Seed, others: readonly Seed[] = []): Mutation {
  const ls = lines(s.bytes);
  const li = r.int(ls.length);
  const offsetOf = (n: number): number => ls.slice(0, n).reduce((a, l) => a + l.length, 0);
  const from = offsetOf(li);
  const line = ls[li]!;
  switch (r.int(9)) {
    case 0: return { bytes: Buffer.concat([...ls.slice(0, li + 1), line, ...ls.slice(li + 1)]), what: `duplicated line ${li}`, from, to: from + line.length };
    case 1: return { bytes: Buffer.concat([...ls.slice(0, li), ...ls.slice(li + 1)]), what: `dropped line ${li}`, from, to: from + line.length };
    case 2: {
      const lj = r.int(ls.length);
      const copy = [...ls];
      [copy[li], copy[lj]] = [copy[lj]!, copy[li]!];
      return { bytes: Buffer.concat(copy), what: `swapped lines ${li} and ${lj}`, from: Math.min(from, offsetOf(lj)), to: Math.max(from + line.length, offsetOf(lj) + ls[lj]!.length), spliced: true };
    }
    case 3: {
      const snip = Buffer.from(r.pick(TEXT_SNIPPETS), 'latin1');
      const at = from + r.int(line.length + 1);
      return { bytes: Buffer.concat([s.bytes.subarray(0, at), snip, s.bytes.subarray(at)]), what: `inserted ${JSON.stringify(snip.toString('latin1'))} at ${at}`, from: at, to: at };
    }
    case 4: {
      // Corrupt a boundary delimiter line if there is one.
      const bi = ls.findIndex((l, k) => k >= li && l[0] === 0x2d && l[1] === 0x2d);
      if (bi < 0) return mutate(r, s, others);
      const b = Buffer.from(ls[bi]!);
      const k = 2 + r.int(Math.max(1, b.length - 2));
      if (k < b.length) b[k] = r.pick([0x20, 0x2d, 0x00, 0x0a, b[k]! ^ 1]);
      const copy = [...ls];
      copy[bi] = b;
      const at = offsetOf(bi);
      return { bytes: Buffer.concat(copy), what: `boundary line ${bi} byte ${k} altered`, from: at, to: at + b.length };
    }
    case 5: return { bytes: Buffer.from(s.bytes.toString('latin1').replaceAll('\r\n', '\n'), 'latin1'), what: 'CRLF to LF', from: 0, to: s.bytes.length };
    case 6: {
      const long = Buffer.alloc(r.pick([998, 1000, 70_000]), 0x41);
      return { bytes: Buffer.concat([s.bytes.subarray(0, from), long, s.bytes.subarray(from)]), what: `inserted a ${long.length}-octet line fragment at ${from}`, from, to: from };
    }
    default: return mutate(r, s, others);
  }
}

/** A Writable that keeps copies of what it was given (streaming targets may reuse their buffers). */
export function sink(): { writable: Writable; bytes: () => Buffer } {
  const parts: Buffer[] = [];
  const writable = new Writable({
    write(chunk: Buffer, _enc, cb) {
      parts.push(Buffer.from(chunk));
      cb();
    },
  });
  return { writable, bytes: () => Buffer.concat(parts) };
}
