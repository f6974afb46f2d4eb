/**
 * An output file that appears only when the operation succeeded: bytes go to a
 * temporary file beside the destination (same directory, so the final rename is
 * atomic on POSIX) and are renamed into place by commit(); abort() deletes them.
 * A crash leaves at most a hidden `.name.*.partial` file, never a truncated
 * destination that looks like a complete message.
 */
import { lstat, open, rename, rm, type FileHandle } from 'node:fs/promises';
import { KakitomeError } from '../../errors.ts';
import { writevFully } from './writev-fully.ts';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { Writable } from 'node:stream';

export class AtomicFile {
  readonly path: string;
  readonly #tmp: string;
  #fh: FileHandle | undefined;
  #closed = false;

  private constructor(path: string, tmp: string, fh: FileHandle) {
    this.path = path;
    this.#tmp = tmp;
    this.#fh = fh;
  }

  static async create(path: string, mode = 0o600): Promise<AtomicFile> {
    // rename(2) over a device, FIFO, socket or symbolic link would replace that special
    // file itself (as root: /dev/null for the whole machine). Only a regular file, or
    // no file yet, may be the destination; pipes and devices take the stream APIs.
    const existing = await lstat(path).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return undefined;
      throw new KakitomeError('INVALID_ARGUMENT', `Cannot write ${path}: ${e.code ?? e.message}.`, { cause: e });
    });
    if (existing && !existing.isFile()) {
      throw new KakitomeError('INVALID_ARGUMENT', `${path} is not a regular file (a device, pipe, directory or link): the file helpers replace their output atomically; write to it with the stream API instead.`);
    }
    const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.partial`);
    const fh = await open(tmp, 'wx', mode);
    return new AtomicFile(path, tmp, fh);
  }

  /** Writes the chunks in order with one writev(2) where possible; resolves when written. */
  async write(...chunks: Uint8Array[]): Promise<void> {
    const fh = this.#fh;
    if (!fh) throw new Error('atomic file already closed');
    await writevFully(fh, chunks);
  }

  /** A Writable over this file (in order; backpressure through the write callback). */
  writable(): Writable {
    return new Writable({
      highWaterMark: 1 << 20,
      write: (chunk: Buffer, _enc, cb) => {
        this.write(chunk).then(() => cb(), cb);
      },
      writev: (chunks, cb) => {
        this.write(...chunks.map((c) => c.chunk as Buffer)).then(() => cb(), cb);
      },
    });
  }

  /**
   * Renames the file into place. With `durable` the data are flushed to disk first
   * (fsync): safer across a power cut, but it costs the full write-back time (about a
   * second for 200 MiB here), which `openssl cms` and most mail tools never pay.
   */
  async commit(durable = false): Promise<void> {
    const fh = this.#fh;
    if (!fh || this.#closed) throw new Error('atomic file already closed');
    this.#closed = true;
    this.#fh = undefined;
    try {
      if (durable) await fh.sync();
      await fh.close();
      await rename(this.#tmp, this.path);
    } catch (e) {
      await rm(this.#tmp, { force: true });
      throw e;
    }
  }

  /** Deletes the temporary file; safe to call after commit() or twice. */
  async abort(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const fh = this.#fh;
    this.#fh = undefined;
    await fh?.close().catch(() => undefined);
    await rm(this.#tmp, { force: true });
  }
}
