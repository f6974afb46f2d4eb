/**
 * Splits the body of a multipart/signed entity (RFC 1847 section 2.1, RFC 2046
 * section 5.1.1) as it streams: the first part's exact bytes (what the signature
 * covers) go to a callback, the signature part (bounded) is collected. Shared by
 * verifyMessageStream (over the input) and decryptMessageStream (over decrypted
 * content, one pass per use).
 */
import { KakitomeError, malformed } from '../errors.ts';
import type { Limits } from '../limits.ts';
import type { Hash } from 'node:crypto';
import { createDigest, digestAlgorithm, type DigestAlgorithm, type DigestName } from '../cms/algorithms/digest.ts';
import { findBlankLine } from '../mime/find-blank-line.ts';
import { refuseUnclosedSigned } from '../mime/note-unclosed-multipart.ts';

/** Bytes scanned at a time. */
const SLICE = 1 << 20;
/** A signature part larger than this is not a signature (certificates included). */
const MAX_SIGNATURE_PART = 16 * 1024 * 1024;

/**
 * Finds the delimiter lines of one boundary in a stream of chunks (RFC 2046
 * section 5.1.1) and hands out the bytes between them in bulk. The line break
 * before a delimiter belongs to the delimiter, so up to marker + 2 bytes are held
 * back at the end of each chunk until the next chunk decides.
 */
export class BoundaryScanner {
  readonly #marker: Buffer;
  readonly #onBytes: (bytes: Buffer, offset: number) => Promise<void>;
  /** Stream offset of the work buffer's first byte (the carried tail's). */
  #offset = 0;
  readonly #onDelimiter: (kind: 'open' | 'close') => void;
  #carry: Buffer = Buffer.alloc(0);
  #work: Buffer = Buffer.alloc(0);
  /** True when #carry starts a line. */
  #lineStart = true;
  /** Start of a possible delimiter whose line is not complete yet, in the current buffer. */
  #pendingAt = -1;
  readonly #maxLine: number;

  constructor(boundary: string, maxLine: number, onBytes: (bytes: Buffer, offset: number) => Promise<void>, onDelimiter: (kind: 'open' | 'close') => void) {
    this.#marker = Buffer.from(`--${boundary}`, 'latin1');
    this.#maxLine = maxLine;
    this.#onBytes = onBytes;
    this.#onDelimiter = onDelimiter;
  }

  /**
   * Feeds bytes; `onBytes` gets subarrays of a work buffer this scanner reuses (with
   * their offset in the stream), so it
   * must be done with them (copy, hash, or await their write) when its promise settles.
   */
  async write(chunk: Uint8Array, final = false): Promise<void> {
    const input = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    for (let p = 0; p < input.length || (final && p === 0); p += SLICE) await this.#writeSlice(input.subarray(p, p + SLICE), final && p + SLICE >= input.length);
  }

