/**
 * The shared engine: PostgreSQL through `pg` (node-postgres: the most used driver,
 * pure JavaScript, a handful of small dependencies). Several gateway nodes share one
 * database; each transaction runs on one pooled connection.
 *
 * Store SQL is written with `?` placeholders (see sql-engine.ts); they become $1..$n
 * here. Statements never contain a literal question mark.
 */
import { createHash } from 'node:crypto';
import pg from 'pg';
import type { Row, SqlEngine, SqlExecutor, SqlValue } from './sql-engine.ts';

export interface PostgresOptions {
  /** Connections in the pool. */
  max?: number;
}

function numbered(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

/**
 * The store runs a few dozen statements over and over: as named (prepared)
 * statements the server parses and plans each once per connection instead of on
 * every call (the key lookup's join costs more to plan than to run: server CPU per
 * audited lookup fell from 98 to 27 µs in bench/store-keys.ts). Schema statements
 * statements with more than 64 parameters (batched audit rows, long IN lists), and
 * statements that select `*` (a migration run by another node could change their
 * result shape under a prepared plan: "cached plan must not change result type")
 * stay unnamed, and key lookups pad their IN lists to powers of two, so the names
 * stay few per connection.
 */
const prepared = new Map<string, { name: string; text: string } | null>();
function statement(sql: string): { name?: string; text: string } {
  let p = prepared.get(sql);
  if (p === undefined) {
    p = /^\s*(SELECT|INSERT|UPDATE|DELETE)\b/i.test(sql) && !/(^|[\s,.])\*\s*(,|FROM)/i.test(sql) && (sql.match(/\?/g)?.length ?? 0) <= 64 && prepared.size < 1_000
      ? { name: `kakitome_${createHash('sha256').update(sql).digest('hex').slice(0, 24)}`, text: numbered(sql) }
      : null;
    if (p) prepared.set(sql, p);
  }
  return p ?? { text: numbered(sql) };
}

function toParams(params: readonly SqlValue[]): unknown[] {
  // pg sends Buffers as bytea; a bare Uint8Array would be sent as an array literal.
  return params.map((p) => (p instanceof Uint8Array && !Buffer.isBuffer(p) ? Buffer.from(p) : p));
}

function fromRow(row: Record<string, unknown>): Row {
  return row as Row;
}

class PostgresExecutor implements SqlExecutor {
  readonly client: pg.Pool | pg.PoolClient;
  constructor(client: pg.Pool | pg.PoolClient) {
    this.client = client;
  }
  async all(sql: string, params: readonly SqlValue[] = []): Promise<Row[]> {
    const r = await this.client.query({ ...statement(sql), values: toParams(params) });
    return r.rows.map(fromRow);
  }
  async run(sql: string, params: readonly SqlValue[] = []): Promise<number> {
    const r = await this.client.query({ ...statement(sql), values: toParams(params) });
    return r.rowCount ?? 0;
  }
}

class PostgresEngine extends PostgresExecutor implements SqlEngine {
  readonly dialect = 'postgres' as const;
  readonly pool: pg.Pool;
  constructor(pool: pg.Pool) {
    super(pool);
    this.pool = pool;
  }

  async transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    // pg-pool takes its own 'error' listener off a client it hands out: the server going away
    // between two statements of the transaction (a restart, pg_terminate_backend, a failover)
    // was an 'error' event nobody heard, which ended the thread (the batch thread, the
    // gateway's). Heard here, the transaction's next statement fails instead, and the broken
    // client is dropped at release rather than pooled again.
    let lost: Error | undefined;
    const onError = (e: Error) => (lost = e);
    client.on('error', onError);
    try {
      await client.query('BEGIN');
      const out = await fn(new PostgresExecutor(client));
      await client.query('COMMIT');
      return out;
    } catch (e) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw e;
    } finally {
      client.off('error', onError);
      client.release(lost);
    }
  }

  #closed = false;

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.pool.end();
  }
}

export function openPostgresEngine(url: string, options: PostgresOptions = {}): SqlEngine {
  const pool = new pg.Pool({ connectionString: url, max: options.max ?? 4 });
  // An idle client that loses its server must not crash the process.
  pool.on('error', () => undefined);
  return new PostgresEngine(pool);
}
