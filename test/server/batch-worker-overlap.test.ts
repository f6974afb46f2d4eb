/**
 * A batch worker stores and completes one chunk while it claims and signs the next
 * (src/server/batches/batch-worker.ts): the output's write and sync no longer leave
 * the thread idle between chunks. Checked with a store whose writes of a chunk's
 * output wait until the next chunk's input has been read (so the next chunk was
 * claimed): a worker that stored before claiming again would wait for ever.
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
import { splitMbox } from '../../src/mime/mbox.ts';
import { Store } from '../../src/store/store.ts';
import { openSqliteEngine } from '../../src/store/sqlite-engine.ts';
import { TenantDirectory } from '../../src/store/tenant-directory.ts';
import { BatchDirectory } from '../../src/store/batch-directory.ts';
import { openBatchBlobs, type BatchBlobs } from '../../src/store/batch-blobs.ts';
import { DEFAULT_BATCH_CONFIG } from '../../src/server/config.ts';
import { Metrics } from '../../src/server/metrics.ts';
import { ServiceCache } from '../../src/server/service-cache.ts';
import type { ServiceContext } from '../../src/server/service-context.ts';
import { BatchWorker } from '../../src/server/batches/batch-worker.ts';
import { storeUploadChunks } from '../../src/server/batches/store-upload-chunks.ts';

const message = (i: number) => `From: Acme News <news@acme.example>\r\nTo: reader${i}@example.net\r\nSubject: Statement ${i}\r\nMessage-ID: <${i}@acme.example>\r\n\r\nStatement ${i}.\r\n`;

test('a chunk is stored and completed while the next one is claimed and signed; every message signed once, in order', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kakitome-batch-overlap-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const store = await Store.open(openSqliteEngine(join(dir, 'store.db')), { masterKey: masterKeyFromBytes(randomBytes(32)), actor: 'tester' });
  t.after(() => store.close());
  await initCertificateAuthority(store, { name: 'Overlap Test CA', keyType: 'p256' });
  await issueMailboxCertificate(store, { email: 'news@acme.example', keyType: 'p256' });
  const tenants = new TenantDirectory(store);
  await tenants.addTenant('acme', ['acme.example']);
  await tenants.registerIdentities('acme', ['news@acme.example']);
  const keyId = (await tenants.createApiKey('acme', { scopes: ['sign'] })).key.id;

  const batch = { ...DEFAULT_BATCH_CONFIG, chunkMessages: 4, pollMs: 50 };
  const files = await openBatchBlobs(store.engine);
  const directory = new BatchDirectory(store, files);
  const id = await directory.begin({ tenant: 'acme', keyId, mediaType: 'application/mbox', options: {}, leaseMs: 60_000 });
  const total = 12;
  const mbox = Array.from({ length: total }, (_, i) => `From sender-${i}@acme.example Sun Dec  6 10:00:00 2026\n${message(i)}\n`).join('');
  const stored = await storeUploadChunks(directory, { batchId: id, contentType: 'application/mbox', maxMessageBytes: 1 << 20 }, Readable.from([Buffer.from(mbox)]), batch);
  assert.equal(stored.chunks, 3);
  await directory.finishUpload(id, { ...stored, receivedBytes: mbox.length, fingerprint: 'test' });

  // Chunk N's output is written only once chunk N+1's input was read: by then the worker holds both.
  const inputsRead = new Set<number>();
  const waiting: Array<() => void> = [];
  let overlapped = 0;
  const blobs: BatchBlobs = {
    ...files,
    kind: files.kind,
    put: async (batchId, name, bytes) => {
      const seq = /^out-(\d+)-/.exec(name)?.[1];
      if (seq !== undefined && Number(seq) + 1 < stored.chunks) {
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`chunk ${seq}'s output waited for the next chunk's claim in vain`)), 10_000);
          const check = () => {
            if (!inputsRead.has(Number(seq) + 1)) return false;
            clearTimeout(timer);
            overlapped++;
            resolve();
            return true;
          };
          if (!check()) waiting.push(() => void check());
        });
      }
      return files.put(batchId, name, bytes);
    },
    get: async (batchId, name) => {
      const seq = /^in-(\d+)$/.exec(name)?.[1];
      if (seq !== undefined) inputsRead.add(Number(seq));
      for (const w of waiting.splice(0)) w();
      return files.get(batchId, name);
    },
    read: (batchId, name) => files.read(batchId, name),
    remove: (batchId, name) => files.remove(batchId, name),
    removeBatch: (batchId) => files.removeBatch(batchId),
    batchIds: () => files.batchIds(),
  };
  const logs: Array<Record<string, unknown>> = [];
  const ctx: ServiceContext = {
    store, tenants, config: { batch } as ServiceContext['config'], metrics: new Metrics(), version: 'test', cache: new ServiceCache(store, tenants),
    rateLimiter: { take: () => ({ allowed: true, retryAfter: 0 }) }, log: (e) => void logs.push(e), shuttingDown: () => false,
  };
  const worker = new BatchWorker(ctx, blobs);
  worker.start();
  t.after(() => worker.stop());
  const deadline = Date.now() + 20_000;
  let view = await directory.find('acme', id);
  while (view?.state !== 'done' && Date.now() < deadline && !logs.some((l) => l.event === 'released')) {
    await new Promise((r) => setTimeout(r, 50));
    view = await directory.find('acme', id);
  }
  assert.deepEqual(logs.filter((l) => l.event === 'released'), [], 'no chunk given back');
  assert.equal(view?.state, 'done');
  assert.equal(overlapped, stored.chunks - 1);
  assert.deepEqual([view.signed, view.failed], [total, 0]);
  const result: Buffer[] = [];
  for (const part of await directory.resultParts(id)) for await (const piece of files.read(id, part.output)) result.push(piece);
  const subjects: number[] = [];
  for await (const e of splitMbox((async function* () { yield Buffer.concat(result); })(), 1 << 20)) subjects.push(Number(/^Subject: Statement (\d+)\r$/m.exec(e.message!.toString('latin1'))?.[1]));
  assert.deepEqual(subjects, Array.from({ length: total }, (_, i) => i));
});
