/**
 * Streaming base64 decoding of a MIME body (RFC 2045 section 6.8) that gives exactly
 * the bytes the in-memory path gives (src/mime/decode-body.ts: libbase64.decode, that
 * is Node's decoder applied to each '='-terminated segment), for any input, while
 * decoding in bulk and into reused buffers.
 *
 * Node's decoder takes [A-Za-z0-9+/-_] as base64 characters, skips every other byte
 * and stops at '='; a segment's last 2 or 3 characters make 1 or 2 bytes, a lone one
 * none. So decoding can be split wherever a multiple of four base64 characters has
 * been seen since the segment began.
 *
 * Fast path: at a line start with nothing carried over, a run of complete lines of
 * the body's first line length (a multiple of 4) is decoded natively in one call;
 * it is exact when the decoder returns 3/4 of the line characters (any skipped byte
 * or '=' would make it return less). Otherwise the run is decoded again by the exact
 * byte-by-byte path. Why hand-written: libbase64's stream decoder works on per-line
 * strings and allocates a buffer per chunk, which is what made the 1 GiB decrypt
 * slow and large (docs/performance.md).
 */

/** Bytes of input decoded per native call; strings this short stay in V8's young generation. */
const SLICE = 64 * 1024;

/** 1 for a base64 character Node's decoder reads, 2 for '=', 0 for a byte it skips. */
const CLASS = new Uint8Array(256);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_') CLASS[c.charCodeAt(0)] = 1;
CLASS[0x3d] = 2;

export class Base64StreamDecoder {
  /** Two output buffers used in turn: a chunk handed out stays valid while the next one is produced. */
  readonly #out = [Buffer.allocUnsafe((SLICE * 3) / 4 + 64), Buffer.allocUnsafe((SLICE * 3) / 4 + 64)];
  #turn = 0;
  /** Base64 characters of the current segment not yet decoded (fewer than SLICE). */
  readonly #pending = Buffer.allocUnsafe(SLICE);
  #pendingLength = 0;
  /** Line length and line-break length of the body (from its first complete line); 0 until known or when unusable. */
  #lineLength = -1;
  #eolLength = 0;
  #atLineStart = true;
  readonly #emit: (bytes: Buffer) => Promise<void> | void;

  /** `emit` gets each decoded piece; it may keep it only until the piece after the next one is emitted. */
  constructor(emit: (bytes: Buffer) => Promise<void> | void) {
    this.#emit = emit;
  }

  async write(chunk: Uint8Array): Promise<void> {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let pos = 0;
    while (pos < buf.length) {
      if (this.#lineLength < 0) this.#learnLineLength(buf, pos);
      // The fast path needs a line start and a whole number of groups carried over (decoded first, exactly).
      const run = this.#atLineStart && this.#lineLength > 0 && this.#pendingLength % 4 === 0 ? this.#completeLines(buf, pos) : 0;
      if (run > 0) {
        await this.#decodePending(this.#pendingLength);
        const out = this.#nextOut();
        const n = out.write(buf.toString('latin1', pos, pos + run), 0, 'base64');
        const lines = run / (this.#lineLength + this.#eolLength);
        if (n === (lines * this.#lineLength * 3) / 4) await this.#emit(out.subarray(0, n));
        else {
          this.#turn ^= 1; // the failed attempt's buffer is free again; the last emitted piece stays untouched
          await this.#slow(buf, pos, pos + run);
        }
        pos += run;
        continue;
      }
      // No complete regular line here: the exact path up to the next line start (or a bounded piece).
      const nl = buf.indexOf(0x0a, pos);
      const end = nl < 0 ? Math.min(buf.length, pos + SLICE) : Math.min(nl + 1, pos + SLICE);
      await this.#slow(buf, pos, end);
      this.#atLineStart = buf[end - 1] === 0x0a;
      pos = end;
    }
  }

  /** Decodes what is left (a final partial group gives 1 or 2 bytes, as in memory). */
  async end(): Promise<void> {
    await this.#flushSegment();
  }

  #nextOut(): Buffer {
    this.#turn ^= 1;
    return this.#out[this.#turn]!;
  }

  /** The first line of the body that ends with a line break sets the line length for the fast path. */
  #learnLineLength(buf: Buffer, pos: number): void {
    const nl = buf.indexOf(0x0a, pos);
    if (nl < 0) return;
    if (!this.#atLineStart) return;
    const eol = nl > pos && buf[nl - 1] === 0x0d ? 2 : 1;
    const length = nl + 1 - pos - eol;
    // A blank first line says nothing; keep looking.
    if (length === 0) return;
    this.#lineLength = length % 4 === 0 && length <= SLICE / 2 ? length : 0;
    this.#eolLength = eol;
  }

  /** Bytes from `pos` that form complete lines of the learned shape (at most about SLICE). */
  #completeLines(buf: Buffer, pos: number): number {
    const L = this.#lineLength;
    const step = L + this.#eolLength;
    const maxLines = Math.min(Math.floor((buf.length - pos) / step), Math.floor(SLICE / step));
    let lines = 0;
    if (this.#eolLength === 2) {
      for (let p = pos + L; lines < maxLines && buf[p] === 0x0d && buf[p + 1] === 0x0a; p += step) lines++;
    } else {
      for (let p = pos + L; lines < maxLines && buf[p] === 0x0a; p += step) lines++;
    }
    return lines * step;
  }

  /** The exact path: base64 characters are gathered, '=' ends a segment, everything else is skipped. */
  async #slow(buf: Buffer, start: number, end: number): Promise<void> {
    const pending = this.#pending;
    for (let i = start; i < end; i++) {
      const c = buf[i]!;
      const k = CLASS[c];
      if (k === 1) {
        pending[this.#pendingLength++] = c;
        if (this.#pendingLength === SLICE) await this.#decodePending(SLICE);
      } else if (k === 2) await this.#flushSegment();
    }
  }

  /** Decodes the first `count` pending characters (a multiple of 4, or all of a finished segment). */
  async #decodePending(count: number): Promise<void> {
    if (count === 0) return;
    const out = this.#nextOut();
    const n = out.write(this.#pending.toString('latin1', 0, count), 0, 'base64');
    this.#pending.copy(this.#pending, 0, count, this.#pendingLength);
    this.#pendingLength -= count;
    if (n > 0) await this.#emit(out.subarray(0, n));
  }

  async #flushSegment(): Promise<void> {
    await this.#decodePending(this.#pendingLength);
  }
}
