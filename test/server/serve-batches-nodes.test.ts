/**
 * Two `kakitome serve` processes on one PostgreSQL, started through the real
 * launcher: a batch uploaded to one node is signed by both (the chunks are jobs
 * of the queue in the shared store); and when one node is killed (SIGKILL) in the
 * middle of a chunk, the other takes the chunk over once its lease lapses and
 * finishes the batch, with every good message signed exactly once in the result
 * (nothing lost, nothing twice) and the bad ones reported and skipped; and each
 * good message has exactly one audit row (api.batches.sign), the killed node's
 * chunk included.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { splitMbox } from '../../src/mime/mbox.ts';
import { storeHomeEnv } from '../cli/run-cli.ts';
import { startPostgres, type PostgresServer } from '../store/postgres-server.ts';
import { kakitomeOk, startServe, type ServeProcess } from './serve-process.ts';
import { BATCH_YOUNG_GENERATION_MB } from '../../src/server/batches/start-batch-thread.ts';
import { openPostgresEngine } from '../../src/store/postgres-engine.ts';

const dir = mkdtempSync(join(tmpdir(), 'kakitome-batch-nodes-'));
const N = 800;
/**
 * The first test's batch: node a alone (its upload woke it) takes about 2 s to sign
 * it here, against at most 150 ms for node b's next look for work (--batch-poll
 * 100 below): with the default poll (up to 1.5 s) node a signed an 800-message batch
 * alone in 3 runs of 11, so node b's share must not hang on when its poll falls.
 */
const SPLIT_N = 4800;
const BAD = new Map([[333, 'MALFORMED'], [700, 'FORBIDDEN']]);
let pg: PostgresServer;
let env: NodeJS.ProcessEnv;
let nodes: ServeProcess[] = [];
let key = '';

// One serving thread a node (--workers 1): two signers in all, as the test reasons about nodes.
// An idle node looks for work every 50-150 ms (--batch-poll 100), so node b joins a batch uploaded to node a
// long before node a alone could finish it.
const NODE_ARGS = ['--http', '127.0.0.1:0', '--workers', '1', '--batch-chunk', '50', '--batch-lease', '3', '--batch-poll', '100'];

before(async () => {
  pg = await startPostgres();
  mkdirSync(join(dir, 'user'));
  env = { ...storeHomeEnv(join(dir, 'home'), join(dir, 'user')), KAKITOME_DATABASE_URL: pg.url };
  await kakitomeOk(env, 'init');
  await kakitomeOk(env, 'ca', 'init', '--name', 'Batch Nodes CA', '--key-type', 'p256', '-o', join(dir, 'root.pem'));
  await kakitomeOk(env, 'tenant', 'add', 'acme', '--domain', 'acme.example');
  await kakitomeOk(env, 'tenant', 'identity', 'acme', '--email', 'news@acme.example', '--key-type', 'p256');
  key = JSON.parse(await kakitomeOk(env, 'tenant', 'key', 'acme', '--scope', 'sign', '--json')).key;
  nodes = await Promise.all([0, 1].map(() => startServe(NODE_ARGS, env)));
});

