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
import { DatabaseSync } from 'node:sqlite';
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

test('a write waiting for another connection\'s lock waits without stopping the event loop: reads and timers go on, and it commits once the lock is free', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kakitome-sqlite-engine-'));
  const path = join(dir, 'store.db');
  const engine = openSqliteEngine(path, { busyTimeoutMs: 4000 });
  // Another process's write transaction, as `sqlite3 store.db` or a second kakitome holds it.
  const other = new DatabaseSync(path, { timeout: 0 });
  try {
    await engine.run('CREATE TABLE t (n INTEGER)');
    other.exec('BEGIN IMMEDIATE');
    const started = performance.now();
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 10);
    const write = engine.transaction(async (tx) => tx.run('INSERT INTO t (n) VALUES (?)', [1]));
    // The lock is given up 300 ms on, by a timer of this thread: before, the event loop sat in
    // node:sqlite's busy wait (4 s), the timer could not run, and the write failed SQLITE_BUSY.
    const release = new Promise<void>((resolve) => setTimeout(() => { other.exec('COMMIT'); resolve(); }, 300));
    const read = await engine.all('SELECT COUNT(*) AS n FROM t');
    const readMs = performance.now() - started;
    await release;
    assert.equal(await write, 1);
    const writeMs = performance.now() - started;
    clearInterval(ticker);
    assert.equal(Number(read[0]!.n), 0);
    assert.ok(readMs < 250, `a read waited ${Math.round(readMs)} ms for a write waiting on another connection's lock`);
    assert.ok(ticks >= 10, `timers ran ${ticks} times while the write waited`);
    assert.ok(writeMs < 3000, `the write committed ${Math.round(writeMs)} ms on, once the lock was free`);
    // And past the busy timeout it fails, as before, with SQLite's SQLITE_BUSY.
    other.exec('BEGIN IMMEDIATE');
    const short = openSqliteEngine(path, { busyTimeoutMs: 200 });
    await assert.rejects(short.transaction(async (tx) => tx.run('INSERT INTO t (n) VALUES (?)', [2])), (e: { errcode?: number }) => (Number(e.errcode) & 0xff) === 5);
    other.exec('ROLLBACK');
    await short.close();
  } finally {
    other.close();
    await engine.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
