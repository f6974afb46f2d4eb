/**
 * `kakitome serve --workers 3` through the real launcher: three serving threads on
 * one port, one coordinating thread. Each request comes on a connection of its own,
 * so the kernel spreads them over the threads; what holds for the node still holds:
 * a key's rate limit counts every thread's requests, a key revoked through the CLI
 * is refused by every thread at its next request, /metrics sums every thread's
 * counters, and after SIGTERM every answered message has its audit row (openssl
 * verifies what was signed), promptly: no thread writes Node's compile cache as it
 * ends (persist-compile-cache.ts). The submission port runs on the same threads.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import nodemailer from 'nodemailer';
import { SERVE_YOUNG_GENERATION_MB } from '../../src/server/workers/start-serve-workers.ts';
import { acmeStore, kakitomeOk, startServe, type ServeProcess } from './serve-process.ts';

const dir = mkdtempSync(join(tmpdir(), 'kakitome-serve-workers-'));
let env: NodeJS.ProcessEnv;
let serve: ServeProcess;
let signer = '';
let signerId = '';
let limited = '';
let relayed: Buffer[] = [];
let sink: SMTPServer;
const kk = (...args: string[]) => kakitomeOk(env, ...args);
const draft = (n: number) => Buffer.from(`From: news@acme.example\r\nTo: a@example.net\r\nSubject: workers ${n}\r\nMessage-ID: <w${n}@acme.example>\r\n\r\nHello from thread land, ${n}.\r\n`);

before(async () => {
  env = await acmeStore(dir, 'Workers CA');
  // A compile cache of this test's own, cold for the server's modules (bin/kakitome.js enables it).
  env = { ...env, NODE_COMPILE_CACHE: join(dir, 'compile-cache') };
  delete env.NODE_DISABLE_COMPILE_CACHE;
  const s = JSON.parse(await kk('tenant', 'key', 'acme', '--scope', 'sign', '--json')) as { key: string; record: { id: string } };
  signer = s.key;
  signerId = s.record.id;
  limited = (JSON.parse(await kk('tenant', 'key', 'acme', '--scope', 'sign', '--rate', '6', '--json')) as { key: string }).key;
  sink = new SMTPServer({
    authOptional: true, disabledCommands: ['AUTH', 'STARTTLS'], disableReverseLookup: true, logger: false,
    onData(stream, _session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        relayed.push(Buffer.concat(chunks));
        callback(null, 'Ok');
      });
    },
  });
  await new Promise<void>((r) => sink.listen(0, '127.0.0.1', () => r()));
  const relay = (sink.server.address() as AddressInfo).port;
  serve = await startServe(['--http', '127.0.0.1:0', '--smtp', '127.0.0.1:0', '--relay', `127.0.0.1:${relay}`, '--workers', '3'], env, ['http', 'smtp']);
});

after(async () => {
  await serve?.stop();
  await new Promise<void>((r) => (sink ? sink.close(() => r()) : r()));
  rmSync(dir, { recursive: true, force: true });
});

/** One request on a connection of its own (so the kernel may hand it to any thread). */
function post(path: string, key: string, body: Buffer): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, String(serve.listening.http!.url)), { method: 'POST', agent: false, headers: { authorization: `Bearer ${key}`, 'content-type': 'message/rfc822', 'content-length': body.length } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('the listening line names the threads; messages signed on many connections verify with openssl', async () => {
  assert.equal(serve.listening.http!.workers, 3);
  const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => post('/api/v1/sign', signer, draft(i))));
  for (const [i, a] of answers.entries()) {
    assert.equal(a.status, 200, a.body.toString());
    const file = join(dir, `signed-${i}.eml`);
    writeFileSync(file, a.body);
    const content = execFileSync('openssl', ['cms', '-verify', '-in', file, '-CAfile', join(dir, 'root.pem')], { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
    assert.match(content, new RegExp(`Hello from thread land, ${i}\\.`));
  }
});

test('a rate limit holds for the node, whatever thread answers', async () => {
  const statuses = await Promise.all(Array.from({ length: 18 }, (_, i) => post('/api/v1/sign', limited, draft(100 + i)).then((r) => r.status)));
  assert.equal(statuses.filter((s) => s === 200).length, 6, statuses.join(' '));
  assert.equal(statuses.filter((s) => s === 429).length, 12);
});

test('submission runs on the same threads and shares the key\'s bucket', async () => {
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: Number(String(serve.listening.smtp!.address).split(':').pop()), secure: false, ignoreTLS: true, auth: { user: 'acme', pass: signer }, pool: true, maxConnections: 3 });
  relayed = [];
  await Promise.all(Array.from({ length: 6 }, (_, i) => transport.sendMail({ envelope: { from: 'bounce@acme.example', to: ['a@example.net'] }, raw: draft(200 + i) })));
  transport.close();
  assert.equal(relayed.length, 6);
  const file = join(dir, 'relayed.eml');
  writeFileSync(file, relayed[0]!);
  execFileSync('openssl', ['cms', '-verify', '-in', file, '-CAfile', join(dir, 'root.pem'), '-out', '/dev/null'], { stdio: 'pipe' });
  const limitedMail = nodemailer.createTransport({ host: '127.0.0.1', port: Number(String(serve.listening.smtp!.address).split(':').pop()), secure: false, ignoreTLS: true, auth: { user: 'acme', pass: limited } });
  // The bucket's six were taken over HTTP.
  await assert.rejects(limitedMail.sendMail({ envelope: { from: 'bounce@acme.example', to: ['a@example.net'] }, raw: draft(300) }), /451/);
  limitedMail.close();
});

