/**
 * An idle node's poll of the batch queue (src/store/batch-queue.ts) is a plain
 * read: it takes no write lock. On SQLite a serving thread polls while the
 * coordinator commits audit rows; a claim that began its transaction (BEGIN
 * IMMEDIATE) with nothing to claim waited in SQLite's busy handler, its event loop
 * stalled, or failed with "database is locked" once the busy timeout passed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { DatabaseSync } from 'node:sqlite';
import { masterKeyFromBytes } from '../../src/keys/master-key.ts';
import { Store } from '../../src/store/store.ts';
import { BatchQueue } from '../../src/store/batch-queue.ts';
import { openSqliteEngine } from '../../src/store/sqlite-engine.ts';

test('polling an empty queue while another connection holds the write lock: no work, no wait, no failure', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kakitome-queue-idle-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const db = join(dir, 'kakitome.db');
  // A busy timeout long beside what five polls take on a loaded machine: one poll that took the lock would exceed the bound alone.
  const store = await Store.open(openSqliteEngine(db, { busyTimeoutMs: 2000 }), { masterKey: masterKeyFromBytes(randomBytes(32)) });
  t.after(() => store.close());
  const writer = new DatabaseSync(db);
  t.after(() => writer.close());
  writer.exec('BEGIN IMMEDIATE');
  try {
    const queue = new BatchQueue(store.engine);
    const started = performance.now();
    for (let i = 0; i < 5; i++) assert.equal(await queue.claim('idle-node', 60_000), undefined);
    // Each claim that took the lock would have waited the busy timeout (2 s) and failed.
    assert.ok(performance.now() - started < 2000, `five idle polls took ${performance.now() - started} ms`);
  } finally {
    writer.exec('ROLLBACK');
  }
});
