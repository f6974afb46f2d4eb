/**
 * Group commit for the audit rows of key uses (issue 12, item 5), and of every
 * operation recorded outside a transaction of its own (Store.audit: the signing
 * service's api.sign and smtp.sign, one per message).
 *
 * Every time the store hands out a private key (decrypt, sign, a CA signature) it
 * writes an audit row, and the key is handed out only once that row is committed:
 * the durability point of a key use is the COMMIT that holds its row, and it comes
 * before the caller has the key, so no answer can ever depend on a key use whose
 * record could still be lost. The API cannot be misused into "use now, audit
 * later": there is no way to get a key without waiting for its record, except
 * findDecryptionKeysRecording (store.ts), which hands the keys over with the
 * promise of their records' commit for a caller that releases nothing made with
 * them before it settles (the gateway's inbound path, process-inbound.ts: it
 * decrypts while the fsync runs).
 *
 * What makes that fast is sharing the commit, not skipping it. One row per
 * transaction costs one fsync (SQLite WAL with synchronous=FULL, PostgreSQL with
 * synchronous_commit on): about 1,250 commits/s on the reference machine, whatever
 * the row. Rows are nearly free inside a commit (63,000 rows/s in batches of 1,000).
 * So the rows of every key use that arrives while a commit is being prepared or is
 * running go into the next commit together, and each caller's promise settles when
 * the commit holding its row does. A lone caller waits for one commit, as before; a
 * gateway with many messages in flight shares each fsync among all of them.
 *
 * Crash between key use and flush: the row is queued but not committed, and the
 * caller has not received the key (its promise is still pending), so nothing was
 * decrypted or signed with it and no answer went out. After the restart the record
 * is absent and so is every effect of the use. A failed commit (disk full, database
 * gone) rejects every caller of that batch: none of them gets its key.
 *
 * Alternatives measured and set aside (docs/performance.md): a write-behind queue
 * flushed "before the answer" gives the same throughput under concurrency but moves
 * the durability point into every caller (one forgotten flush loses records); an
 * audit table of counts per minute saves rows, which are not what costs, and loses
 * which certificate was used when and by whom.
 */
import { formatAuditTime } from './format-audit-time.ts';
import { timeOrderedId } from './time-ordered-id.ts';
import type { Dialect, SqlEngine, SqlExecutor } from './sql-engine.ts';

export interface KeyUseRecord {
  at: Date;
  actor: string;
  action: string;
  object?: string;
  detail?: string;
}

/** An audit_log row as inserted: id (time-ordered), at (ISO), actor, action, object, detail. */
export type AuditRow = [id: string, at: string, actor: string, action: string, object: string | null, detail: string | null];

/**
 * A commit's cost is its fsync, whatever its rows: measured on the reference
 * machine under load, 200-250 µs of CPU per commit (half of it system time) and
 * 8-10 µs per row in it. Where one process commits for several serving threads
 * (server/workers), `groupMs` spaces the commits out: a row that arrives within
 * that time of the last commit's start waits for the next one, so under load each
 * commit carries the rows of every request of those milliseconds. Only after a
 * commit that several rows shared: an idle store, or a caller alone (one client
 * sending one message at a time), commits at once. Each row is still committed
 * before its caller goes on.
 *
 * Where a batch of rows goes instead of this engine: a serving thread hands its
 * rows to the thread that holds the store's one writing connection
 * (server/workers), which commits them with its own (recordRows); resolves once
 * they are committed there.
 */
export type AuditWriter = (rows: AuditRow[]) => Promise<void>;

interface Waiting {
  /** One caller's rows: one for a key use, a serving thread's batch for recordRows. */
  rows: readonly AuditRow[];
  resolve: () => void;
  reject: (e: unknown) => void;
}

export function auditRowOf(r: KeyUseRecord): AuditRow {
  return [timeOrderedId(r.at.getTime()), formatAuditTime(r.at), r.actor, r.action, r.object ?? null, r.detail ?? null];
}

const COLUMNS = '(id, at, actor, action, object, detail)';
const INSERT_ONE = `INSERT INTO audit_log ${COLUMNS} VALUES (?, ?, ?, ?, ?, ?)`;
/** Rows per commit: bounds one transaction's size and PostgreSQL's parameter count (6 per row, at most 65,535). */
const MAX_BATCH = 2_000;

/** PostgreSQL: one multi-row INSERT per MAX_BATCH rows (a round trip each); SQLite: one prepared single-row INSERT per row (no round trips). */
function rowsPerStatement(dialect: Dialect): number {
  return dialect === 'postgres' ? MAX_BATCH : 1;
}

/**
 * Inserts audit rows with `tx` (a transaction of the caller's, or one statement that
 * is a transaction of its own): the recorder's commits, and a batch chunk's rows
 * written in the transaction that completes the chunk (src/store/batch-queue.ts).
 */
export async function insertAuditRows(tx: SqlExecutor, dialect: Dialect, rows: readonly AuditRow[]): Promise<void> {
  const n = rowsPerStatement(dialect);
  if (n === 1) {
    for (const row of rows) await tx.run(INSERT_ONE, row);
    return;
  }
  for (let i = 0; i < rows.length; i += n) {
    const part = rows.slice(i, i + n);
    await tx.run(`INSERT INTO audit_log ${COLUMNS} VALUES ${part.map(() => '(?, ?, ?, ?, ?, ?)').join(', ')}`, part.flat());
  }
}

