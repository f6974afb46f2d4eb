/**
 * The job queue that spreads batch work over the service's nodes: the jobs are
 * the chunks of batches (batch_chunks, migration 10), in the store every node
 * already shares. No other infrastructure, one code path on both engines:
 *
 * - claim: in one transaction, the first claimable chunk (queued, or running with
 *   a lapsed lease; chunk 0 of every batch before chunk 1 of any, so batches share
 *   the nodes) is marked running with a fresh lease token and lease time. On
 *   PostgreSQL the row is taken with SELECT ... FOR UPDATE SKIP LOCKED, so nodes
 *   claiming at once take different chunks without waiting on each other; on
 *   SQLite the transaction holds the database's write lock (BEGIN IMMEDIATE), so
 *   claims from several processes on one machine take turns.
 * - renew: the node extends its lease while it works (a third of the lease).
 * - complete: the chunk's counts, failures, output name and the audit rows of its
 *   signed messages are written, and the batch's counters moved, in one
 *   transaction, only if the node still holds the lease. A node that stopped (killed, partitioned, paused past its lease) loses
 *   the chunk to the next claim, and its late completion changes nothing: each
 *   chunk is counted and has an output exactly once.
 * - release: the node gives the chunk back (stopping, or a failure that is not the
 *   message's: the store went away), to be claimed again after a delay.
 *
 * Why not pg-boss (which the issue suggested): it is PostgreSQL only, so SQLite
 * would need a second queue with its own semantics; it brings nine packages
 * (cron and rrule parsing, luxon, type-fest...) and a schema of its own outside
 * the store's migrations and backups; and what must be exact here (a chunk's
 * output and counts written once, in the transaction that ends the job) lives in
 * our tables anyway. See docs/api.md, "Batches".
 */
import { randomBytes } from 'node:crypto';
import type { BatchFailure } from './batch-directory.ts';
import { insertAuditRows, type AuditRow } from './record-key-use.ts';
import type { SqlEngine, SqlExecutor } from './sql-engine.ts';

export interface ClaimedChunk {
  batchId: string;
  seq: number;
  /** Index of the chunk's first message in the upload. */
  firstIndex: number;
  messages: number;
  /** Claims of this chunk so far, this one included. */
  attempts: number;
  /** The lease: only its holder may complete or renew the chunk. */
  token: string;
  tenant: string;
  keyId: string;
  options: Record<string, string>;
}

export interface ChunkOutcome {
  signed: number;
  failed: number;
  failures: readonly BatchFailure[];
  /** The output blob's name. */
  output: string;
  outputBytes: number;
  /**
   * The audit rows of the chunk's signed messages (one per message), committed with
   * the completion: the output is readable only once it is done, so nothing of the
   * chunk is released whose use is not in the audit log, and a chunk never
   * completed records nothing. Iterated once, in the completing transaction: rows
   * that are made as they are asked for (a batch chunk's, server/batches/chunk-audit.ts)
   * are inserted AUDIT_ROWS at a time, so none of them outlives its insert by much.
   */
  audit: Iterable<AuditRow>;
}

const FAILURE_ROWS = 100;
const AUDIT_ROWS = 100;

/** The chunks a claim may take: of a live batch, not done, and free or with a lapsed lease. */
const CLAIMABLE = `FROM batch_chunks c JOIN batches b ON b.id = c.batch_id
  WHERE b.state IN ('queued', 'running') AND c.state <> 'done' AND (c.lease_until IS NULL OR c.lease_until < ?)`;

export class BatchQueue {
  readonly #engine: SqlEngine;
  readonly #clock: () => Date;

  constructor(engine: SqlEngine, clock: () => Date = () => new Date()) {
    this.#engine = engine;
    this.#clock = clock;
  }

  #at(ms = 0): string {
    return new Date(this.#clock().getTime() + ms).toISOString();
  }

