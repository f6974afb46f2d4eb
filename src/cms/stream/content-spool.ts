/**
 * Holds content that may not be released yet (ciphertext before its tag is
 * checked, signed content before its signature is) and replays it afterwards.
 *
 * Small content stays in memory; past `memoryBytes` it spills to a temporary file
 * that is unlinked as soon as it is opened, so nothing else can open it, swap it
 * between the check and the replay, or find it after a crash. Only ciphertext or
 * content the caller already holds (the signed input) is ever spooled: plaintext
 * never reaches a temporary file.
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

const READ_SIZE = 1 << 20;

export class ContentSpool {
  readonly #memoryBytes: number;
  readonly #dir: string;
  readonly #maxBytes: number;
  #chunks: Uint8Array[] = [];
  #file: FileHandle | undefined;
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

  /** Appends a copy of `chunk` (the caller may reuse its buffer). */
  async write(chunk: Uint8Array): Promise<void> {
    if (this.#disposed) throw new Error('spool disposed');
    if (chunk.length === 0) return;
    if (this.#size + chunk.length > this.#maxBytes) throw new KakitomeError('LIMIT', `Content exceeds the ${this.#maxBytes}-byte limit.`);
    if (!this.#file && this.#size + chunk.length > this.#memoryBytes) await this.#spill();
    this.#size += chunk.length;
    if (this.#file) await this.#file.write(chunk);
    else this.#chunks.push(Uint8Array.prototype.slice.call(chunk));
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
    for (const c of this.#chunks) await this.#file.write(c);
    this.#chunks = [];
  }

  /** The content from the start, in chunks; may be called several times. */
  async *replay(): AsyncGenerator<Uint8Array> {
    if (this.#disposed) throw new Error('spool disposed');
    if (!this.#file) {
      yield* this.#chunks;
      return;
    }
    let pos = 0;
    while (pos < this.#size) {
      const buf = Buffer.allocUnsafe(Math.min(READ_SIZE, this.#size - pos));
      const { bytesRead } = await this.#file.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) throw new Error('spool file shrank');
      pos += bytesRead;
      yield bytesRead === buf.length ? buf : buf.subarray(0, bytesRead);
    }
  }

  async dispose(): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#chunks = [];
    const f = this.#file;
    this.#file = undefined;
    await f?.close();
  }
}
