/**
 * An incremental, bounded BER tokenizer for CMS objects that arrive as a stream.
 *
 * Why a second reader beside ber.ts: ber.ts needs the whole object in memory, and a
 * 1 GiB message must be verified or decrypted with bounded RSS (brief, "How fast").
 * Here bytes are pushed in chunks of any size; the caller decides, value by value,
 * whether to
 *  - `descend` into a constructed value (its children are tokenized in turn),
 *  - `collect` a value whole (bounded by `maxValueBytes`, then parsed strictly with
 *    ber.ts so the usual rules apply to it), or
 *  - `stream` a primitive value's contents as `data` events (zero-copy subarrays of
 *    the pushed chunk), which is how the content OCTET STRING is delivered.
 *
 * Strictness (X.690, same as ber.ts in BER mode): high tag numbers, length fields
 * longer than 4 octets (and the reserved 0xff), indefinite length on a primitive,
 * children running past a definite parent, end-of-contents outside an indefinite
 * value or with a non-zero length, nesting deeper than the limit, anything after the
 * outermost value, and input that ends before the outermost value are all rejected
 * with coded errors (MALFORMED, LIMIT).
 */
import { KakitomeError, malformed } from '../errors.ts';
import { DEFAULT_LIMITS } from '../limits.ts';
import { checkUniversalForm, decode, type Tlv } from './ber.ts';

const CONSTRUCTED = 0x20;

/** What to do with the value whose header was just read. */
export type Disposition = 'descend' | 'collect' | 'stream';

export interface StreamHeader {
  /** Identifier octet. */
  tag: number;
  constructed: boolean;
  /** Contents length, or -1 for indefinite. */
  length: number;
  /** 0 for the outermost value. */
  depth: number;
  /** Tags of the enclosing values, outermost first. */
  path: readonly number[];
}

export type BerEvent =
  /** A value the caller chose to descend into or stream has started. */
  | { kind: 'enter'; tag: number; depth: number; length: number }
  /** Part of the contents of a streamed primitive value (valid until the next push). */
  | { kind: 'data'; tag: number; depth: number; bytes: Uint8Array }
  /** A descended or streamed value has ended. */
  | { kind: 'leave'; tag: number; depth: number }
  /** A collected value, whole: its original encoding and the strict parse of it. */
  | { kind: 'value'; tag: number; depth: number; bytes: Uint8Array; tlv: Tlv };

export interface BerStreamOptions {
  /** Called for every header outside collected values. */
  decide: (h: StreamHeader) => Disposition;
  /** Largest value that may be collected (certificates, SignerInfos...). */
  maxValueBytes?: number;
  maxDepth?: number;
}

interface Frame {
  tag: number;
  depth: number;
  /** Absolute end offset for definite lengths; -1 for indefinite. */
  end: number;
  /** Part of a value being collected (no events for it). */
  collecting: boolean;
}

interface Body {
  tag: number;
  depth: number;
  /** Absolute offset where the primitive/definite value's contents end. */
  end: number;
  mode: 'stream' | 'collect';
}

export class BerStreamReader {
  readonly #decide: (h: StreamHeader) => Disposition;
  readonly #maxValue: number;
  readonly #maxDepth: number;
  readonly #stack: Frame[] = [];
  #path: number[] = [];
  /** Absolute offset of the next byte to be consumed. */
  #pos = 0;
  /** Incomplete header bytes carried over from the previous push (at most 5). */
  #pending: Uint8Array = new Uint8Array(0);
  #body: Body | undefined;
  /** Pieces of the value being collected, and where it started. */
  #collect: Uint8Array[] = [];
  #collectBytes = 0;
  #collectRoot: { tag: number; depth: number } | undefined;
  #done = false;
  #failed = false;

  constructor(opts: BerStreamOptions) {
    this.#decide = opts.decide;
    this.#maxValue = opts.maxValueBytes ?? 16 * 1024 * 1024;
    this.#maxDepth = opts.maxDepth ?? DEFAULT_LIMITS.maxAsn1Depth;
  }

