/**
 * The bytes of batch chunks (their input as uploaded, their signed output), kept
 * apart from the batch rows so the queue's queries never touch them:
 *
 * - on PostgreSQL in the table batch_blobs (migration 10), which every node reads;
 * - on SQLite in files under <directory of the store file>/batches/<batch id>/
 *   (KAKITOME_HOME/batches by default): one machine, and the key store file and
 *   its backups stay small (a million-message batch is gigabytes). Each file is
 *   written whole (mode 0600, fsynced, then renamed into place) and a batch's
 *   directory goes with it.
 *
 * A blob is written whole and replaced whole: a chunk's output has the name of
 * the lease that made it (out-<seq>-<token>), so output from an attempt that lost
 * its lease is never the one a batch's result reads (src/store/batch-queue.ts).
 */
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { KakitomeError } from '../errors.ts';
import type { SqlEngine } from './sql-engine.ts';

export interface BatchBlobs {
  readonly kind: 'table' | 'files';
  put(batchId: string, name: string, bytes: Uint8Array): Promise<void>;
  get(batchId: string, name: string): Promise<Buffer>;
  /** The blob in pieces, for streaming it out without holding it whole. */
  read(batchId: string, name: string): AsyncGenerator<Buffer>;
  remove(batchId: string, name: string): Promise<void>;
  removeBatch(batchId: string): Promise<void>;
  /** Batches with blobs, to find what a batch's deletion left behind (a worker finishing after it). */
  batchIds(): Promise<string[]>;
}

const ID = /^[0-9a-f-]{36}$/;
const NAME = /^[a-z0-9-]{1,80}$/;

function check(batchId: string, name?: string): void {
  if (!ID.test(batchId) || (name !== undefined && !NAME.test(name))) throw new KakitomeError('INVALID_ARGUMENT', `Not a batch blob name: ${batchId}/${name ?? ''}.`);
}

function missing(batchId: string, name: string): KakitomeError {
  return new KakitomeError('NOT_FOUND', `Batch ${batchId} has no stored ${name} (the batch was deleted?).`);
}

class TableBlobs implements BatchBlobs {
  readonly kind = 'table' as const;
  readonly #engine: SqlEngine;
  constructor(engine: SqlEngine) {
    this.#engine = engine;
  }
  async put(batchId: string, name: string, bytes: Uint8Array): Promise<void> {
    check(batchId, name);
    await this.#engine.run('INSERT INTO batch_blobs (batch_id, name, bytes) VALUES (?, ?, ?) ON CONFLICT (batch_id, name) DO UPDATE SET bytes = excluded.bytes', [batchId, name, bytes]);
  }
  async get(batchId: string, name: string): Promise<Buffer> {
    const pieces: Buffer[] = [];
    for await (const piece of this.read(batchId, name)) pieces.push(piece);
    return Buffer.concat(pieces);
  }
  /**
   * In pieces of 48 KiB: PostgreSQL sends BYTEA as hex text, which the driver
   * holds as a string before decoding it; kept under 128 KiB, those strings are
   * young garbage that V8 frees at once, where one string per megabyte blob would
   * sit in its large-object space until a full collection (a node's peak RSS
   * rose by tens of MiB while a result streamed).
   */
  async *read(batchId: string, name: string): AsyncGenerator<Buffer> {
    const pieceBytes = 48 * 1024;
    check(batchId, name);
    const rows = await this.#engine.all('SELECT length(bytes) AS n FROM batch_blobs WHERE batch_id = ? AND name = ?', [batchId, name]);
    if (!rows[0]) throw missing(batchId, name);
    const size = Number(rows[0].n);
    // substr counts from 1, in bytes for a BLOB (SQLite) and a BYTEA (PostgreSQL).
    for (let at = 0; at < size; at += pieceBytes) {
      const piece = (await this.#engine.all('SELECT substr(bytes, ?, ?) AS piece FROM batch_blobs WHERE batch_id = ? AND name = ?', [at + 1, pieceBytes, batchId, name]))[0]?.piece;
      if (!(piece instanceof Uint8Array)) throw missing(batchId, name);
      yield Buffer.isBuffer(piece) ? piece : Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
    }
  }
  async remove(batchId: string, name: string): Promise<void> {
    check(batchId, name);
    await this.#engine.run('DELETE FROM batch_blobs WHERE batch_id = ? AND name = ?', [batchId, name]);
  }
  async removeBatch(batchId: string): Promise<void> {
    check(batchId);
    await this.#engine.run('DELETE FROM batch_blobs WHERE batch_id = ?', [batchId]);
  }
  async batchIds(): Promise<string[]> {
    // Rows of a deleted batch go with it (ON DELETE CASCADE); none is ever left behind.
    return [];
  }
}

class FileBlobs implements BatchBlobs {
  readonly kind = 'files' as const;
  readonly #root: string;
  constructor(root: string) {
    this.#root = root;
  }
  async put(batchId: string, name: string, bytes: Uint8Array): Promise<void> {
    check(batchId, name);
    const dir = join(this.#root, batchId);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const tmp = join(dir, `.${name}.${randomBytes(6).toString('hex')}`);
    const file = await open(tmp, 'wx', 0o600);
    try {
      await file.writeFile(bytes);
      await file.sync();
    } catch (e) {
      await file.close();
      await rm(tmp, { force: true });
      throw e;
    }
    await file.close();
    await rename(tmp, join(dir, name));
    // The rename itself survives a crash once the directory is synced.
    const d = await open(dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  }
  async get(batchId: string, name: string): Promise<Buffer> {
    check(batchId, name);
    try {
      return await readFile(join(this.#root, batchId, name));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw missing(batchId, name);
      throw e;
    }
  }
  async *read(batchId: string, name: string): AsyncGenerator<Buffer> {
    check(batchId, name);
    try {
      for await (const piece of createReadStream(join(this.#root, batchId, name), { highWaterMark: 256 * 1024 })) yield piece as Buffer;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw missing(batchId, name);
      throw e;
    }
  }
  async remove(batchId: string, name: string): Promise<void> {
    check(batchId, name);
    await rm(join(this.#root, batchId, name), { force: true });
  }
  async removeBatch(batchId: string): Promise<void> {
    check(batchId);
    await rm(join(this.#root, batchId), { recursive: true, force: true });
  }
  async batchIds(): Promise<string[]> {
    try {
      return (await readdir(this.#root, { withFileTypes: true })).filter((d) => d.isDirectory() && ID.test(d.name)).map((d) => d.name);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
  }
}

/**
 * The blobs for a store's engine: the table on PostgreSQL (and on an in-memory
 * SQLite database, which has no directory), files beside a SQLite store file.
 */
export async function openBatchBlobs(engine: SqlEngine): Promise<BatchBlobs> {
  if (engine.dialect === 'sqlite') {
    const rows = await engine.all("SELECT file FROM pragma_database_list WHERE name = 'main'");
    const file = rows[0]?.file ? String(rows[0].file) : '';
    if (file) return new FileBlobs(join(dirname(file), 'batches'));
  }
  return new TableBlobs(engine);
}
