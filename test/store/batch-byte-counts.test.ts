/**
 * A batch's byte counts go past 2^31 (a million 2 KB messages sign into about
 * 6.4 GB): on PostgreSQL, whose INTEGER is 32-bit, completing the chunk that
 * crossed it failed with "integer out of range" (bench/serve-batch.ts stopped at
 * the 335,501st message) until migration 11 made them BIGINT. And batch blobs are
 * stored uncompressed on PostgreSQL: they are read in pieces, and a piece of a
 * compressed value costs a decompression from its start.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { masterKeyFromBytes } from '../../src/keys/master-key.ts';
import { Store } from '../../src/store/store.ts';
import { BatchDirectory } from '../../src/store/batch-directory.ts';
import { BatchQueue } from '../../src/store/batch-queue.ts';
import { openBatchBlobs } from '../../src/store/batch-blobs.ts';
import { engineFactories } from './engine-factories.ts';

const GIB = 2 ** 30;

for (const f of engineFactories('kakitome-batch-bytes-')) {
  test(`batch byte counts above 2^31 (${f.name})`, async (t) => {
    await f.setup();
    t.after(() => f.teardown());
    const store = await Store.open(f.make(), { masterKey: masterKeyFromBytes(randomBytes(32)), actor: 'test' });
    t.after(() => store.close());
    const directory = new BatchDirectory(store, await openBatchBlobs(store.engine));
    const id = await directory.begin({ tenant: 'acme', keyId: 'k', mediaType: 'application/mbox', options: {}, leaseMs: 60_000 });
    for (let seq = 0; seq < 3; seq++) await directory.addChunk(id, { seq, firstIndex: seq, messages: 1, bytes: Buffer.from(`m${seq}`) });
    assert.ok(await directory.finishUpload(id, { total: 3, chunks: 3, receivedBytes: 3 * GIB, fingerprint: 'f' }));

    const queue = new BatchQueue(store.engine);
    for (let i = 0; i < 3; i++) {
      const chunk = await queue.claim('node', 60_000);
      assert.ok(chunk, `chunk ${i} claimed`);
      // What the signing reported for a chunk: 1.5 GiB of output (the counts are what overflowed, not the blobs).
      assert.ok(await queue.complete(chunk, { signed: 1, failed: 0, failures: [], output: `out-${chunk.seq}`, outputBytes: 1.5 * GIB, audit: [] }, 3_600_000));
    }
    const done = await directory.find('acme', id);
    assert.equal(done?.state, 'done');
    assert.equal(done?.receivedBytes, 3 * GIB);
    assert.equal(done?.resultBytes, 4.5 * GIB);
    assert.deepEqual((await directory.resultParts(id)).map((p) => p.bytes), [1.5 * GIB, 1.5 * GIB, 1.5 * GIB]);
  });
}

test('batch blobs on PostgreSQL are stored uncompressed and read back whole in pieces', async (t) => {
  const f = engineFactories('kakitome-batch-blobs-').find((e) => e.name === 'postgres')!;
  await f.setup();
  t.after(() => f.teardown());
  const store = await Store.open(f.make(), { masterKey: masterKeyFromBytes(randomBytes(32)), actor: 'test' });
  t.after(() => store.close());
  const blobs = await openBatchBlobs(store.engine);
  const directory = new BatchDirectory(store, blobs);
  const id = await directory.begin({ tenant: 'acme', keyId: 'k', mediaType: 'application/mbox', options: {}, leaseMs: 60_000 });
  // Signed output is base64 text: highly compressible, as this is.
  const bytes = Buffer.from('MIAGCSqGSIb3DQEHAqCAMIACAQExDzANBglghkgBZQMEAgEFADCABgkqhkiG9w0BBwGggCSABIIC\r\n'.repeat(40_000));
  await blobs.put(id, 'out-0-test', bytes);
  const [row] = await store.engine.all("SELECT length(bytes) AS n, pg_column_size(bytes) AS stored FROM batch_blobs WHERE batch_id = ? AND name = 'out-0-test'", [id]);
  assert.equal(Number(row!.n), bytes.length);
  assert.ok(Number(row!.stored) >= bytes.length, `stored in ${row!.stored} bytes for ${bytes.length}: compressed`);
  assert.ok((await blobs.get(id, 'out-0-test')).equals(bytes));
});
