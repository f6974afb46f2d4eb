/**
 * The signing service's batches (issue 10; migration 10): a tenant's upload of
 * many messages, kept as chunks (their bytes in BatchBlobs), signed by whichever
 * node claims each chunk (batch-queue.ts), read back as one result.
 *
 * A batch's life: `receiving` while its upload arrives (the uploading node holds a
 * lease on it, renewed as it writes chunks; an upload whose node died is found by
 * its lapsed lease and removed), `queued` once the whole upload is stored (its
 * chunks may be claimed from then on, never before: a half-received batch is
 * never signed), `running` from its first claimed chunk, `done` when every chunk
 * is; then it is kept until `expires_at` and removed with its bytes. Every
 * read and deletion names the tenant: another tenant's batch does not exist.
 *
 * Idempotency keys are unique per tenant while their batch exists: a retried
 * upload finds the batch by its key and compares the request's fingerprint.
 */
import { randomUUID } from 'node:crypto';
import { KakitomeError, type ErrorCode, type Remedy } from '../errors.ts';
import type { BatchBlobs } from './batch-blobs.ts';
import type { Row, SqlValue } from './sql-engine.ts';
import type { Store } from './store.ts';

export type BatchState = 'receiving' | 'queued' | 'running' | 'done';

export interface BatchRecord {
  id: string;
  tenant: string;
  /** The API key that uploaded it; its messages are signed for that key's tenant, as that key. */
  keyId: string;
  idempotencyKey?: string;
  /** SHA-256 of the upload request (media type, options, body): a retry must match it. */
  fingerprint?: string;
  mediaType: string;
  /** The sign options (POST /api/v1/sign's query), applied to every message. */
  options: Record<string, string>;
  state: BatchState;
  total: number;
  chunks: number;
  chunksDone: number;
  signed: number;
  failed: number;
  receivedBytes: number;
  resultBytes: number;
  createdAt: Date;
  leaseUntil?: Date;
  queuedAt?: Date;
  finishedAt?: Date;
  expiresAt?: Date;
}

export interface BatchFailure {
  /** 0-based position of the message in the upload. */
  index: number;
  code: ErrorCode | 'INTERNAL';
  reason: string;
  /** What would let the message be signed, when the error names it (KakitomeError.remedy). */
  remedy?: Remedy;
}

export interface ResultPart {
  seq: number;
  /** The output blob's name. */
  output: string;
  bytes: number;
}

export interface NewBatch {
  tenant: string;
  keyId: string;
  idempotencyKey?: string;
  mediaType: string;
  options: Record<string, string>;
  /** How long the upload's lease lasts before it must be renewed. */
  leaseMs: number;
}

const COLUMNS = 'id, tenant, key_id, idempotency_key, fingerprint, media_type, options, state, total, chunks, chunks_done, signed, failed, received_bytes, result_bytes, created_at, lease_until, queued_at, finished_at, expires_at';

const str = (v: SqlValue | undefined): string | undefined => (v === null || v === undefined ? undefined : String(v));
const date = (v: SqlValue | undefined): Date | undefined => (v === null || v === undefined ? undefined : new Date(String(v)));

function toBatch(r: Row): BatchRecord {
  const optional = <K extends string, V>(key: K, value: V | undefined) => (value === undefined ? {} : { [key]: value } as Record<K, V>);
  return {
    id: String(r.id), tenant: String(r.tenant), keyId: String(r.key_id),
    ...optional('idempotencyKey', str(r.idempotency_key)), ...optional('fingerprint', str(r.fingerprint)),
    mediaType: String(r.media_type), options: JSON.parse(String(r.options)) as Record<string, string>,
    state: String(r.state) as BatchState,
    total: Number(r.total), chunks: Number(r.chunks), chunksDone: Number(r.chunks_done), signed: Number(r.signed), failed: Number(r.failed),
    receivedBytes: Number(r.received_bytes), resultBytes: Number(r.result_bytes), createdAt: new Date(String(r.created_at)),
    ...optional('leaseUntil', date(r.lease_until)), ...optional('queuedAt', date(r.queued_at)),
    ...optional('finishedAt', date(r.finished_at)), ...optional('expiresAt', date(r.expires_at)),
  };
}

function isUniqueViolation(e: unknown): boolean {
  const err = e as { code?: string; message?: string };
  return err?.code === '23505' || /UNIQUE constraint failed/i.test(err?.message ?? '');
}

export class BatchDirectory {
  readonly #store: Store;
  readonly #blobs: BatchBlobs;

