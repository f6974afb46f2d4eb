/**
 * On PostgreSQL a batch's result lives in the batch_blobs table, and its BYTEA hex
 * text is parsed by whoever reads it: read on the serving thread, it grew that
 * thread's young generation to 331 MiB at 200,000 messages (docs/performance.md),
 * so the batch thread reads it and moves the pieces across (start-server.ts
 * readOutputs). The content alone cannot show which thread read it; this test
 * watches the serving thread's own store connection: every statement it runs is
 * recorded, and none may touch batch_blobs while the result is downloaded (the
 * batch thread opens a store of its own). A control reads the same result through
 * this thread's blobs to show the recorder sees such a read when it happens.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { initCertificateAuthority } from '../../src/ca/init-certificate-authority.ts';
import { issueMailboxCertificate } from '../../src/ca/issue-mailbox-certificate.ts';
import { masterKeyFromBytes } from '../../src/keys/master-key.ts';
import { Store } from '../../src/store/store.ts';
import { TenantDirectory } from '../../src/store/tenant-directory.ts';
import { BatchDirectory } from '../../src/store/batch-directory.ts';
import { openBatchBlobs } from '../../src/store/batch-blobs.ts';
import { openPostgresEngine } from '../../src/store/postgres-engine.ts';
import type { SqlEngine, SqlExecutor, SqlValue } from '../../src/store/sql-engine.ts';
import { DEFAULT_BATCH_CONFIG } from '../../src/server/config.ts';
import { startServer, type RunningServer } from '../../src/server/start-server.ts';
import { startPostgres, type PostgresServer } from '../store/postgres-server.ts';

const master = masterKeyFromBytes(randomBytes(32));
const N = 60;
let pg: PostgresServer;
let store: Store;
let server: RunningServer;
let key = '';
/** The SQL text of every statement the serving thread's engine ran, transactions' included. */
const statements: string[] = [];

/** The engine (or a transaction's executor) with each statement recorded before it runs. */
function recording<T extends SqlExecutor>(target: T): T {
  return new Proxy(target, {
    get(t, p) {
      const v: unknown = Reflect.get(t, p);
      if (p === 'all' || p === 'run') {
        const statement = v as SqlExecutor['all'];
        return (sql: string, params?: readonly SqlValue[]) => {
          statements.push(sql);
          return statement.call(t, sql, params);
        };
      }
      if (p === 'transaction') return <R>(fn: (tx: SqlExecutor) => Promise<R>) => (t as unknown as SqlEngine).transaction((tx) => fn(recording(tx)));
      return typeof v === 'function' ? v.bind(t) : v;
    },
  });
}

const readsBlobs = (sql: string) => /\bbatch_blobs\b/i.test(sql) && /^\s*select\b/i.test(sql);

before(async () => {
  pg = await startPostgres();
  store = await Store.open(recording<SqlEngine>(openPostgresEngine(pg.url)), { masterKey: master, actor: 'tester' });
  await initCertificateAuthority(store, { name: 'Result Thread CA', keyType: 'p256' });
  const tenants = new TenantDirectory(store);
  await tenants.addTenant('acme', ['acme.example']);
  await issueMailboxCertificate(store, { email: 'news@acme.example', keyType: 'p256' });
  await tenants.registerIdentities('acme', ['news@acme.example']);
  key = (await tenants.createApiKey('acme', { scopes: ['sign'] })).token;
  server = await startServer(store, {
    host: '127.0.0.1', port: 0, maxMessageBytes: 64 * 1024, shutdownGraceMs: 5000, revocation: 'allow-unknown',
    batch: { ...DEFAULT_BATCH_CONFIG, chunkMessages: 20, pollMs: 100, leaseMs: 5000 },
  }, {
    log: () => {}, version: 'test',
    // As `kakitome serve` runs: the batch thread opens the same database itself.
    batchThread: { location: { databaseUrl: pg.url, masterKey: master }, write: () => {} },
  });
});

after(async () => {
  await server?.close();
  await store?.close();
  pg?.stop();
});

const call = (path: string, init: RequestInit = {}) => fetch(new URL(path, server.url), { ...init, headers: { authorization: `Bearer ${key}`, ...init.headers } });

test('PostgreSQL: the batch thread reads the result from batch_blobs, the serving thread only passes its pieces on', async () => {
  let mbox = '';
  for (let i = 0; i < N; i++) mbox += `From sender@acme.example Sun Dec  6 10:00:00 2026\nFrom: news@acme.example\r\nTo: reader${i}@example.net\r\nSubject: Statement ${i}\r\n\r\nDear reader ${i}.\r\n\n`;
  const created = await call('/api/v1/batches', { method: 'POST', headers: { 'content-type': 'application/mbox' }, body: mbox });
  const { id } = await created.json() as { id: string };
  assert.equal(created.status, 202);
  for (let i = 0; ; i++) {
    const view = await (await call(`/api/v1/batches/${id}`)).json() as { state: string; signed: number };
    if (view.state === 'done') {
      assert.equal(view.signed, N);
      break;
    }
    assert.ok(i < 600, `batch ${id} did not finish`);
    await new Promise((r) => setTimeout(r, 50));
  }

  statements.length = 0;
  const r = await call(`/api/v1/batches/${id}/result`);
  const body = Buffer.from(await r.arrayBuffer());
  assert.equal(r.status, 200, body.toString());
  assert.equal(Number(r.headers.get('content-length')), body.length);
  assert.equal(body.toString('latin1').match(/^From sender@acme\.example /gm)?.length, N, 'every message of the result arrived, each under its envelope');
  assert.ok(statements.length > 0, 'the serving thread looked the batch up in its store');
  assert.deepEqual(statements.filter(readsBlobs), [], 'the serving thread read batch_blobs itself');

  // Control: the same result read through this thread's blobs is seen by the recorder.
  statements.length = 0;
  const directory = new BatchDirectory(store, await openBatchBlobs(store.engine));
  const parts = (await directory.resultParts(id)).filter((p) => p.bytes > 0);
  const pieces: Buffer[] = [];
  for (const p of parts) for await (const piece of directory.blobs.read(id, p.output)) pieces.push(piece);
  assert.ok(Buffer.concat(pieces).equals(body), 'the result read here is the one downloaded');
  assert.ok(statements.some(readsBlobs), 'a read of batch_blobs on this thread is recorded');
});