export class KeyUseRecorder {
  readonly #engine: SqlEngine;
  readonly #writer: AuditWriter | undefined;
  /** Rows one statement inserts (rowsPerStatement). */
  readonly #rowsPerStatement: number;
  #waiting: Waiting[] = [];
  #draining: Promise<void> | undefined;
  /** recordAtOnce's writer calls not answered yet. */
  readonly #handedOver = new Set<Promise<void>>();

  /** The least time between the starts of two commits (0: each as soon as the last one ended). */
  readonly #groupMs: number;
  #lastCommit = -Infinity;
  /** Rows in the last commit: the grouping time applies only after a shared one. */
  #lastRows = 0;

  constructor(engine: SqlEngine, writer?: AuditWriter, groupMs = 0) {
    this.#engine = engine;
    this.#writer = writer;
    this.#groupMs = groupMs;
    this.#rowsPerStatement = rowsPerStatement(engine.dialect);
  }

  /** Queues the record; resolves once it is committed, rejects if its commit fails. */
  record(r: KeyUseRecord): Promise<void> {
    return this.#queue([auditRowOf(r)]);
  }

  /**
   * The records of a caller that goes on working while they commit
   * (Store.findDecryptionKeysRecording: it decrypts meanwhile, synchronously). With
   * a writer they are handed to it at once, in one call, not at the end of this turn
   * of the event loop: the caller's own work (a decryption and a verification, about
   * a millisecond) would otherwise run first and the commit only after it, with
   * nothing overlapped; nor behind a batch already on its way to the writer, whose
   * thread groups the calls that arrive together into its commits
   * (gateway/audit-thread.ts). Measured through Postfix (bench/gateway.ts inbound,
   * loaded): the rows reached the audit thread 1.4 ms (p50) after the keys were
   * handed out, where its commit took 0.7 ms. Without a writer, the same as record
   * (the commit would block this very thread: node:sqlite).
   */
  recordAtOnce(records: readonly KeyUseRecord[]): Promise<void> {
    if (!this.#writer) return Promise.all(records.map((r) => this.record(r))).then(() => undefined);
    const rows = records.map(auditRowOf);
    const calls: Promise<void>[] = [];
    for (let i = 0; i < rows.length; i += MAX_BATCH) calls.push(this.#handOver(rows.slice(i, i + MAX_BATCH)));
    return Promise.all(calls).then(() => undefined);
  }

  /** One writer call outside the queue, waited for by settle(). */
  #handOver(rows: AuditRow[]): Promise<void> {
    let call: Promise<void>;
    try {
      // Posted now, before the caller goes on.
      call = this.#writer!(rows);
    } catch (e) {
      call = Promise.reject(e);
    }
    const tracked = call.then(() => undefined, () => undefined);
    this.#handedOver.add(tracked);
    void tracked.then(() => this.#handedOver.delete(tracked));
    return call;
  }

  /** Queues rows made elsewhere (another thread's recorder, AuditWriter); resolves once they are all committed. */
  recordRows(rows: readonly AuditRow[]): Promise<void> {
    // One waiter for the whole batch (not a promise per row): they are committed together.
    return rows.length ? this.#queue(rows) : Promise.resolve();
  }

  #queue(rows: readonly AuditRow[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#waiting.push({ rows, resolve, reject });
      // setImmediate, not a microtask: every caller that is ready in this turn of the
      // event loop queues its row first, and they share the commit.
      this.#draining ??= new Promise<void>((done) => setImmediate(() => void this.#drain().finally(done)));
    });
  }

  /** Waits until every queued record is committed (or its commit failed). */
  async settle(): Promise<void> {
    while (this.#draining || this.#handedOver.size) await Promise.all([this.#draining, ...this.#handedOver]);
  }

  async #drain(): Promise<void> {
    try {
      while (this.#waiting.length) {
        // With a grouping time, the next commit waits for it (StoreOptions.auditGroupMs): more
        // rows share each commit, whose cost is the fsync, not the rows.
        // Only after a commit that several rows shared: one caller at a time (a client sending
        // its messages one by one) never waits.
        const wait = this.#lastRows > 1 ? this.#groupMs - (performance.now() - this.#lastCommit) : 0;
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        this.#lastCommit = performance.now();
        // Whole callers, up to MAX_BATCH rows (at least one caller).
        let take = 0;
        let count = 0;
        while (take < this.#waiting.length && (take === 0 || count + this.#waiting[take]!.rows.length <= MAX_BATCH)) count += this.#waiting[take++]!.rows.length;
        const batch = this.#waiting.splice(0, take);
        const rows = batch.length === 1 ? batch[0]!.rows : batch.flatMap((w) => w.rows);
        this.#lastRows = rows.length;
        try {
          // One statement is one transaction on both engines: on PostgreSQL a single
          // round trip (no BEGIN and COMMIT of their own).
          if (this.#writer) await this.#writer(rows as AuditRow[]);
          else if (rows.length <= this.#rowsPerStatement) await insertAuditRows(this.#engine, this.#engine.dialect, rows);
          else await this.#engine.transaction((tx) => insertAuditRows(tx, this.#engine.dialect, rows));
        } catch (e) {
          for (const w of batch) w.reject(e);
          continue;
        }
        for (const w of batch) w.resolve();
      }
    } finally {
      this.#draining = undefined;
    }
  }
}