after(async () => {
  await Promise.all(nodes.map((n) => n.stop()));
  pg?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const url = (node: ServeProcess, path: string) => new URL(path, String(node.listening.http!.url));

function batchMbox(tag: string, n: number): string {
  let out = '';
  for (let i = 0; i < n; i++) {
    const from = i === 700 ? 'news@globex.example' : 'news@acme.example';
    const extra = i === 333 ? 'From: other@acme.example\r\n' : '';
    out += `From bulk@acme.example Sun Dec  6 10:00:00 2026\nFrom: ${from}\r\nTo: reader${i}@example.net\r\nSubject: ${tag} ${i}\r\nMessage-ID: <${tag}.${i}@acme.example>\r\n${extra}\r\nHello reader ${i}.\r\n\n`;
  }
  return out;
}

async function upload(node: ServeProcess, tag: string, n = N): Promise<string> {
  const r = await fetch(url(node, '/api/v1/batches'), { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/mbox' }, body: batchMbox(tag, n) });
  const body = await r.json() as { id: string; total: number };
  assert.equal(r.status, 202, JSON.stringify(body));
  assert.equal(body.total, n);
  return body.id;
}

async function finished(node: ServeProcess, id: string): Promise<{ signed: number; failed: number; failures: Array<{ index: number; code: string }> }> {
  for (let i = 0; i < 1200; i++) {
    const view = await (await fetch(url(node, `/api/v1/batches/${id}`), { headers: { authorization: `Bearer ${key}` } })).json() as { state: string; signed: number; failed: number; failures: Array<{ index: number; code: string }> };
    if (view.state === 'done') return view;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`batch ${id} did not finish`);
}

/** The result's messages by the index in their Subject; each must appear once. */
async function resultIndexes(node: ServeProcess, id: string, tag: string): Promise<{ indexes: number[]; messages: Buffer[] }> {
  const r = await fetch(url(node, `/api/v1/batches/${id}/result`), { headers: { authorization: `Bearer ${key}` } });
  assert.equal(r.status, 200);
  const body = Buffer.from(await r.arrayBuffer());
  const messages: Buffer[] = [];
  for await (const e of splitMbox((async function* () { yield body; })(), 1 << 30)) messages.push(e.message!);
  const indexes = messages.map((m) => Number(new RegExp(`^Subject: ${tag} (\\d+)\\r$`, 'm').exec(m.toString('latin1'))?.[1]));
  return { indexes, messages };
}

function assertExactlyOnce(indexes: number[], n = N): void {
  const expected = Array.from({ length: n }, (_, i) => i).filter((i) => !BAD.has(i));
  assert.equal(indexes.length, expected.length, 'as many signed messages as good ones');
  assert.deepEqual(indexes, expected, 'each good message once, in upload order');
}

/**
 * The batch's api.batches.sign rows, by the index each names: committed with their chunk's completion, so
 * every message of the result has one, and a chunk signed by a node that died before completing it none.
 */
async function auditedIndexes(id: string): Promise<number[]> {
  const engine = openPostgresEngine(pg.url);
  try {
    const rows = await engine.all("SELECT detail FROM audit_log WHERE action = 'api.batches.sign' AND detail LIKE ?", [`%, batch ${id} message %`]);
    return rows.map((r) => Number(/ message (\d+)$/.exec(String(r.detail))?.[1])).sort((x, y) => x - y);
  } finally {
    await engine.close();
  }
}

function opensslVerify(signed: Buffer): void {
  const file = join(dir, `signed-${randomBytes(4).toString('hex')}.eml`);
  writeFileSync(file, signed);
  execFileSync('openssl', ['cms', '-verify', '-in', file, '-CAfile', join(dir, 'root.pem'), '-purpose', 'smimesign', '-out', '/dev/null'], { stdio: 'pipe' });
}

type ChunkLine = { msg: string; event: string; batch: string; chunk: number; attempt: number; node: string };
const chunkLines = (node: ServeProcess, batch: string, event: string) => (node.lines as ChunkLine[]).filter((l) => l.msg === 'batch chunk' && l.batch === batch && l.event === event);

test('a batch uploaded to one node is signed by both, every message once', async () => {
  const [a, b] = nodes as [ServeProcess, ServeProcess];
  const id = await upload(a, 'Split', SPLIT_N);
  const view = await finished(b, id);
  assert.deepEqual([view.signed, view.failed], [SPLIT_N - BAD.size, BAD.size]);
  assert.deepEqual(view.failures.map((f) => [f.index, f.code]), [...BAD]);
  // A node logs a chunk's 'done' after its commit, so the line of the chunk that finished the batch
  // may still be on its way when the batch reads done: wait for the lines, then a little longer, so
  // that a chunk completed twice (one line too many) would be seen too.
  const doneLines = () => chunkLines(a, id, 'done').length + chunkLines(b, id, 'done').length;
  for (let i = 0; i < 600 && doneLines() < SPLIT_N / 50; i++) await new Promise((r) => setTimeout(r, 50));
  await new Promise((r) => setTimeout(r, 200));
  const doneA = chunkLines(a, id, 'done');
  const doneB = chunkLines(b, id, 'done');
  assert.ok(doneA.length > 0 && doneB.length > 0, `both nodes signed chunks (a: ${doneA.length}, b: ${doneB.length})`);
  assert.equal(doneA.length + doneB.length, SPLIT_N / 50, 'each chunk completed once');
  const { indexes, messages } = await resultIndexes(a, id, 'Split');
  assertExactlyOnce(indexes, SPLIT_N);
  assertExactlyOnce(await auditedIndexes(id), SPLIT_N);
  for (const k of [0, 400, messages.length - 1]) opensslVerify(messages[k]!);
  // Each node signs in its batch thread, whose young generation is the small one (the serving threads keep V8's default).
  for (const node of [a, b]) {
    const thread = (node.lines as Array<{ msg: string; node: string; youngGenerationMb: number }>).filter((l) => l.msg === 'batch thread');
    assert.equal(thread.length, 1, 'one batch thread per serving thread');
    assert.equal(thread[0]!.youngGenerationMb, BATCH_YOUNG_GENERATION_MB);
    assert.deepEqual([...new Set(chunkLines(node, id, 'done').map((l) => l.node))], [thread[0]!.node]);
  }
  // /metrics counts what the batch threads signed.
  const signedBy = async (node: ServeProcess) => Number(/kakitome_messages_total\{operation="batch-sign",outcome="ok"\} (\d+)/.exec(await (await fetch(url(node, '/metrics'))).text())?.[1] ?? 0);
  assert.equal((await signedBy(a)) + (await signedBy(b)), SPLIT_N - BAD.size);
});

test('a node killed (SIGKILL) in the middle of a chunk: the other takes the chunk over and finishes the batch, nothing lost or twice', async () => {
  const [a, b] = nodes as [ServeProcess, ServeProcess];
  const id = await upload(a, 'Killed');
  // Kill node a right after it claims a chunk of this batch (its log line says so), while it signs it.
  let victim: ChunkLine | undefined;
  for (let i = 0; i < 3000 && !victim; i++) {
    victim = chunkLines(a, id, 'claimed').find((c) => !chunkLines(a, id, 'done').some((d) => d.chunk === c.chunk));
    if (!victim) await new Promise((r) => setTimeout(r, 5));
  }
  assert.ok(victim, 'node a claimed a chunk');
  a.child.kill('SIGKILL');
  assert.equal(await a.exited, null);
  assert.ok(!chunkLines(a, id, 'done').some((d) => d.chunk === victim!.chunk), 'node a died before finishing its chunk');

  const view = await finished(b, id);
  assert.deepEqual([view.signed, view.failed], [N - BAD.size, BAD.size]);
  assert.deepEqual(view.failures.map((f) => [f.index, f.code]), [...BAD]);
  const takeover = chunkLines(b, id, 'done').find((d) => d.chunk === victim!.chunk);
  assert.ok(takeover && takeover.attempt >= 2, `node b signed chunk ${victim.chunk} again after node a died (attempt ${takeover?.attempt})`);
  const { indexes, messages } = await resultIndexes(b, id, 'Killed');
  assertExactlyOnce(indexes);
  // Audited once each: the killed node's signatures of its chunk were never released, nor recorded.
  assertExactlyOnce(await auditedIndexes(id));
  // The re-signed chunk's messages verify like the others.
  for (const k of [victim.chunk * 50, victim.chunk * 50 + 49, 0, messages.length - 1]) opensslVerify(messages[Math.min(k, messages.length - 1)]!);
});
