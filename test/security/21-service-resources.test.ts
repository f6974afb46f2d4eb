/**
 * docs/security.md section 21: what a caller of the signing service (serve) spends
 * of the service is bounded by what it is allowed to send. Each test plays a client
 * sending input whose cost is out of proportion to its size, or holding resources
 * the service needs for everyone else.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { masterKeyFromBytes } from '../../src/keys/master-key.ts';
import { Store } from '../../src/store/store.ts';
import { openSqliteEngine } from '../../src/store/sqlite-engine.ts';
import { startServer } from '../../src/server/start-server.ts';
import { defaultMaxConnections, parseMaxConnections, resolveServeConfig, type ServeConfig } from '../../src/server/config.ts';
import { isKakitomeError } from '../../src/errors.ts';
import { gzipSync } from 'node:zlib';
import { TenantDirectory } from '../../src/store/tenant-directory.ts';
import { splitNdjsonMessages } from '../../src/server/batches/split-ndjson-messages.ts';
import type { ChunkEntry } from '../../src/server/batches/chunk-records.ts';

async function entries(upload: string, maxMessageBytes: number): Promise<ChunkEntry[]> {
  const out: ChunkEntry[] = [];
  for await (const e of splitNdjsonMessages(Readable.from([Buffer.from(upload)]), maxMessageBytes)) out.push(e);
  return out;
}

/** CPU milliseconds `run` takes. */
async function cpuMs(run: () => Promise<unknown>): Promise<number> {
  const start = process.cpuUsage();
  await run();
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000;
}

test('an NDJSON line of nested arrays costs the batch thread what a message of its size does', async () => {
  const limit = 4 * 1024 * 1024;
  const depth = 1_000_000;
  const nest = `${'['.repeat(depth)}${']'.repeat(depth)}`;
  const bombs = [nest, `{"message": "x", "a": ${nest}}`, `{"a": ${nest}, "message": "x"}`, `{"message": ${nest}}`].join('\n');
  const text = 'From: news@acme.example\r\nSubject: "quoted" \\ back\r\n\r\n'.padEnd(2 * depth, 'x');
  const plain = [JSON.stringify({ message: text }), JSON.stringify({ message: `${text}\\` }), JSON.stringify({ base64: Buffer.from(text).toString('base64') })].join('\n');

  let refused: ChunkEntry[] = [];
  const bombMs = await cpuMs(async () => { refused = await entries(bombs, limit); });
  let read: ChunkEntry[] = [];
  const plainMs = await cpuMs(async () => { read = await entries(plain, limit); });

  assert.deepEqual(refused.map((e) => e.error?.code), ['MALFORMED', 'MALFORMED', 'MALFORMED', 'MALFORMED']);
  for (const e of refused) assert.match(e.error!.reason, /\{"message": "\.\.\."\} or \{"base64": "\.\.\."\}/);
  assert.deepEqual(read.map((e) => e.message?.toString()), [text, `${text}\\`, text], 'long messages with quotes and back-slashes are read whole');
  // Before: 4 nested lines of 2 MB cost some 6 s of CPU (JSON.parse builds a million arrays each), 150 times the plain ones.
  assert.ok(bombMs < 5 * plainMs + 200, `nested lines cost ${bombMs.toFixed(0)} ms of CPU, plain ones of the same size ${plainMs.toFixed(0)} ms`);
});

/** What the server answers on a new connection to GET /healthz: its status line, or '' when it closed the connection unanswered. */
async function statusLine(port: number): Promise<{ socket: Socket; line: Promise<string> }> {
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  const line = new Promise<string>((resolve) => {
    let got = '';
    socket.on('data', (d: Buffer) => { got += d.toString('latin1'); if (got.includes('\r\n')) resolve(got.slice(0, got.indexOf('\r\n'))); });
    socket.on('error', () => {});
    socket.on('close', () => resolve(got));
  });
  return { socket, line };
}

