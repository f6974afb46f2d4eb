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
