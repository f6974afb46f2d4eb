/**
 * `kakitome serve --workers 2`: /healthz tells the node's batch side, every serving
 * thread's batch thread combined (server/workers/start-serve-workers.ts,
 * combineBatchHealth), whichever thread the kernel hands the probe to. Before, each
 * thread answered for its own batch thread only: with one batch thread waiting for
 * the store (here: the chunk it signs cannot be completed while another connection
 * holds SQLite's write lock), half the probes said "ok", so a load balancer's view
 * depended on the connection's hash. A batch thread stopped for good on any thread
 * is likewise the node's 503 (the same combination).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { get } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { acmeStore, kakitomeOk, startServe } from './serve-process.ts';
import { combineBatchHealth } from '../../src/server/workers/start-serve-workers.ts';

/** GET /healthz on a connection of its own (no pooling: each probe may reach another serving thread). */
function probe(base: string): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    get(new URL('/healthz', base), { agent: false }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) as Record<string, unknown> }));
    }).on('error', reject);
  });
}

test('combineBatchHealth: the worst state, each thread\'s reason named', () => {
  assert.deepEqual(combineBatchHealth([{ state: 'running' }, { state: 'running' }]), { state: 'running' });
  assert.deepEqual(combineBatchHealth([{ state: 'running' }, { state: 'stopped', reason: 'Gone.' }, { state: 'waiting-for-store', reason: 'Busy.' }]), { state: 'stopped', reason: 'Serving thread 2 of 3: Gone. Serving thread 3 of 3: Busy.' });
  assert.deepEqual(combineBatchHealth([{ state: 'restarting', reason: 'Again.' }]), { state: 'restarting', reason: 'Again.' });
});

test('serve --workers 2: one batch thread waiting for the store makes every /healthz answer degraded', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kakitome-workers-health-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const env = await acmeStore(dir, 'Workers Health CA');
  const key = JSON.parse(await kakitomeOk(env, 'tenant', 'key', 'acme', '--scope', 'sign', '--json')).key as string;
  // One chunk for the whole batch: one batch thread claims it, the other finds nothing to claim (a read, never a write).
  const node = await startServe(['--http', '127.0.0.1:0', '--workers', '2', '--batch-chunk', '4000', '--batch-lease', '120', '--batch-poll', '100'], env);
  t.after(() => node.stop());
  const base = String(node.listening.http!.url);
  for (let i = 0; i < 8; i++) assert.deepEqual((await probe(base)).body, { status: 'ok', batches: 'running' });

  const N = 4000;
  let mbox = '';
  for (let i = 0; i < N; i++) mbox += `From news@acme.example Sun Dec  6 10:00:00 2026\nFrom: news@acme.example\r\nTo: reader${i}@example.net\r\nSubject: Health ${i}\r\n\r\nHello ${i}.\r\n\n`;
  const auth = { authorization: `Bearer ${key}` };
  const up = await fetch(new URL('/api/v1/batches', base), { method: 'POST', headers: { ...auth, 'content-type': 'application/mbox' }, body: mbox });
  assert.equal(up.status, 202, await up.clone().text());
  const { id } = await up.json() as { id: string };
  const state = async () => ((await (await fetch(new URL(`/api/v1/batches/${id}`, base), { headers: auth })).json()) as { state: string; signed: number; failed: number });
  for (const end = Date.now() + 30_000; (await state()).state !== 'running';) {
    assert.ok(Date.now() < end, 'the chunk was claimed');
    await new Promise((r) => setTimeout(r, 20));
  }
  // Claimed and being signed: from now on its completion (and its release) meet the lock.
  const db = new DatabaseSync(join(dir, 'home', 'kakitome.db'), { timeout: 5000 });
  db.exec('BEGIN IMMEDIATE');
  let locked = true;
  t.after(() => { if (locked) db.exec('ROLLBACK'); db.close(); });
  let first: { status: number; body: Record<string, unknown> } | undefined;
  for (const end = Date.now() + 60_000; Date.now() < end; await new Promise((r) => setTimeout(r, 200))) {
    const p = await probe(base);
    if (p.body.status === 'degraded') {
      first = p;
      break;
    }
  }
  assert.ok(first, 'a batch thread reported the store trouble');
  const answers = await Promise.all(Array.from({ length: 16 }, () => probe(base)));
  assert.deepEqual(answers.map((a) => `${a.status} ${a.body.status}`), answers.map(() => '200 degraded'), 'every serving thread tells the node\'s state');
  for (const a of answers) {
    assert.equal(a.body.batches, 'waiting-for-store');
    assert.match(String(a.body.reason), /^Serving thread [12] of 2: The batch workers wait for the store \(SQLITE_BUSY\)/);
  }
  db.exec('ROLLBACK');
  locked = false;
  for (const end = Date.now() + 120_000; ;) {
    const s = await state();
    if (s.state === 'done') {
      assert.deepEqual([s.signed, s.failed], [N, 0]);
      break;
    }
    assert.ok(Date.now() < end, `the batch finished once the lock was gone: ${JSON.stringify(s)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  const after = await Promise.all(Array.from({ length: 8 }, () => probe(base)));
  for (const a of after) assert.deepEqual(a.body, { status: 'ok', batches: 'running' });
});