test('serve holds at most --max-connections connections: one more is closed as it arrives, not given a descriptor', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kakitome-conns-'));
  const store = await Store.open(openSqliteEngine(join(dir, 'store.db')), { masterKey: masterKeyFromBytes(randomBytes(32)), actor: 'tester' });
  const config: ServeConfig = { host: '127.0.0.1', port: 0, maxMessageBytes: 1024 * 1024, shutdownGraceMs: 1000, revocation: 'allow-unknown', maxConnections: 3 };
  const server = await startServer(store, config, { log: () => {}, version: 'test' });
  const port = Number(new URL(server.url).port);
  try {
    // Three clients that connect and say nothing (a slow-loris client holds a descriptor until the headers timeout, 20 s).
    const held = await Promise.all([0, 1, 2].map(() => statusLine(port)));
    await new Promise((r) => setTimeout(r, 200));
    const fourth = await statusLine(port);
    fourth.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.equal(await fourth.line, '', 'the fourth connection is closed unanswered');
    held[0]!.socket.destroy();
    await new Promise((r) => setTimeout(r, 200));
    const next = await statusLine(port);
    next.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.equal(await next.line, 'HTTP/1.1 200 OK', 'a connection is taken again once one closed');
    for (const h of held) h.socket.destroy();
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--max-connections: the default follows the open-files limit, and a value the limit cannot hold stops the server', () => {
  assert.equal(defaultMaxConnections(1024), 384);
  assert.equal(defaultMaxConnections(1_048_576), 10_000);
  assert.equal(defaultMaxConnections(256), 64);
  assert.equal(parseMaxConnections('500', 1024), 500);
  const refused = (run: () => unknown): string => {
    try { run(); } catch (e) { assert.ok(isKakitomeError(e) && e.code === 'INVALID_ARGUMENT', String(e)); return e.message; }
    assert.fail('accepted');
  };
  assert.match(refused(() => parseMaxConnections('5000', 1024)), /at most 512, or raise the limit \(ulimit -n/);
  assert.match(refused(() => parseMaxConnections('0', 1024)), /--max-connections 0: give the number/);
  assert.match(refused(() => resolveServeConfig({ maxConnections: 'many' }, {})), /--max-connections many/);
  assert.match(refused(() => resolveServeConfig({}, { KAKITOME_MAX_CONNECTIONS: '-1' })), /--max-connections -1/);
  assert.ok(resolveServeConfig({}, {}).maxConnections! >= 64);
});

test('a request body in a content coding (gzip...) is 415, never read as a message', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kakitome-coding-'));
  const store = await Store.open(openSqliteEngine(join(dir, 'store.db')), { masterKey: masterKeyFromBytes(randomBytes(32)), actor: 'tester' });
  const tenants = new TenantDirectory(store);
  await tenants.addTenant('acme', ['acme.example']);
  const key = (await tenants.createApiKey('acme', { scopes: ['sign', 'verify', 'admin'] })).token;
  const server = await startServer(store, { host: '127.0.0.1', port: 0, maxMessageBytes: 1024 * 1024, shutdownGraceMs: 1000, revocation: 'allow-unknown' }, { log: () => {}, version: 'test' });
  const message = Buffer.from('From: news@acme.example\r\nTo: reader@example.net\r\nSubject: hello\r\n\r\nHello.\r\n');
  const send = (method: string, path: string, type: string, body: Uint8Array, coding: string) => fetch(new URL(path, server.url), {
    method, body, headers: { authorization: `Bearer ${key}`, 'content-type': type, 'content-encoding': coding, 'kakitome-pkcs12-password': '' },
  });
  try {
    const gz = gzipSync(message);
    const requests: Array<[string, string, string, Uint8Array]> = [
      ['POST', '/api/v1/sign', 'message/rfc822', gz],
      ['POST', '/api/v1/verify', 'message/rfc822', gz],
      ['POST', '/api/v1/encrypt?to=reader@example.net', 'message/rfc822', gz],
      ['POST', '/api/v1/decrypt', 'message/rfc822', gz],
      ['POST', '/api/v1/identities', 'application/pkcs12', gzipSync(randomBytes(64))],
      ['PATCH', '/api/v1/tenants/acme/settings', 'application/json', gzipSync('{"dkim": true}')],
      ['POST', '/api/v1/batches', 'application/x-ndjson', gzipSync(JSON.stringify({ message: message.toString() }))],
    ];
    for (const [method, path, type, body] of requests) {
      for (const coding of ['gzip', 'x-gzip', 'deflate', 'br', 'identity, gzip']) {
        const r = await send(method, path, type, body, coding);
        const p = await r.json() as { code: string; detail: string };
        assert.equal(r.status, 415, `${method} ${path} ${coding}: ${p.detail}`);
        assert.equal(p.code, 'INVALID_ARGUMENT');
        assert.match(p.detail, /content coding \(Content-Encoding: /);
        assert.equal(r.headers.get('accept-encoding'), 'identity');
      }
    }
    // identity is no coding: the message is read (and refused for what it is, no certificate for its From).
    const plain = await send('POST', '/api/v1/sign', 'message/rfc822', message, 'identity');
    assert.notEqual(plain.status, 415, await plain.text());
    assert.equal(Number((await store.engine.all('SELECT COUNT(*) AS n FROM batches'))[0]!.n), 0, 'no batch kept');
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
