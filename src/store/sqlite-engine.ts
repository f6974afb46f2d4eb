/**
 * The embedded engine: one SQLite file (node:sqlite, no native add-on to build).
 *
 * - WAL journal: readers never block the writer and a crash never corrupts the file
 *   (https://sqlite.org/wal.html); synchronous=FULL so a committed transaction
 *   survives power loss, which matters for a store that holds the only copy of keys.
 * - Writers from several processes: BEGIN IMMEDIATE takes the write lock up front
 *   and busy_timeout makes a second process wait for it instead of failing.
 * - node:sqlite is synchronous while store code is async, so transactions on one
 *   connection are serialised by a promise queue: two async callers must never
 *   interleave statements inside one BEGIN...COMMIT.
 * - Statistics for the query planner (sqlite_stat1), kept as SQLite advises
 *   (https://sqlite.org/lang_analyze.html, https://sqlite.org/pragma.html#pragma_optimize):
 *   `PRAGMA optimize=0x10002` once the schema is migrated (every table that grew or
 *   shrank tenfold since its last ANALYZE, and every new index: migrations.ts),
 *   `PRAGMA optimize` every hour for a long-lived connection and when the
 *   connection closes (the tables this connection queried). Each is a no-op unless
 *   a table changed that much, never waits for another process's lock (optimizeSqlite),
 *   and bounds its own ANALYZE (analysis_limit), so the
 *   statistics of a long-running gateway's store stay within tenfold of its tables.
 *   (The indexes, migration 22, are shaped so the plans hold without them too.)
 */
import { DatabaseSync, type SQLInputValue, type StatementSync } from 'node:sqlite';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Row, SqlEngine, SqlExecutor, SqlValue } from './sql-engine.ts';

export interface SqliteOptions {
  /** Milliseconds a writer waits for another process's lock. */
  busyTimeoutMs?: number;
}

/**
 * Creates `path` empty with mode 0600 unless it exists: SQLite would create it with
 * the process umask (0644 by default) and gives its -wal and -shm files the
 * database's mode, so sealed keys, certificates and the audit log would be readable
 * by every local account. An existing file keeps its mode.
 */
