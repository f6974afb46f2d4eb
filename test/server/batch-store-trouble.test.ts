/**
 * A store that is unavailable while a chunk is signed (here: another connection
 * holds SQLite's write lock, so the chunk's completion and its release meet
 * SQLITE_BUSY) spends none of the chunk's attempts (src/server/batches/batch-worker.ts):
 * more outages than MAX_ATTEMPTS in a row still end with every message signed, the
 * release that failed too is tried again until the store answers, and the trouble
 * shows in the counters and in the worker's watch (what /healthz reports).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { DatabaseSync } from 'node:sqlite';
import { initCertificateAuthority } from '../../src/ca/init-certificate-authority.ts';
import { issueMailboxCertificate } from '../../src/ca/issue-mailbox-certificate.ts';
import { masterKeyFromBytes } from '../../src/keys/master-key.ts';
import { Store } from '../../src/store/store.ts';
import { openSqliteEngine } from '../../src/store/sqlite-engine.ts';
import { TenantDirectory } from '../../src/store/tenant-directory.ts';
import { BatchDirectory } from '../../src/store/batch-directory.ts';
import { openBatchBlobs } from '../../src/store/batch-blobs.ts';
import { DEFAULT_BATCH_CONFIG } from '../../src/server/config.ts';
import { Metrics } from '../../src/server/metrics.ts';
import { ServiceCache } from '../../src/server/service-cache.ts';
import type { ServiceContext } from '../../src/server/service-context.ts';
import { BatchWorker, MAX_ATTEMPTS } from '../../src/server/batches/batch-worker.ts';
import { storeUploadChunks } from '../../src/server/batches/store-upload-chunks.ts';

const message = (i: number) => `From: Acme News <news@acme.example>\r\nTo: reader${i}@example.net\r\nSubject: Statement ${i}\r\nMessage-ID: <${i}@acme.example>\r\n\r\nStatement ${i}.\r\n`;

test(`a chunk interrupted by an unavailable store ${MAX_ATTEMPTS + 1} times in a row is signed in the end, not failed`, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kakitome-batch-trouble-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'store.db');
  // A short busy timeout: a locked store fails a write in 150 ms rather than 10 s (node:sqlite waits synchronously).
  const store = await Store.open(openSqliteEngine(path, { busyTimeoutMs: 150 }), { masterKey: masterKeyFromBytes(randomBytes(32)), actor: 'tester' });
  t.after(() => store.close());
  await initCertificateAuthority(store, { name: 'Trouble Test CA', keyType: 'p256' });
  await issueMailboxCertificate(store, { email: 'news@acme.example', keyType: 'p256' });
  const tenants = new TenantDirectory(store);
  await tenants.addTenant('acme', ['acme.example']);
  await tenants.registerIdentities('acme', ['news@acme.example']);
  const keyId = (await tenants.createApiKey('acme', { scopes: ['sign'] })).key.id;

  const batch = { ...DEFAULT_BATCH_CONFIG, chunkMessages: 10, pollMs: 50, workers: 1 };
  const blobs = await openBatchBlobs(store.engine);
  const directory = new BatchDirectory(store, blobs);
  const id = await directory.begin({ tenant: 'acme', keyId, mediaType: 'application/mbox', options: {}, leaseMs: 60_000 });
  const total = 3;
  const mbox = Array.from({ length: total }, (_, i) => `From sender-${i}@acme.example Sun Dec  6 10:00:00 2026\n${message(i)}\n`).join('');
  const stored = await storeUploadChunks(directory, { batchId: id, contentType: 'application/mbox', maxMessageBytes: 1 << 20 }, Readable.from([Buffer.from(mbox)]), batch);
  assert.equal(stored.chunks, 1);
  await directory.finishUpload(id, { ...stored, receivedBytes: mbox.length, fingerprint: 'test' });

  // Another connection to the same file: while it holds the write lock, the worker's writes fail with SQLITE_BUSY.
  const other = new DatabaseSync(path, { timeout: 0 });
  t.after(() => other.close());
  let outages = 0;
  let locked = false;
  const watched: Array<string | undefined> = [];
  const logs: Array<Record<string, unknown>> = [];
  const metrics = new Metrics();
  const ctx: ServiceContext = {
    store, tenants, config: { batch } as ServiceContext['config'], metrics, version: 'test', cache: new ServiceCache(store, tenants),
    rateLimiter: { take: () => ({ allowed: true, retryAfter: 0 }) }, shuttingDown: () => false,
    log: (e) => {
      logs.push(e);
      // Taken as the chunk is claimed (synchronously: before a message is signed), for its first MAX_ATTEMPTS + 1 claims.
      if (e.event === 'claimed' && outages <= MAX_ATTEMPTS) {
        other.exec('BEGIN IMMEDIATE');
        locked = true;
        outages++;
      }
      // Given back after the first release met the lock too: the worker tries the release again, later.
      if (e.event === 'released' && locked) {
        setTimeout(() => {
          other.exec('ROLLBACK');
          locked = false;
        }, 400);
      }
    },
  };
  const worker = new BatchWorker(ctx, blobs, (trouble) => watched.push(trouble));
  worker.start();
  t.after(() => worker.stop());
  const deadline = Date.now() + 90_000;
  let view = await directory.find('acme', id);
  while (view?.state !== 'done' && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    if (!locked) view = await directory.find('acme', id);
  }
  const released = logs.filter((l) => l.event === 'released');
  assert.equal(outages, MAX_ATTEMPTS + 1);
  assert.equal(view?.state, 'done', JSON.stringify(released));
  assert.deepEqual([view.signed, view.failed], [total, 0], 'every message signed, none failed');
  assert.equal(released.length, MAX_ATTEMPTS + 1);
  for (const r of released) {
    assert.equal(r.serviceTrouble, 'SQLITE_BUSY', JSON.stringify(r));
    assert.equal(r.attemptSpent, false);
    assert.equal(r.attempt, 1, 'each claim was the chunk\'s first attempt: none was spent');
  }
  const attempts = (store.engine as unknown as { all(sql: string, p: unknown[]): Promise<Array<{ attempts: number }>> });
  assert.deepEqual((await attempts.all('SELECT attempts FROM batch_chunks WHERE batch_id = ?', [id])).map((r) => Number(r.attempts)), [1]);
  // Seen, counted (each outage's given-back chunk and its failed release at least), and over.
  assert.ok(metrics.batch.storeTrouble >= 2 * (MAX_ATTEMPTS + 1), `store trouble counted ${metrics.batch.storeTrouble}`);
  assert.equal(metrics.batch.waitingForStore, 0);
  assert.equal(watched.at(0), 'SQLITE_BUSY');
  assert.equal(watched.at(-1), undefined);
  assert.ok(logs.some((l) => l.msg === 'batch store available'));
});