  async #writeSlice(chunk: Buffer, final: boolean): Promise<void> {
    // The held-back tail and the new bytes, in one reused buffer (Buffer.concat per chunk
    // left a chunk-sized buffer per chunk for V8 to free late).
    const need = this.#carry.length + chunk.length;
    if (this.#work.length < need) this.#work = Buffer.allocUnsafe(Math.max(need, SLICE + this.#marker.length + 2));
    this.#carry.copy(this.#work, 0);
    chunk.copy(this.#work, this.#carry.length);
    let buf = this.#work.subarray(0, need);
    let pos = 0;
    for (;;) {
      const at = buf.indexOf(this.#marker, pos);
      if (at < 0) break;
      const lineStart = at === 0 ? this.#lineStart : buf[at - 1] === 0x0a;
      const nl = buf.indexOf(0x0a, at + this.#marker.length);
      if (!lineStart) {
        pos = at + 1;
        continue;
      }
      const lineEnd = nl < 0 ? buf.length : nl > 0 && buf[nl - 1] === 0x0d ? nl - 1 : nl;
      let p = at + this.#marker.length;
      const close = buf[p] === 0x2d && buf[p + 1] === 0x2d;
      if (close) p += 2;
      while (p < lineEnd && (buf[p] === 0x20 || buf[p] === 0x09)) p++;
      if (nl < 0 && !final) {
        // Incomplete line: a delimiter only if nothing but transport padding (or a lone CR) follows so far.
        if (p < buf.length && !(p === buf.length - 1 && buf[p] === 0x0d)) {
          pos = at + 1;
          continue;
        }
        if (buf.length - at > this.#maxLine) throw new KakitomeError('LIMIT', 'A boundary line exceeds the line limit.');
        this.#pendingAt = at;
        break;
      }
      if (p !== lineEnd) {
        pos = at + 1;
        continue;
      }
      // Content ends before the line break that precedes the delimiter.
      let contentEnd = at;
      if (at > 0 && buf[at - 1] === 0x0a) contentEnd = at >= 2 && buf[at - 2] === 0x0d ? at - 2 : at - 1;
      if (contentEnd > 0) await this.#onBytes(buf.subarray(0, contentEnd), this.#offset);
      this.#onDelimiter(close ? 'close' : 'open');
      const next = nl < 0 ? buf.length : nl + 1;
      this.#offset += next;
      buf = buf.subarray(next);
      this.#lineStart = true;
      pos = 0;
    }
    if (final) {
      if (buf.length) await this.#onBytes(buf, this.#offset);
      this.#offset += buf.length;
      this.#carry = Buffer.alloc(0);
      return;
    }
    // Hold back what could still become "CRLF--boundary...": a possible delimiter whose line is
    // incomplete (with the line break before it), or a tail that could be the start of one.
    let keepFrom = buf.length - Math.min(buf.length, this.#marker.length + 2);
    const at = this.#pendingAt;
    this.#pendingAt = -1;
    if (at >= 0) keepFrom = Math.min(keepFrom, at >= 2 && buf[at - 2] === 0x0d ? at - 2 : at >= 1 && buf[at - 1] === 0x0a ? at - 1 : at);
    if (keepFrom > 0) {
      await this.#onBytes(buf.subarray(0, keepFrom), this.#offset);
      this.#lineStart = buf[keepFrom - 1] === 0x0a;
      this.#offset += keepFrom;
    }
    this.#carry = Buffer.from(buf.subarray(keepFrom));
  }
}


/** What a scan of a multipart/signed body found besides the content. */
export interface SignedBodyScan {
  /** The signed part's header section (its fields, without the blank line). */
  head: Buffer;
  /** Bytes of the blank line after that header section (2, or 1 for a bare LF; 0 if none). */
  blankEol: number;
  /** The signature part's raw bytes (header and body). */
  signature: Buffer;
  /** Where the signed part's bytes (header section included) lie in the scanned stream. */
  contentOffset: number;
  contentLength: number;
}

/**
 * Feed it the multipart/signed body (after the entity's header section); `onContent`
 * gets the signed part's bytes (its header section included) in order, under the
 * BoundaryScanner rule that each piece must be consumed before its promise settles.
 */
export class SignedBodyScanner {
  readonly #scanner: BoundaryScanner;
  #state = 'preamble' as 'preamble' | 'content' | 'signature' | 'epilogue';
  #partHead: Buffer = Buffer.alloc(0);
  #headDone = false;
  #head: Buffer = Buffer.alloc(0);
  #blankEol = 0;
  readonly #signature: Buffer[] = [];
  #signatureBytes = 0;
  #contentOffset = -1;
  #contentLength = 0;

  constructor(boundary: string, limits: Limits, onContent: (bytes: Buffer) => Promise<void> | void) {
    this.#scanner = new BoundaryScanner(
      boundary,
      limits.maxLineLength,
      async (bytes, offset) => {
        if (this.#state === 'content') {
          if (this.#contentOffset < 0) this.#contentOffset = offset;
          this.#contentLength += bytes.length;
          if (!this.#headDone) this.#readHead(bytes, limits);
          await onContent(bytes);
        } else if (this.#state === 'signature') {
          this.#signatureBytes += bytes.length;
          if (this.#signatureBytes > MAX_SIGNATURE_PART) throw new KakitomeError('LIMIT', 'The signature part is larger than any signature.');
          this.#signature.push(Buffer.from(bytes));
        }
      },
      (d) => {
        if (this.#state === 'preamble' && d === 'open') this.#state = 'content';
        else if (this.#state === 'content' && d === 'open') this.#state = 'signature';
        else if (this.#state === 'signature' && d === 'close') this.#state = 'epilogue';
        else if (this.#state !== 'epilogue') malformed('multipart/signed must have exactly two parts (RFC 1847 section 2.1)');
      },
    );
  }

  /** The signed part's header section, for RFC 9788 header protection and the output. */
  #readHead(bytes: Buffer, limits: Limits): void {
    const h = (this.#partHead = Buffer.concat([this.#partHead, bytes.subarray(0, limits.maxHeaderBytes + 4)]));
    const blank = findBlankLine(h);
    if (blank) {
      this.#headDone = true;
      this.#blankEol = blank.bodyStart - blank.headerEnd;
      if (blank.headerEnd > 0) this.#head = h.subarray(0, blank.headerEnd);
    } else if (h.length > limits.maxHeaderBytes) throw new KakitomeError('LIMIT', 'The signed part has a header section over the header limit.');
    if (this.#headDone) this.#partHead = Buffer.alloc(0);
  }

  write(chunk: Uint8Array): Promise<void> {
    return this.#scanner.write(chunk);
  }

  async end(): Promise<SignedBodyScan> {
    await this.#scanner.write(Buffer.alloc(0), true);
    if (!this.#headDone) this.#head = this.#partHead;
    if (this.#state !== 'epilogue' && this.#state !== 'signature') malformed('multipart/signed body ended before its signature part');
    if (this.#state === 'signature') refuseUnclosedSigned();
    return {
      head: this.#head,
      blankEol: this.#blankEol,
      signature: Buffer.concat(this.#signature),
      contentOffset: Math.max(0, this.#contentOffset),
      contentLength: this.#contentLength,
    };
  }
}

/** RFC 8551 section 3.5.3.2 micalg names of the digests we compute while the content streams by. */
const MICALG: Record<string, DigestName> = { 'sha-256': 'sha256', 'sha-384': 'sha384', 'sha-512': 'sha512', 'sha-224': 'sha224', 'sha-1': 'sha1' };

/**
 * The digests to compute in the first pass: those the micalg parameter announces, or
 * SHA-256 when it names none we know. The signature, which comes after the content,
 * decides; a digest missing here costs another pass over the content.
 */
export function digestsForMicalg(micalg: string | undefined): DigestAlgorithm[] {
  const names = new Set<DigestName>();
  for (const m of (micalg ?? '').toLowerCase().split(',')) {
    const n = MICALG[m.trim()];
    if (n) names.add(n);
  }
  if (names.size === 0) names.add('sha256');
  return [...names].map((n) => digestAlgorithm(n));
}

/** Hashes content with several digest algorithms at once. */
export function hashAll(algs: readonly DigestAlgorithm[]): { update(bytes: Uint8Array): void; digests(): Map<string, Uint8Array> } {
  const hashes: Array<[string, Hash]> = algs.map((a) => [a.oid, createDigest(a)]);
  return {
    update: (bytes) => {
      for (const [, h] of hashes) h.update(bytes);
    },
    digests: () => new Map(hashes.map(([oid, h]) => [oid, h.digest()])),
  };
}

