/**
 * `kakitome serve` (one node, SQLite) whose batch thread dies in the middle of a
 * batch (src/server/batches/keep-batch-thread.ts): the death is an uncaught error
 * thrown in that thread, put there through the process's own inspector (the
 * process runs with --inspect in NODE_OPTIONS, as an operator could; nothing in
 * the product helps the test). The node logs the death with its cause, answers
 * /healthz "degraded" while it starts a new thread, counts the restart in
 * /metrics, gives back the chunks the dead thread held at once (not when their
 * 60 s lease lapses) and the new thread claims them: the batch finishes with every message signed exactly once, in order.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { splitMbox } from '../../src/mime/mbox.ts';
import { acmeStore, kakitomeOk, startServe } from './serve-process.ts';

const N = 600;

/** The inspector of the process whose stderr is `stderr`: a message to a worker thread whose script URL contains `script`, through NodeWorker. */
async function throwInWorker(stderr: () => string, script: string, expression: string): Promise<void> {
  const ports = [...stderr().matchAll(/Debugger listening on ws:\/\/127\.0\.0\.1:(\d+)\//g)].map((m) => m[1]);
  // The launcher re-executes itself once (bin/kakitome.js): the last inspector is the server's.
  const port = ports.at(-1);
  assert.ok(port, `no inspector: ${stderr()}`);
  const [target] = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json() as Array<{ webSocketDebuggerUrl: string }>;
  const ws = new WebSocket(target!.webSocketDebuggerUrl);
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = reject;
  });
  const sessionId = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no worker thread running ${script}`)), 10_000);
    ws.onmessage = (m) => {
      const msg = JSON.parse(String(m.data)) as { method?: string; params?: { sessionId: string; workerInfo: { url: string } } };
      if (msg.method === 'NodeWorker.attachedToWorker' && msg.params!.workerInfo.url.includes(script)) {
        clearTimeout(timer);
        resolve(msg.params!.sessionId);
      }
    };
    ws.send(JSON.stringify({ id: 1, method: 'NodeWorker.enable', params: { waitForDebuggerOnStart: false } }));
  });
  const inner = { id: 1, method: 'Runtime.evaluate', params: { expression } };
  ws.send(JSON.stringify({ id: 2, method: 'NodeWorker.sendMessageToWorker', params: { sessionId, message: JSON.stringify(inner) } }));
  await new Promise((r) => setTimeout(r, 200));
  ws.close();
}

test('a batch thread that dies mid-batch is logged, reported by /healthz and /metrics, started again, and the chunks it held are signed once by the new thread', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kakitome-batch-restart-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const env = await acmeStore(dir, 'Batch Restart CA');
  const key = JSON.parse(await kakitomeOk(env, 'tenant', 'key', 'acme', '--scope', 'sign', '--json')).key as string;
  // --workers 0: the batch thread is the main thread's own. A 60 s lease: the dead thread's chunks come back at once, not when it lapses.
  const node = await startServe(['--http', '127.0.0.1:0', '--workers', '0', '--batch-chunk', '50', '--batch-lease', '60', '--batch-poll', '100'], { ...env, NODE_OPTIONS: '--inspect=127.0.0.1:0' });
  t.after(() => node.stop());
  const url = (path: string) => new URL(path, String(node.listening.http!.url));
  const auth = { authorization: `Bearer ${key}` };

  assert.deepEqual(await (await fetch(url('/healthz'))).json(), { status: 'ok', batches: 'running' });
  let mbox = '';
  for (let i = 0; i < N; i++) mbox += `From bulk@acme.example Sun Dec  6 10:00:00 2026\nFrom: news@acme.example\r\nTo: reader${i}@example.net\r\nSubject: Restart ${i}\r\nMessage-ID: <restart.${i}@acme.example>\r\n\r\nHello reader ${i}.\r\n\n`;
  const posted = await fetch(url('/api/v1/batches'), { method: 'POST', headers: { ...auth, 'content-type': 'application/mbox' }, body: mbox });
  assert.equal(posted.status, 202);
  const { id } = await posted.json() as { id: string };

  // A chunk done, the next in hand: the thread dies of an uncaught error while it signs.
  const chunkLines = () => node.lines.filter((l) => l.msg === 'batch chunk' && l.batch === id);
  const deadline = Date.now() + 50_000;
  while (!chunkLines().some((l) => l.event === 'done') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const first = chunkLines().find((l) => l.event === 'done');
  assert.ok(first, 'a first chunk signed');
  const deadNode = String(first.node);
  const signedOk = (page: string) => Number(/^kakitome_messages_total\{operation="batch-sign",outcome="ok"\} (\d+)$/m.exec(page)?.[1] ?? 0);
  const before = signedOk(await (await fetch(url('/metrics'))).text());
  assert.ok(before >= 50, `batch-sign ok before the death: ${before}`);
  await throwInWorker(node.stderr, 'batch-thread', "setImmediate(() => { throw new Error('thrown from the inspector'); })");

  // While the node starts a new thread: "degraded" (200, uploads still taken), and the death logged with its cause.
  const health: Array<Record<string, unknown>> = [];
  while (!node.lines.some((l) => l.msg === 'batch thread restarted') && Date.now() < deadline) {
    const r = await fetch(url('/healthz'));
    assert.equal(r.status, 200);
    health.push(await r.json() as Record<string, unknown>);
    await new Promise((r) => setTimeout(r, 50));
  }
  const death = node.lines.find((l) => l.msg === 'batch thread failed');
  assert.ok(death, 'the death logged');
  assert.match(String(death.error), /thrown from the inspector/);
  assert.equal(death.restart, true);
  assert.ok(health.some((h) => h.status === 'degraded' && h.batches === 'restarting' && /died/.test(String(h.reason))), JSON.stringify(health));

  let view: { state: string; signed: number; failed: number } = { state: '', signed: 0, failed: 0 };
  while (view.state !== 'done' && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
    view = await (await fetch(url(`/api/v1/batches/${id}`), { headers: auth })).json() as typeof view;
  }
  assert.deepEqual([view.state, view.signed, view.failed], ['done', N, 0]);
  const released = node.lines.find((l) => l.msg === 'batch chunks released');
  assert.equal(released?.node, deadNode);
  assert.deepEqual(await (await fetch(url('/healthz'))).json(), { status: 'ok', batches: 'running' });

  // The chunks the dead thread held (one or two: a worker stores the chunk it signed while it signs the next),
  // as the store tells (the thread's last log lines died with it): claimed twice, completed by the new thread;
  // every other chunk claimed once.
  const db = new DatabaseSync(join(dir, 'home', 'kakitome.db'), { readOnly: true });
  const chunks = db.prepare('SELECT seq, attempts, node FROM batch_chunks WHERE batch_id = ? ORDER BY seq').all(id) as Array<{ seq: number; attempts: number; node: string }>;
  db.close();
  const held = chunks.filter((c) => c.attempts !== 1);
  assert.ok(held.length >= 1 && held.length <= 2, JSON.stringify(chunks));
  for (const h of held) assert.ok(h.attempts === 2 && h.node !== deadNode && h.node.startsWith(deadNode.replace(/\/\d+$/, '/')), JSON.stringify(h));

  const metrics = await (await fetch(url('/metrics'))).text();
  assert.match(metrics, /^kakitome_batch_thread_restarts_total 1$/m);
  assert.match(metrics, /^kakitome_batch_threads_running 1$/m);
  // The dead thread's counters as last scraped are kept: the page never goes backwards (what it counted after that scrape is lost).
  assert.ok(signedOk(metrics) >= before, `batch-sign ok ${signedOk(metrics)} after ${before}`);

  // Nothing lost, nothing twice: the result holds each message once, in upload order.
  const result = Buffer.from(await (await fetch(url(`/api/v1/batches/${id}/result`), { headers: auth })).arrayBuffer());
  const subjects: number[] = [];
  for await (const e of splitMbox((async function* () { yield result; })(), 1 << 20)) subjects.push(Number(/^Subject: Restart (\d+)\r$/m.exec(e.message!.toString('latin1'))?.[1]));
  assert.deepEqual(subjects, Array.from({ length: N }, (_, i) => i));
});