test('/metrics sums the threads; a key revoked through the CLI is refused by every thread at once', async () => {
  const metrics = await (await fetch(new URL('/metrics', String(serve.listening.http!.url)))).text();
  assert.match(metrics, /kakitome_messages_total\{operation="sign",outcome="ok"\} 18\n/);
  assert.match(metrics, /kakitome_messages_total\{operation="submit",outcome="relayed"\} 6\n/);
  await kk('tenant', 'revoke-key', signerId);
  const statuses = await Promise.all(Array.from({ length: 9 }, (_, i) => post('/api/v1/sign', signer, draft(400 + i)).then((r) => r.status)));
  assert.deepEqual([...new Set(statuses)], [401]);
});

/** Files in the compile cache (one per compiled module and thread that wrote it). */
const cacheFiles = () => readdirSync(join(dir, 'compile-cache'), { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).length;

test('a second service on a port the serving threads hold is refused (SO_REUSEPORT would have shared it silently); the first keeps serving', async () => {
  const httpPort = new URL(String(serve.listening.http!.url)).port;
  const smtpPort = String(serve.listening.smtp!.address).split(':').pop();
  // A second service that did start (the defect) is stopped at once, so the test fails rather than waits.
  const refused = async (args: string[], listeners?: string[]) => {
    const second = await startServe(args, env, listeners).then((p) => p, (e: Error) => e);
    if (!(second instanceof Error)) {
      await second.stop();
      assert.fail(`a second service started on a port already served: ${args.join(' ')}`);
    }
    assert.match(second.message, /address already in use/);
  };
  await refused(['--http', `127.0.0.1:${httpPort}`, '--workers', '2']);
  await refused(['--http', '127.0.0.1:0', '--smtp', `127.0.0.1:${smtpPort}`, '--relay', '127.0.0.1:9', '--workers', '2'], ['http', 'smtp']);
  assert.equal((await fetch(new URL('/healthz', String(serve.listening.http!.url)))).status, 200);
  assert.equal(serve.child.exitCode, null);
});

test('SIGTERM: every thread finishes, every answered message has its audit row, exit 0', async () => {
  // Each thread wrote the cache for its modules once it started: ending, none writes it again
  // (each did, some 1,700 files, which held the exit up 4.6 to 8 s after the last answer).
  const before = cacheFiles();
  assert.ok(before > 0);
  assert.equal(await serve.stop(), 0);
  assert.ok(cacheFiles() - before <= 20, `the stop wrote ${cacheFiles() - before} compile cache files`);
  const lines = serve.lines;
  assert.equal(lines.at(-1)!.msg, 'stopped');
  assert.equal(lines.filter((l) => l.msg === 'request' && l.route === '/api/v1/sign' && l.status === 200).length, 18);
  // With the submission port, V8 sizes the serving threads' young generation itself.
  const threads = lines.filter((l) => l.msg === 'serving thread');
  assert.equal(threads.length, 3);
  for (const t of threads) assert.notEqual(t.youngGenerationMb, SERVE_YOUNG_GENERATION_MB);
  const db = new DatabaseSync(join(dir, 'home', 'kakitome.db'), { readOnly: true });
  const count = (action: string) => Number((db.prepare('SELECT COUNT(*) AS n FROM audit_log WHERE action = ?').get(action) as { n: number }).n);
  assert.equal(count('api.sign'), 18);
  assert.equal(count('smtp.sign'), 6);
  db.close();
});

test('an HTTP-only node: the serving threads have the smaller young generation (start-serve-workers.ts)', async () => {
  const http = await startServe(['--http', '127.0.0.1:0', '--workers', '2'], env);
  assert.equal(await http.stop(), 0);
  const threads = http.lines.filter((l) => l.msg === 'serving thread');
  assert.equal(threads.length, 2);
  for (const t of threads) assert.equal(t.youngGenerationMb, SERVE_YOUNG_GENERATION_MB);
});
