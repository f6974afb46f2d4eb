/**
 * The two store engines a test runs against: SQLite in a temporary directory and a
 * throwaway PostgreSQL on loopback (postgres-server.ts). `url` is what
 * KAKITOME_DATABASE_URL or openEngine would be given for the same database.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteEngine } from '../../src/store/sqlite-engine.ts';
import { openPostgresEngine } from '../../src/store/postgres-engine.ts';
import type { SqlEngine } from '../../src/store/sql-engine.ts';
import { startPostgres, type PostgresServer } from './postgres-server.ts';

export interface EngineFactory {
  name: 'sqlite' | 'postgres';
  setup(): Promise<void>;
  make(): SqlEngine;
  url(): string;
  teardown(): Promise<void>;
}

export function engineFactories(prefix: string): EngineFactory[] {
  let pg: PostgresServer | undefined;
  let sqliteDir = '';
  return [
    {
      name: 'sqlite',
      async setup() { sqliteDir = mkdtempSync(join(tmpdir(), prefix)); },
      make: () => openSqliteEngine(join(sqliteDir, 'kakitome.db')),
      url: () => join(sqliteDir, 'kakitome.db'),
      async teardown() { rmSync(sqliteDir, { recursive: true, force: true }); },
    },
    {
      name: 'postgres',
      async setup() { pg = await startPostgres(); },
      make: () => openPostgresEngine(pg!.url),
      url: () => pg!.url,
      async teardown() { pg?.stop(); },
    },
  ];
}