  /** `store`: acting as whoever the audit log should name (the API key, or the service). */
  constructor(store: Store, blobs: BatchBlobs) {
    this.#store = store;
    this.#blobs = blobs;
  }

  get blobs(): BatchBlobs {
    return this.#blobs;
  }

  #now(): Date {
    return this.#store.now();
  }

  #later(ms: number): string {
    return new Date(this.#now().getTime() + ms).toISOString();
  }

  /** Records a use of a batch (a read of its progress or result) in the audit log. */
  async audit(action: string, id: string, detail: string): Promise<void> {
    await this.#store.audit(action, id, detail);
  }

  async find(tenant: string, id: string): Promise<BatchRecord | undefined> {
    const rows = await this.#store.engine.all(`SELECT ${COLUMNS} FROM batches WHERE id = ? AND tenant = ?`, [id, tenant]);
    return rows[0] ? toBatch(rows[0]) : undefined;
  }

  async findByIdempotencyKey(tenant: string, key: string): Promise<BatchRecord | undefined> {
    const rows = await this.#store.engine.all(`SELECT ${COLUMNS} FROM batches WHERE tenant = ? AND idempotency_key = ?`, [tenant, key]);
    return rows[0] ? toBatch(rows[0]) : undefined;
  }

  /**
   * A page of the tenant's batches, newest first (creation time, then id, both
   * descending); `before`: the last batch of the page before.
   */
  async list(tenant: string, limit: number, before?: { createdAt: string; id: string }): Promise<BatchRecord[]> {
    const after = before ? ' AND (created_at < ? OR (created_at = ? AND id < ?))' : '';
    const rows = await this.#store.engine.all(
      `SELECT ${COLUMNS} FROM batches WHERE tenant = ?${after} ORDER BY created_at DESC, id DESC LIMIT ?`,
      [tenant, ...(before ? [before.createdAt, before.createdAt, before.id] : []), limit],
    );
    return rows.map(toBatch);
  }

  /** Batches of the tenant not yet done (being received or signed). */
  async countUnfinished(tenant: string): Promise<number> {
    const rows = await this.#store.engine.all("SELECT COUNT(*) AS n FROM batches WHERE tenant = ? AND state <> 'done'", [tenant]);
    return Number(rows[0]?.n ?? 0);
  }

  /**
   * A new batch in state receiving; its id. With an idempotency key: an earlier
   * upload under it whose node died (its lease lapsed) is removed first; one that
   * exists otherwise, or a concurrent one that wins the insert, is CONFLICT (the
   * caller looked it up first and answers for it).
   */
  async begin(input: NewBatch): Promise<string> {
    const id = randomUUID();
    const now = this.#now().toISOString();
    let stale: string | undefined;
    try {
      await this.#store.engine.transaction(async (tx) => {
        if (input.idempotencyKey !== undefined) {
          const rows = await tx.all("SELECT id FROM batches WHERE tenant = ? AND idempotency_key = ? AND state = 'receiving' AND lease_until < ?", [input.tenant, input.idempotencyKey, now]);
          stale = str(rows[0]?.id);
          if (stale) await tx.run('DELETE FROM batches WHERE id = ?', [stale]);
        }
        await tx.run(
          'INSERT INTO batches (id, tenant, key_id, idempotency_key, media_type, options, state, created_at, lease_until) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
          [id, input.tenant, input.keyId, input.idempotencyKey ?? null, input.mediaType, JSON.stringify(input.options), 'receiving', now, this.#later(input.leaseMs)],
        );
      });
    } catch (e) {
      if (isUniqueViolation(e)) throw new KakitomeError('CONFLICT', 'An upload with this Idempotency-Key is already being received: wait for its answer, or retry in a few seconds.');
      throw e;
    }
    if (stale) await this.#blobs.removeBatch(stale);
    return id;
  }

  /** Extends the upload's lease; false when the batch is gone (deleted, or taken over after the lease lapsed). */
  async renewUpload(id: string, leaseMs: number): Promise<boolean> {
    return (await this.#store.engine.run("UPDATE batches SET lease_until = ? WHERE id = ? AND state = 'receiving'", [this.#later(leaseMs), id])) > 0;
  }

  /** Stores one chunk of the upload: its bytes, then its row (queued, but not claimable while the batch is receiving). */
  async addChunk(id: string, chunk: { seq: number; firstIndex: number; messages: number; bytes: Buffer }): Promise<void> {
    await this.#blobs.put(id, `in-${chunk.seq}`, chunk.bytes);
    await this.#store.engine.run(
      "INSERT INTO batch_chunks (batch_id, seq, first_index, messages, input_bytes, state) VALUES (?, ?, ?, ?, ?, 'queued')",
      [id, chunk.seq, chunk.firstIndex, chunk.messages, chunk.bytes.length],
    );
  }

  /** The whole upload is stored: the batch is queued (its chunks may be claimed), audited. False when it was lost meanwhile. */
  async finishUpload(id: string, summary: { total: number; chunks: number; receivedBytes: number; fingerprint: string }): Promise<boolean> {
    return this.#store.engine.transaction(async (tx) => {
      const n = await tx.run(
        "UPDATE batches SET state = 'queued', total = ?, chunks = ?, received_bytes = ?, fingerprint = ?, queued_at = ?, lease_until = NULL WHERE id = ? AND state = 'receiving'",
        [summary.total, summary.chunks, summary.receivedBytes, summary.fingerprint, this.#now().toISOString(), id],
      );
      if (n) await this.#store.auditWithin(tx, 'api.batches.create', id, `${summary.total} messages, ${summary.receivedBytes} bytes, ${summary.chunks} chunks`);
      return n > 0;
    });
  }

  /**
   * An upload that failed (too large, malformed, the client went away, the disk
   * full): nothing of it is kept. Its chunks go first: on a full disk SQLite
   * cannot delete the row either (the WAL needs room) until the chunk files, the
   * space to give back, are gone (a batch being received is read by nobody). Should
   * the DELETE still fail, the sweeper removes the row once its lease lapsed (expire).
   */
  async abandonUpload(id: string): Promise<void> {
    try {
      await this.#blobs.removeBatch(id);
    } finally {
      await this.#store.engine.run("DELETE FROM batches WHERE id = ? AND state = 'receiving'", [id]);
    }
  }

  /** Failures from message `from` on, by index; at most `limit`. */
  async failures(id: string, from: number, limit: number): Promise<BatchFailure[]> {
    const rows = await this.#store.engine.all('SELECT idx, code, reason, remedy FROM batch_failures WHERE batch_id = ? AND idx >= ? ORDER BY idx LIMIT ?', [id, from, limit]);
    return rows.map((r) => ({ index: Number(r.idx), code: String(r.code) as BatchFailure['code'], reason: String(r.reason), ...(r.remedy ? { remedy: String(r.remedy) as Remedy } : {}) }));
  }

  /** The outputs of a done batch's chunks, in order (a few thousand rows for a million messages). */
  async resultParts(id: string): Promise<ResultPart[]> {
    const rows = await this.#store.engine.all("SELECT seq, output, output_bytes FROM batch_chunks WHERE batch_id = ? AND state = 'done' ORDER BY seq", [id]);
    return rows.map((r) => ({ seq: Number(r.seq), output: String(r.output), bytes: Number(r.output_bytes) }));
  }

  /** Deletes the tenant's batch (any state: one being signed stops), its bytes and failures; false when there is none. */
  async remove(tenant: string, id: string, action = 'api.batches.delete'): Promise<boolean> {
    const removed = await this.#store.engine.transaction(async (tx) => {
      const n = await tx.run('DELETE FROM batches WHERE id = ? AND tenant = ?', [id, tenant]);
      if (n) await this.#store.auditWithin(tx, action, id);
      return n > 0;
    });
    if (removed) await this.#blobs.removeBatch(id);
    return removed;
  }

  /**
   * Removes what has outlived its time: done batches past `expires_at`, uploads
   * whose node stopped renewing their lease, and blob directories of batches that
   * no longer exist (written by a worker that finished after its batch was
   * deleted). Returns the number of batches removed. Safe on several nodes at once.
   */
  async expire(): Promise<number> {
    const now = this.#now().toISOString();
    const rows = await this.#store.engine.all(
      "SELECT id, tenant, state FROM batches WHERE (state = 'done' AND expires_at < ?) OR (state = 'receiving' AND lease_until < ?) ORDER BY created_at LIMIT 100",
      [now, now],
    );
    let removed = 0;
    for (const r of rows) {
      if (await this.remove(String(r.tenant), String(r.id), String(r.state) === 'done' ? 'batch.expire' : 'batch.abandoned')) removed++;
    }
    const stored = await this.#blobs.batchIds();
    if (stored.length) {
      const known = new Set((await this.#store.engine.all('SELECT id FROM batches')).map((r) => String(r.id)));
      for (const id of stored) if (!known.has(id)) await this.#blobs.removeBatch(id);
    }
    return removed;
  }
}
