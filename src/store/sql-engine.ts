/**
 * The thin contract both database engines implement (style guide, "Store": a small
 * interface with thin SQLite and PostgreSQL classes). All SQL the store runs is
 * written once, in portable SQL with `?` placeholders; an engine only executes it.
 *
 * Why no query builder (kysely): the store runs about thirty fixed statements that
 * are identical on both engines once placeholders and two column types are mapped.
 * A builder would add an abstraction for no portability we do not already have.
 */

export type SqlValue = string | number | bigint | Uint8Array | null;
export type Row = Record<string, SqlValue>;

export type Dialect = 'sqlite' | 'postgres';

export interface SqlExecutor {
  /** Every row of a query. */
  all(sql: string, params?: readonly SqlValue[]): Promise<Row[]>;
  /** Runs a statement; returns the number of rows it changed. */
  run(sql: string, params?: readonly SqlValue[]): Promise<number>;
}

export interface SqlEngine extends SqlExecutor {
  readonly dialect: Dialect;
  /**
   * Runs `fn` in one transaction: all its writes land or none does (a crash midway
   * loses nothing already committed and leaves nothing half-written). Writers from
   * other processes wait rather than fail.
   */
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** `engine` for a borrower: every statement goes through it, but close() leaves it open (its owner closes it). */
export function lendEngine(engine: SqlEngine): SqlEngine {
  return {
    dialect: engine.dialect,
    all: (sql, params) => engine.all(sql, params),
    run: (sql, params) => engine.run(sql, params),
    transaction: (fn) => engine.transaction(fn),
    close: async () => {},
  };
}
