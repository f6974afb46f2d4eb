/**
 * Holds content that may not be released yet (ciphertext before its tag is
 * checked, signed content before its signature is) and replays it afterwards.
 *
 * Small content stays in memory; past `memoryBytes` it spills to a temporary file
 * that is unlinked as soon as it is opened, so nothing else can open it, swap it
 * between the check and the replay, or find it after a crash. The library spools
 * only ciphertext or content the caller already holds (the signed input): its
 * plaintext never reaches a temporary file. The gateway also spools the large
 * messages it relays, decrypted ones included, in its own spool directory
 * (docs/security.md, "The gateway's spool").
 */
import { mkdtemp, open, rm, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KakitomeError } from '../../errors.ts';

export interface SpoolOptions {
  /** Bytes kept in memory before spilling to disk. */
  memoryBytes?: number;
  /** Directory for the spill file (default: the OS temporary directory). */
  dir?: string;
  /**
   * Largest content accepted (LIMIT beyond). Default 4 GiB: a hostile sender must not
   * be able to fill the disk through the spill file; raise it for larger messages.
   */
  maxBytes?: number;
}

const BLOCK = 1 << 20;

export class ContentSpool {
  readonly #memoryBytes: number;
  readonly #dir: string;
  readonly #maxBytes: number;
  #chunks: Uint8Array[] = [];
  #file: FileHandle | undefined;
  /**
   * Once spilled, writes are gathered here and written a block at a time: callers hand
   * in pieces of a few KiB (base64-decoded mail), and one write(2) each cost more than
   * the copy.
   */
  #block: Buffer | undefined;
  #blockUsed = 0;
  /** Bytes already in the file. */
  #fileSize = 0;
  #size = 0;
  #disposed = false;

  constructor(opts: SpoolOptions = {}) {
    this.#memoryBytes = opts.memoryBytes ?? 4 * 1024 * 1024;
    this.#dir = opts.dir ?? tmpdir();
    this.#maxBytes = opts.maxBytes ?? 4 * 1024 ** 3;
  }

  get size(): number {
    return this.#size;
  }

  /** Appends a copy of `chunk` (the caller may reuse its buffer as soon as the promise settles). */
  async write(chunk: Uint8Array): Promise<void> {
    if (this.#disposed) throw new Error('spool disposed');
    if (chunk.length === 0) return;
    if (this.#size + chunk.length > this.#maxBytes) throw new KakitomeError('LIMIT', `Content exceeds the ${this.#maxBytes}-byte limit.`);
    if (!this.#file && this.#size + chunk.length > this.#memoryBytes) await this.#spill();
    this.#size += chunk.length;
    if (!this.#file) {
      this.#chunks.push(Uint8Array.prototype.slice.call(chunk));
      return;
    }
    const block = (this.#block ??= Buffer.allocUnsafe(BLOCK));
    let p = 0;
    while (p < chunk.length) {
      const n = Math.min(chunk.length - p, BLOCK - this.#blockUsed);
      block.set(chunk.subarray(p, p + n), this.#blockUsed);
      this.#blockUsed += n;
      p += n;
      if (this.#blockUsed === BLOCK) await this.#flush();
    }
  }

  async #flush(): Promise<void> {
    if (!this.#file || this.#blockUsed === 0) return;
    await this.#writeFully(this.#block!.subarray(0, this.#blockUsed));
    this.#blockUsed = 0;
  }

  async #writeFully(bytes: Uint8Array): Promise<void> {
    let p = 0;
    while (p < bytes.length) {
      const { bytesWritten } = await this.#file!.write(bytes, p, bytes.length - p, this.#fileSize);
      p += bytesWritten;
      this.#fileSize += bytesWritten;
    }
  }

  async #spill(): Promise<void> {
    const dir = await mkdtemp(join(this.#dir, 'kakitome-spool-'));
    const path = join(dir, 'content');
    try {
      this.#file = await open(path, 'wx+', 0o600);
    } finally {
      // Unlinked at once: the open handle is the only way to the bytes.
      await rm(dir, { recursive: true, force: true });
    }
    for (const c of this.#chunks) await this.#writeFully(c);
    this.#chunks = [];
  }

  /**
   * The content from the start, in chunks; may be called several times.
   *
   * With `reuse`, chunks read from the spill file come from three buffers used in
   * turn (as readFileChunks: a chunk stays valid until the chunk after the next one
   * is asked for), so replaying a large spool leaves no garbage for V8 to collect
   * late; only for consumers that finish with each chunk before asking for more.
   */
  async *replay(opts: { reuse?: boolean } = {}): AsyncGenerator<Uint8Array> {
    if (this.#disposed) throw new Error('spool disposed');
    if (!this.#file) {
      yield* this.#chunks;
      return;
    }
    await this.#flush();
    const file = this.#file;
    const end = this.#fileSize;
    const ring = opts.reuse ? [Buffer.allocUnsafe(BLOCK), Buffer.allocUnsafe(BLOCK), Buffer.allocUnsafe(BLOCK)] : undefined;
    let turn = 0;
    const readAt = async (pos: number): Promise<Buffer> => {
      const buf = ring ? ring[turn++ % 3]!.subarray(0, Math.min(BLOCK, end - pos)) : Buffer.allocUnsafe(Math.min(BLOCK, end - pos));
      let got = 0;
      while (got < buf.length) {
        const { bytesRead } = await file.read(buf, got, buf.length - got, pos + got);
        if (bytesRead === 0) throw new Error('spool file shrank');
        got += bytesRead;
      }
      return buf;
    };
    let pos = 0;
    let ahead: Promise<Buffer> | undefined = pos < end ? readAt(pos) : undefined;
    try {
      while (ahead) {
        const buf = await ahead;
        ahead = undefined;
        pos += buf.length;
        // Read the next block while the consumer works on this one.
        if (pos < end) ahead = readAt(pos);
        yield buf;
      }
    } finally {
      // Never leave a read running into a buffer or a handle about to be closed.
      if (ahead) await ahead.catch(() => undefined);
    }
  }

  /** The content in one buffer (for content known to be small: it stayed in memory, or the caller bounds it). */
  async readAll(): Promise<Buffer> {
    const chunks: Uint8Array[] = [];
    for await (const c of this.replay()) chunks.push(c);
    return Buffer.concat(chunks, this.#size);
  }

  async dispose(): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#chunks = [];
    this.#block = undefined;
    const f = this.#file;
    this.#file = undefined;
    await f?.close();
  }
}