export function createPrivateFile(path: string): void {
  try {
    closeSync(openSync(path, 'wx', 0o600));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
}

/** How long a connection waits for another process's lock before SQLITE_BUSY. */
export const BUSY_TIMEOUT_MS = 10_000;

export function openSqliteEngine(path: string, options: SqliteOptions = {}): SqlEngine {
  if (path !== ':memory:') {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    createPrivateFile(path);
  }
  const db = new DatabaseSync(path, { timeout: options.busyTimeoutMs ?? BUSY_TIMEOUT_MS });
  db.exec('PRAGMA journal_mode = WAL');
  db.exec('PRAGMA synchronous = FULL');
  db.exec('PRAGMA foreign_keys = ON');
  return new SqliteEngine(db, new StatementCache(db));
}

const toInput = (params: readonly SqlValue[]): SQLInputValue[] => params as SQLInputValue[];

/** How often a long-lived connection refreshes its statistics (SQLite suggests hourly to daily). */
const OPTIMIZE_EVERY_MS = 3_600_000;

/**
 * Refreshes the planner's statistics where a table changed tenfold (`allTables`:
 * every table, as after a migration; otherwise the ones this connection queried).
 * Best effort, and never waiting for a lock: node:sqlite waits synchronously, so
 * waiting out another process's write (busy_timeout) would stall this process's
 * event loop for statistics. A database locked at that moment, or opened
 * read-only, keeps its statistics until the next time. The busy timeout is 0 only
 * within one synchronous run, once the connection's turn came: no other statement
 * of the connection can run meanwhile (a store write then failed at once with
 * SQLITE_BUSY where it would have waited for another process's lock).
 */
export async function optimizeSqlite(engine: SqlExecutor, options: { allTables?: boolean } = {}): Promise<void> {
  if (!(engine instanceof SqliteExecutor)) return;
  await engine.all('SELECT 1'); // the connection's turn: never in the middle of another caller's transaction
  const db = engine.db;
  const timeout = Number((db.prepare('PRAGMA busy_timeout').get() as { timeout?: number } | undefined)?.timeout ?? 0);
  db.exec('PRAGMA busy_timeout = 0');
  try {
    db.exec(options.allTables ? 'PRAGMA optimize=0x10002' : 'PRAGMA optimize');
  } catch (e) {
    // SQLITE_BUSY, SQLITE_LOCKED, SQLITE_READONLY (primary codes, extended ones share the low byte).
    if (![5, 6, 8].includes(Number((e as { errcode?: number }).errcode) & 0xff)) throw e;
  } finally {
    db.exec(`PRAGMA busy_timeout = ${Math.trunc(timeout)}`);
  }
}

/**
 * Prepared statements by SQL text: preparing costs about as much as running a
 * small indexed query (56,000 prepare+run/s against 158,000 runs/s of a prepared
 * one), and the store runs the same few dozen statements over and over. Bounded:
 * statements with generated IN lists are many, so the cache is emptied when full.
 */
class StatementCache {
  readonly #db: DatabaseSync;
  readonly #statements = new Map<string, StatementSync>();
  constructor(db: DatabaseSync) {
    this.#db = db;
  }
  get(sql: string): StatementSync {
    // A pragma may do its work when prepared (PRAGMA optimize picks its tables then): never kept.
    if (/^\s*PRAGMA\b/i.test(sql)) return this.#db.prepare(sql);
    let st = this.#statements.get(sql);
    if (!st) {
      if (this.#statements.size >= 256) this.#statements.clear();
      st = this.#db.prepare(sql);
      this.#statements.set(sql, st);
    }
    return st;
  }
}

class SqliteExecutor implements SqlExecutor {
  readonly db: DatabaseSync;
  readonly statements: StatementCache;
  constructor(db: DatabaseSync, statements: StatementCache) {
    this.db = db;
    this.statements = statements;
  }
  async all(sql: string, params: readonly SqlValue[] = []): Promise<Row[]> {
    return this.statements.get(sql).all(...toInput(params)) as Row[];
  }
  async run(sql: string, params: readonly SqlValue[] = []): Promise<number> {
    return Number(this.statements.get(sql).run(...toInput(params)).changes);
  }
}

class SqliteEngine extends SqliteExecutor implements SqlEngine {
  readonly dialect = 'sqlite' as const;
  #queue: Promise<unknown> = Promise.resolve();
  readonly #optimizer = setInterval(() => void optimizeSqlite(this).catch(() => undefined), OPTIMIZE_EVERY_MS).unref();

  override async all(sql: string, params: readonly SqlValue[] = []): Promise<Row[]> {
    await this.#queue; // never read in the middle of another caller's transaction
    return super.all(sql, params);
  }
  override async run(sql: string, params: readonly SqlValue[] = []): Promise<number> {
    return this.transaction((tx) => tx.run(sql, params));
  }

  /**
   * BEGIN IMMEDIATE waits for another process's write lock here, between turns of the
   * event loop, not in node:sqlite: its busy timeout waits synchronously, and a store
   * locked by another process (a second kakitome, `sqlite3` holding a write) stopped
   * the whole thread for up to the timeout (10 s) on every write: /healthz, every
   * request and message of the thread waited, and the service could not even answer
   * 503. A try that finds the lock taken gives the connection back to the queue, so
   * the connection's reads (and writes that then find the lock free) go on, and tries
   * again after 1, 2, 4... up to 50 ms, until the connection's busy timeout has passed;
   * then it fails with SQLite's SQLITE_BUSY, as before.
   */
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    const tx = new SqliteExecutor(this.db, this.statements);
    let deadline: number | undefined;
    const attempt = (pause: number): Promise<T> => {
      const job = this.#queue.then(async (): Promise<{ out: T } | undefined> => {
        deadline ??= performance.now() + this.#busyTimeoutMs();
        if (!this.#beginAtOnce(performance.now() >= deadline)) return undefined;
        try {
          const out = await fn(tx);
          this.db.exec('COMMIT');
          return { out };
        } catch (e) {
          if (this.db.isTransaction) this.db.exec('ROLLBACK');
          throw e;
        }
      });
      this.#queue = job.catch(() => undefined);
      return job.then(async (done) => {
        if (done) return done.out;
        await new Promise((resolve) => setTimeout(resolve, pause));
        return attempt(Math.min(50, pause * 2));
      });
    };
    return attempt(1);
  }

  /** The connection's busy timeout (PRAGMA busy_timeout), read once. */
  #busyMs: number | undefined;
  #busyTimeoutMs(): number {
    this.#busyMs ??= Number((this.db.prepare('PRAGMA busy_timeout').get() as { timeout?: number } | undefined)?.timeout ?? 0);
    return this.#busyMs;
  }

  /**
   * BEGIN IMMEDIATE without waiting: false when another connection holds the write
   * lock (SQLITE_BUSY), unless `last`, which throws it. The connection's busy timeout
   * is 0 only for this statement, within one synchronous run.
   */
  #beginAtOnce(last: boolean): boolean {
    const timeout = this.#busyTimeoutMs();
    this.db.exec('PRAGMA busy_timeout = 0');
    try {
      this.db.exec('BEGIN IMMEDIATE');
      return true;
    } catch (e) {
      if (last || (Number((e as { errcode?: number }).errcode) & 0xff) !== 5) throw e;
      return false;
    } finally {
      this.db.exec(`PRAGMA busy_timeout = ${timeout}`);
    }
  }

  async close(): Promise<void> {
    clearInterval(this.#optimizer);
    await this.#queue;
    if (!this.db.isOpen) return;
    await optimizeSqlite(this);
    this.db.close();
  }
}
