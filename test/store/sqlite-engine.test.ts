/**
 * The SQLite engine's statistics refresh (optimizeSqlite) sets the connection's busy
 * timeout to 0 so that it never waits for another process's lock; no other
 * statement of the connection may run meanwhile, or a store write would fail at once
 * with SQLITE_BUSY where it waits up to the busy timeout.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteEngine, optimizeSqlite } from '../../src/store/sqlite-engine.ts';

test('optimizeSqlite: the store\'s other statements keep their busy timeout while it runs', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kakitome-sqlite-engine-'));
  const engine = openSqliteEngine(join(dir, 'store.db'), { busyTimeoutMs: 5000 });
  try {
    const seen: number[] = [];
    const others = (async () => {
      for (let i = 0; i < 10; i++) seen.push(Number((await engine.all('PRAGMA busy_timeout'))[0]!.timeout));
    })();
    await Promise.all([optimizeSqlite(engine), optimizeSqlite(engine, { allTables: true }), others]);
    assert.deepEqual(seen, Array(10).fill(5000));
    assert.equal(Number((await engine.all('PRAGMA busy_timeout'))[0]!.timeout), 5000, 'restored');
  } finally {
    await engine.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
