/**
 * The shared engine: PostgreSQL through `pg` (node-postgres: the most used driver,
 * pure JavaScript, a handful of small dependencies). Several gateway nodes share one
 * database; each transaction runs on one pooled connection.
 *
 * Store SQL is written with `?` placeholders (see sql-engine.ts); they become $1..$n
 * here. Statements never contain a literal question mark.
 */
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
    const r = await this.client.query(numbered(sql), toParams(params));
    return r.rows.map(fromRow);
  }
  async run(sql: string, params: readonly SqlValue[] = []): Promise<number> {
    const r = await this.client.query(numbered(sql), toParams(params));
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
    try {
      await client.query('BEGIN');
      const out = await fn(new PostgresExecutor(client));
      await client.query('COMMIT');
      return out;
    } catch (e) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw e;
    } finally {
      client.release();
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