  /** True once the outermost value has ended. */
  get done(): boolean {
    return this.#done;
  }

  /** Bytes consumed so far. */
  get position(): number {
    return this.#pos;
  }

  /** Tokenizes one chunk; `data` events point into `chunk`. */
  push(chunk: Uint8Array): BerEvent[] {
    if (this.#failed) malformed('stream already failed');
    const out: BerEvent[] = [];
    try {
      let buf = chunk;
      if (this.#pending.length > 0) {
        buf = Buffer.concat([this.#pending, chunk]);
        this.#pending = new Uint8Array(0);
      }
      this.#run(buf, out);
    } catch (e) {
      this.#failed = true;
      throw e;
    }
    return out;
  }

  /** Declares the end of input: fails unless exactly one whole value was read. */
  end(): void {
    if (this.#failed) malformed('stream already failed');
    if (!this.#done || this.#pending.length > 0) {
      this.#failed = true;
      malformed('truncated input: the CMS object ends early');
    }
  }

  #run(buf: Uint8Array, out: BerEvent[]): void {
    let i = 0;
    const n = buf.length;
    while (i < n) {
      if (this.#done) malformed('trailing data after the outermost value');
      const body = this.#body;
      if (body) {
        const take = Math.min(n - i, body.end - this.#pos);
        if (take > 0) {
          const part = buf.subarray(i, i + take);
          if (body.mode === 'stream') out.push({ kind: 'data', tag: body.tag, depth: body.depth, bytes: part });
          else this.#append(part);
          i += take;
          this.#pos += take;
        }
        if (this.#pos === body.end) this.#finishBody(out);
        continue;
      }
      // A header (or end-of-contents) is next: make sure it is complete in `buf`.
      const avail = n - i;
      const need = headerLength(buf, i, avail);
      if (need < 0 || need > avail) {
        if (avail > 6) malformed('bad header'); // cannot happen: headers are at most 6 octets
        this.#pending = buf.slice(i);
        return;
      }
      const tag = buf[i]!;
      const l0 = buf[i + 1]!;
      const top = this.#top();
      if (tag === 0) {
        // End-of-contents (X.690 8.1.5): only closes an indefinite value.
        if (l0 !== 0) malformed('bad end-of-contents octets');
        if (!top || top.end !== -1) malformed('unexpected end-of-contents');
        if (top.collecting) this.#append(buf.subarray(i, i + 2));
        i += 2;
        this.#pos += 2;
        this.#pop(out);
        this.#closeDefinite(out);
        continue;
      }
      if ((tag & 0x1f) === 0x1f) malformed('high tag numbers are not used in CMS');
      const constructed = (tag & CONSTRUCTED) !== 0;
      let length: number;
      if (l0 < 0x80) length = l0;
      else if (l0 === 0x80) {
        if (!constructed) malformed('indefinite length on a primitive value');
        length = -1;
      } else {
        const k = l0 & 0x7f;
        if (k > 4 || l0 === 0xff) malformed('length field longer than 4 octets');
        length = 0;
        for (let j = 0; j < k; j++) length = length * 256 + buf[i + 2 + j]!;
      }
      checkUniversalForm(tag, length);
      const depth = this.#stack.length;
      if (depth > this.#maxDepth) throw new KakitomeError('LIMIT', `ASN.1 nesting deeper than ${this.#maxDepth} levels.`);
      const header = buf.subarray(i, i + need);
      const contentStart = this.#pos + need;
      const end = length < 0 ? -1 : contentStart + length;
      if (top && top.end !== -1 && (end === -1 ? contentStart > top.end : end > top.end)) malformed('length runs past the end of the enclosing value');
      i += need;
      this.#pos = contentStart;

      let disposition: Disposition;
      if (top?.collecting) disposition = 'collect';
      else {
        disposition = this.#decide({ tag, constructed, length, depth, path: this.#path });
        if (disposition === 'stream' && constructed) malformed(`constructed value 0x${tag.toString(16)} where a primitive was expected`);
        if (disposition === 'descend' && !constructed) malformed(`primitive value 0x${tag.toString(16)} where a constructed one was expected`);
        if (disposition === 'collect') {
          this.#collect = [];
          this.#collectBytes = 0;
          this.#collectRoot = { tag, depth };
          if (length > this.#maxValue) throw new KakitomeError('LIMIT', `A ${length}-byte value exceeds the ${this.#maxValue}-byte limit for buffered CMS fields.`);
        }
      }
      if (disposition === 'collect') {
        this.#append(header);
        if (length < 0) this.#stack.push({ tag, depth, end: -1, collecting: true });
        else this.#body = { tag, depth, end, mode: 'collect' };
        continue;
      }
      if (disposition === 'stream') {
        out.push({ kind: 'enter', tag, depth, length });
        this.#body = { tag, depth, end, mode: 'stream' };
        continue;
      }
      // descend
      out.push({ kind: 'enter', tag, depth, length });
      this.#stack.push({ tag, depth, end, collecting: false });
      this.#path.push(tag);
      this.#closeDefinite(out);
    }
    // A zero-length value at the very end of a chunk completes without more input.
    if (this.#body && this.#pos === this.#body.end) this.#finishBody(out);
  }

  #finishBody(out: BerEvent[]): void {
    const body = this.#body!;
    this.#body = undefined;
    if (body.mode === 'stream') out.push({ kind: 'leave', tag: body.tag, depth: body.depth });
    else if (!this.#top()?.collecting) this.#emitCollected(out);
    this.#closeDefinite(out);
  }

  #top(): Frame | undefined {
    return this.#stack[this.#stack.length - 1];
  }

  #append(part: Uint8Array): void {
    this.#collectBytes += part.length;
    if (this.#collectBytes > this.#maxValue) throw new KakitomeError('LIMIT', `A value exceeds the ${this.#maxValue}-byte limit for buffered CMS fields.`);
    // Copy: `part` may point into a chunk the caller reuses.
    this.#collect.push(Uint8Array.prototype.slice.call(part));
  }

  #emitCollected(out: BerEvent[]): void {
    const root = this.#collectRoot;
    if (!root) return;
    const bytes = this.#collect.length === 1 ? this.#collect[0]! : Buffer.concat(this.#collect);
    this.#collect = [];
    this.#collectBytes = 0;
    this.#collectRoot = undefined;
    // Strict parse of the whole value: the same rules as the in-memory reader.
    const tlv = decode(bytes, { maxDepth: Math.max(0, this.#maxDepth - root.depth) });
    out.push({ kind: 'value', tag: root.tag, depth: root.depth, bytes, tlv });
    if (root.depth === 0) this.#done = true;
  }

  /** Pops the top frame (its end was reached) and reports it. */
  #pop(out: BerEvent[]): void {
    const f = this.#stack.pop()!;
    if (f.collecting) {
      // The collected value ends when its own (outermost collected) frame closes.
      const under = this.#top();
      if (!under || !under.collecting) this.#emitCollected(out);
    } else {
      this.#path.pop();
      out.push({ kind: 'leave', tag: f.tag, depth: f.depth });
      if (f.depth === 0) this.#done = true;
    }
  }

  /** Closes every definite frame whose end has been reached. */
  #closeDefinite(out: BerEvent[]): void {
    for (;;) {
      const top = this.#top();
      if (!top || top.end === -1 || this.#pos < top.end) break;
      this.#pop(out);
    }
    if (this.#stack.length === 0 && !this.#body && this.#pos > 0 && !this.#collectRoot) this.#done = true;
  }
}

/** Length of the header at buf[i]; -1 when not enough bytes to tell. */
function headerLength(buf: Uint8Array, i: number, avail: number): number {
  if (avail < 2) return -1;
  const l0 = buf[i + 1]!;
  if (l0 <= 0x80) return 2;
  const k = l0 & 0x7f;
  if (k > 4) return 2; // rejected by the caller with a clear message
  return 2 + k;
}
