/**
 * The gateway's listener and slow peers (docs/gateway.md "Slow clients"):
 * before-queue, Postfix passes an outside client's pace on. With policy limits of
 * 2 connections and a 1 s command deadline, two peers trickling a byte every 200 ms
 * are told 421 4.4.2 and counted (kakitome_gateway_slow_clients_total); a peer
 * trickling its message below minDataRate is cut and nothing reaches the next hop;
 * a normal peer is then served. Out-of-range limits in the policy stop the start.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startGateway, type RunningGateway } from '../../src/gateway/start-gateway.ts';
import type { Store } from '../../src/store/store.ts';
import { rawPeer as peer, trickle } from '../helpers/slow-smtp-client.ts';
import { createWorld, draft, openWorldStore, sendTo, Sink, type GatewayWorld } from './gateway-fixture.ts';

let world: GatewayWorld;
let store: Store;
let sink: Sink;
const logLines: Record<string, unknown>[] = [];

before(async () => {
  world = await createWorld();
  store = await openWorldStore(world);
  sink = await new Sink().start();
});

after(async () => {
  await sink?.stop();
  await store?.close();
  world?.cleanup();
});

function start(policy: Record<string, unknown>): Promise<RunningGateway> {
  const policyPath = join(world.dir, `policy-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(policyPath, JSON.stringify({ revocation: 'allow-unknown', ...policy }));
  return startGateway(
    { listen: { host: '127.0.0.1', port: 0 }, nextHop: { host: '127.0.0.1', port: sink.port }, domains: new Set(['corp.test']), authservId: 'mx.corp.test', lmtp: false, policyPath },
    store,
    (event, fields = {}) => logLines.push({ event, ...fields }),
  );
}

test('slow peers are told 421 4.4.2 and counted, a message trickled too slowly is not relayed, a normal peer is served', async () => {
  const gw = await start({ maxConnections: 2, commandTimeoutMs: 1000, minDataRate: 200, sessionTimeoutMs: 60_000 });
  try {
    const port = gw.listening.port;
    const slow = [peer(port), peer(port)];
    await Promise.all(slow.map((p) => p.waitFor(/^220 /m)));
    for (const p of slow) void trickle(p.socket, 'EHLO outside.example\r\nMAIL FROM:<someone@outside.example>\r\n', 200);
    await Promise.all(slow.map((p) => p.closed));
    for (const p of slow) assert.match(p.text(), /^421 4\.4\.2 [^\r]*Timeout: a command line must arrive within 1 s/m);
    assert.equal(await gw.metrics.value('kakitome_gateway_slow_clients_total', { limit: 'command' }), 2);

    const data = peer(port);
    await data.waitFor(/^220 /m);
    data.socket.write('EHLO outside.example\r\nMAIL FROM:<someone@outside.example>\r\nRCPT TO:<alice@corp.test>\r\nDATA\r\n');
    await data.waitFor(/^354 /m);
    void trickle(data.socket, `From: someone@outside.example\r\nTo: alice@corp.test\r\nSubject: slow\r\n\r\n${'y'.repeat(300)}\r\n.\r\n`, 50);
    await data.closed;
    assert.match(data.text(), /^421 4\.4\.2 [^\r]*less than 200 bytes\/s/m);
    assert.equal(await gw.metrics.value('kakitome_gateway_slow_clients_total', { limit: 'data' }), 1);
    assert.equal(sink.deliveries.length, 0);
    assert.ok(logLines.some((l) => l.event === 'slow-client' && l.limit === 'data' && typeof l.bytes === 'number'));
    assert.ok(!logLines.some((l) => l.event === 'message' && l.reply === 250));
    // Not an internal failure: no error line, no INTERNAL count.
    assert.ok(!logLines.some((l) => l.event === 'error'));
    assert.equal(await gw.metrics.value('kakitome_gateway_errors_total', { code: 'INTERNAL' }), 0);

    const r = await sendTo(port, 'someone@outside.example', ['alice@corp.test'], draft('someone@outside.example', 'alice@corp.test', 'normal', 'Hello.'));
    assert.equal(r.code, 250, r.response);
    assert.equal(sink.deliveries.length, 1);
  } finally {
    await gw.stop();
  }
});

test('limits out of range in the policy stop the gateway at start, naming the setting', async () => {
  await assert.rejects(start({ commandTimeoutMs: 10 }), /commandTimeoutMs/);
  await assert.rejects(start({ minDataRate: 0 }), /minDataRate/);
});