  /**
   * Claims the next chunk for `node` (a name for logs and the row); undefined when
   * there is no work. An idle node's poll is a plain read: the claiming transaction
   * (on SQLite the database's write lock, which a serving thread would wait for
   * while the coordinator commits audit rows, its event loop stalled) is begun only
   * when a chunk looked claimable.
   */
  async claim(node: string, leaseMs: number): Promise<ClaimedChunk | undefined> {
    if (!(await this.#engine.all(`SELECT 1 ${CLAIMABLE} LIMIT 1`, [this.#at()])).length) return undefined;
    const skipLocked = this.#engine.dialect === 'postgres' ? ' FOR UPDATE OF c SKIP LOCKED' : '';
    return this.#engine.transaction(async (tx) => {
      const rows = await tx.all(
        `SELECT c.batch_id, c.seq, c.first_index, c.messages, c.attempts, b.tenant, b.key_id, b.options ${CLAIMABLE}
         ORDER BY c.seq, b.created_at, c.batch_id LIMIT 1${skipLocked}`,
        [this.#at()],
      );
      const r = rows[0];
      if (!r) return undefined;
      const token = randomBytes(12).toString('hex');
      await tx.run(
        "UPDATE batch_chunks SET state = 'running', attempts = attempts + 1, lease_token = ?, lease_until = ?, node = ? WHERE batch_id = ? AND seq = ?",
        [token, this.#at(leaseMs), node.slice(0, 200), r.batch_id!, r.seq!],
      );
      await tx.run("UPDATE batches SET state = 'running' WHERE id = ? AND state = 'queued'", [r.batch_id!]);
      return {
        batchId: String(r.batch_id), seq: Number(r.seq), firstIndex: Number(r.first_index), messages: Number(r.messages),
        attempts: Number(r.attempts) + 1, token, tenant: String(r.tenant), keyId: String(r.key_id),
        options: JSON.parse(String(r.options)) as Record<string, string>,
      };
    });
  }

  /** Extends the lease; false when it was lost (lapsed and claimed by another node, or the batch deleted). */
  async renew(chunk: ClaimedChunk, leaseMs: number): Promise<boolean> {
    const n = await this.#engine.run("UPDATE batch_chunks SET lease_until = ? WHERE batch_id = ? AND seq = ? AND lease_token = ? AND state = 'running'", [this.#at(leaseMs), chunk.batchId, chunk.seq, chunk.token]);
    return n > 0;
  }

  /**
   * Gives the chunk back, to be claimed again after `delayMs`; `refund`: the claim's
   * attempt is not counted (the service's trouble interrupted it, not the chunk's).
   */
  async release(chunk: ClaimedChunk, delayMs: number, refund = false): Promise<void> {
    await this.#engine.run(`UPDATE batch_chunks SET state = 'queued', lease_token = NULL, lease_until = ?${refund ? ', attempts = attempts - 1' : ''} WHERE batch_id = ? AND seq = ? AND lease_token = ? AND state = 'running'`, [this.#at(delayMs), chunk.batchId, chunk.seq, chunk.token]);
  }

  /**
   * Gives back at once every chunk `node` holds: a node known to be gone (a batch
   * thread that died, keep-batch-thread.ts), so its chunks need not wait out their
   * lease. Their attempts stay counted. Returns how many.
   */
  async releaseNode(node: string): Promise<number> {
    return this.#engine.run("UPDATE batch_chunks SET state = 'queued', lease_token = NULL, lease_until = NULL WHERE node = ? AND state = 'running'", [node]);
  }

  /**
   * Completes the chunk if the lease is still this node's: its outcome and the
   * batch's counters in one transaction; the batch is done (kept `retentionMs`)
   * when this was its last chunk. False when the lease was lost: nothing changed.
   */
  async complete(chunk: ClaimedChunk, outcome: ChunkOutcome, retentionMs: number): Promise<boolean> {
    return this.#engine.transaction(async (tx) => {
      const n = await tx.run(
        "UPDATE batch_chunks SET state = 'done', signed = ?, failed = ?, output = ?, output_bytes = ?, lease_token = NULL, lease_until = NULL WHERE batch_id = ? AND seq = ? AND lease_token = ? AND state = 'running'",
        [outcome.signed, outcome.failed, outcome.output, outcome.outputBytes, chunk.batchId, chunk.seq, chunk.token],
      );
      if (!n) return false;
      let rows: AuditRow[] = [];
      for (const row of outcome.audit) {
        rows.push(row);
        if (rows.length < AUDIT_ROWS) continue;
        await insertAuditRows(tx, this.#engine.dialect, rows);
        rows = [];
      }
      await insertAuditRows(tx, this.#engine.dialect, rows);
      await insertFailures(tx, chunk.batchId, outcome.failures);
      await tx.run(
        'UPDATE batches SET chunks_done = chunks_done + 1, signed = signed + ?, failed = failed + ?, result_bytes = result_bytes + ? WHERE id = ?',
        [outcome.signed, outcome.failed, outcome.outputBytes, chunk.batchId],
      );
      await tx.run(
        "UPDATE batches SET state = 'done', finished_at = ?, expires_at = ? WHERE id = ? AND chunks_done = chunks AND state <> 'done'",
        [this.#at(), this.#at(retentionMs), chunk.batchId],
      );
      return true;
    });
  }
}

async function insertFailures(tx: SqlExecutor, batchId: string, failures: readonly BatchFailure[]): Promise<void> {
  for (let i = 0; i < failures.length; i += FAILURE_ROWS) {
    const rows = failures.slice(i, i + FAILURE_ROWS);
    await tx.run(
      `INSERT INTO batch_failures (batch_id, idx, code, reason, remedy) VALUES ${rows.map(() => '(?, ?, ?, ?, ?)').join(', ')}`,
      rows.flatMap((f) => [batchId, f.index, f.code, f.reason.slice(0, 1000), f.remedy ?? null]),
    );
  }
}
