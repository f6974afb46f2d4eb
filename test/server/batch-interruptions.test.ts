/**
 * Two bounds on how a batch worker (src/server/batches/batch-worker.ts) counts a
 * chunk's tries:
 * - a chunk whose own stored part meets an error the service reads as passing
 *   trouble every time (EIO from its file: a bad sector) is retried only
 *   maxInterruptions times on a node, then completed with its messages failed, the
 *   reason naming the system's code; before, it was given back for ever, its attempt
 *   refunded each time, and the batch never finished;
 * - a chunk given back by a clean stop (SIGTERM: BatchWorker.stop) keeps its attempt:
 *   before, each clean restart spent one of its MAX_ATTEMPTS, so five rolling restarts
 *   over one large chunk failed its messages. Nothing is signed twice: one audit row per
 *   message, every message signed once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { initCertificateAuthority } from '../../src/ca/init-certificate-authority.ts';
import { issueMailboxCertificate } from '../../src/ca/issue-mailbox-certificate.ts';
import { masterKeyFromBytes } from '../../src/keys/master-key.ts';
import { Store } from '../../src/store/store.ts';
import { openSqliteEngine } from '../../src/store/sqlite-engine.ts';
import { TenantDirectory } from '../../src/store/tenant-directory.ts';
import { BatchDirectory } from '../../src/store/batch-directory.ts';
import { openBatchBlobs, type BatchBlobs } from '../../src/store/batch-blobs.ts';
import { DEFAULT_BATCH_CONFIG, type BatchConfig } from '../../src/server/config.ts';
import { Metrics } from '../../src/server/metrics.ts';
import { ServiceCache } from '../../src/server/service-cache.ts';
import type { ServiceContext } from '../../src/server/service-context.ts';
import { BatchWorker } from '../../src/server/batches/batch-worker.ts';
import { storeUploadChunks } from '../../src/server/batches/store-upload-chunks.ts';

const message = (i: number) => `From: Acme News <news@acme.example>\r\nTo: reader${i}@example.net\r\nSubject: Statement ${i}\r\nMessage-ID: <${i}@acme.example>\r\n\r\nStatement ${i}.\r\n`;

interface World {
  store: Store;
  tenants: TenantDirectory;
  directory: BatchDirectory;
  blobs: BatchBlobs;
  id: string;
  total: number;
  context(batch: BatchConfig, log: (e: Record<string, unknown>) => void): ServiceContext;
  attempts(): Promise<number[]>;
  auditRows(): Promise<number>;
}

/** A store with a tenant, its signing identity and one batch of `total` messages in one chunk. */
async function world(t: { after(fn: () => unknown): void }, total: number): Promise<World> {
  const dir = mkdtempSync(join(tmpdir(), 'kakitome-batch-interruptions-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const store = await Store.open(openSqliteEngine(join(dir, 'store.db')), { masterKey: masterKeyFromBytes(randomBytes(32)), actor: 'tester' });
  t.after(() => store.close());
  await initCertificateAuthority(store, { name: 'Interruptions Test CA', keyType: 'p256' });
  await issueMailboxCertificate(store, { email: 'news@acme.example', keyType: 'p256' });
  const tenants = new TenantDirectory(store);
  await tenants.addTenant('acme', ['acme.example']);
  await tenants.registerIdentities('acme', ['news@acme.example']);
  const keyId = (await tenants.createApiKey('acme', { scopes: ['sign'] })).key.id;
  const blobs = await openBatchBlobs(store.engine);
  const directory = new BatchDirectory(store, blobs);
  const id = await directory.begin({ tenant: 'acme', keyId, mediaType: 'application/mbox', options: {}, leaseMs: 60_000 });
  const mbox = Array.from({ length: total }, (_, i) => `From sender-${i}@acme.example Sun Dec  6 10:00:00 2026\n${message(i)}\n`).join('');
  const stored = await storeUploadChunks(directory, { batchId: id, contentType: 'application/mbox', maxMessageBytes: 1 << 20 }, Readable.from([Buffer.from(mbox)]), { ...DEFAULT_BATCH_CONFIG, chunkMessages: total });
  assert.equal(stored.chunks, 1);
  await directory.finishUpload(id, { ...stored, receivedBytes: mbox.length, fingerprint: 'test' });
  const engine = store.engine as unknown as { all(sql: string, p: unknown[]): Promise<Array<Record<string, unknown>>> };
  return {
    store, tenants, directory, blobs, id, total,
    context: (batch, log) => ({
      store, tenants, config: { batch } as ServiceContext['config'], metrics: new Metrics(), version: 'test', cache: new ServiceCache(store, tenants),
      rateLimiter: { take: () => ({ allowed: true, retryAfter: 0 }) }, shuttingDown: () => false, log: (e) => log(e as Record<string, unknown>),
    }),
    attempts: async () => (await engine.all('SELECT attempts FROM batch_chunks WHERE batch_id = ?', [id])).map((r) => Number(r.attempts)),
    auditRows: async () => Number((await engine.all("SELECT COUNT(*) AS n FROM audit_log WHERE action = 'api.batches.sign'", []))[0]!.n),
  };
}

async function until(what: string, check: () => Promise<boolean>, ms: number): Promise<void> {
  for (const end = Date.now() + ms; Date.now() < end;) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`${what}: not within ${ms} ms`);
}

test('a chunk whose stored part gives EIO every time is failed after maxInterruptions, naming EIO, not retried for ever', async (t) => {
  const w = await world(t, 3);
  // The chunk's input file on a bad sector: every read of it fails as the disk reports it.
  const files = w.blobs;
  const blobs: BatchBlobs = {
    ...files,
    kind: files.kind,
    get: async (batchId, name) => {
      if (name.startsWith('in-')) throw Object.assign(new Error(`EIO: i/o error, read '${name}'`), { code: 'EIO', errno: -5, syscall: 'read' });
      return files.get(batchId, name);
    },
    put: (batchId, name, bytes) => files.put(batchId, name, bytes),
    read: (batchId, name) => files.read(batchId, name),
    remove: (batchId, name) => files.remove(batchId, name),
    removeBatch: (batchId) => files.removeBatch(batchId),
    batchIds: () => files.batchIds(),
  };
  const logs: Array<Record<string, unknown>> = [];
  const worker = new BatchWorker(w.context({ ...DEFAULT_BATCH_CONFIG, pollMs: 50, workers: 1, maxInterruptions: 5 }, (e) => logs.push(e)), blobs);
  worker.start();
  t.after(() => worker.stop());
  await until('the batch finished', async () => (await w.directory.find('acme', w.id))?.state === 'done', 30_000);
  const view = (await w.directory.find('acme', w.id))!;
  assert.deepEqual([view.signed, view.failed], [0, w.total]);
  const failures = await w.directory.failures(w.id, 0, 100);
  assert.equal(failures.length, w.total);
  for (const f of failures) {
    assert.equal(f.code, 'INTERNAL');
    assert.match(f.reason, /EIO 5 times in a row/);
  }
  const released = logs.filter((l) => l.event === 'released');
  assert.equal(released.length, 4, 'given back four times, failed at the fifth interruption');
  assert.ok(released.every((r) => r.serviceTrouble === 'EIO' && r.attemptSpent === false));
  assert.deepEqual(released.map((r) => r.retryMs), [1000, 1000, 1000, 2000], 'the node\'s back-off, then the chunk\'s own, which doubles');
  assert.ok(logs.some((l) => l.event === 'failed' && l.serviceTrouble === 'EIO' && l.interruptions === 5));
});

test('a chunk given back by a clean stop keeps its attempt; signed once by the next worker', async (t) => {
  const w = await world(t, 40);
  const batch = { ...DEFAULT_BATCH_CONFIG, pollMs: 50, workers: 1 };
  for (let stop = 1; stop <= 6; stop++) {
    const logs: Array<Record<string, unknown>> = [];
    let worker: BatchWorker | undefined;
    // Stopped as soon as it claims the chunk: the chunk stops at its next message and is given back.
    const stopped = new Promise<void>((resolve) => {
      worker = new BatchWorker(w.context(batch, (e) => {
        logs.push(e);
        if (e.event === 'claimed') void worker!.stop().then(resolve);
      }), w.blobs);
    });
    worker!.start();
    await stopped;
    const released = logs.filter((l) => l.event === 'released');
    assert.equal(released.length, 1, `stop ${stop}: ${JSON.stringify(logs.filter((l) => l.msg === 'batch chunk'))}`);
    assert.equal(released[0]!.attemptSpent, false);
    assert.deepEqual(await w.attempts(), [0], `stop ${stop}: no attempt spent`);
  }
  const logs: Array<Record<string, unknown>> = [];
  const worker = new BatchWorker(w.context(batch, (e) => logs.push(e)), w.blobs);
  worker.start();
  t.after(() => worker.stop());
  await until('the batch finished', async () => (await w.directory.find('acme', w.id))?.state === 'done', 30_000);
  const view = (await w.directory.find('acme', w.id))!;
  assert.deepEqual([view.signed, view.failed], [w.total, 0], 'six clean stops failed no message');
  assert.equal(logs.find((l) => l.event === 'claimed')?.attempt, 1);
  assert.equal(await w.auditRows(), w.total, 'one audit row per message: nothing signed twice');
});
