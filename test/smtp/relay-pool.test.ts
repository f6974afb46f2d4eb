/**
 * RelayPool (src/smtp/relay-message.ts): connections to the next hop are reused
 * between messages, and only when that is safe: after a transaction that ended
 * with its final reply, while fresh, and not after the next hop closed them. A real
 * SMTP server (smtp-server, the gateway tests' sink) is the next hop.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Readable } from 'node:stream';
import { RelayPool, relayMessage } from '../../src/smtp/relay-message.ts';
import { draft, Sink, waitFor } from '../gateway/gateway-fixture.ts';

let sink: Sink;
before(async () => {
  sink = await new Sink().start();
});
after(() => sink.stop());

const envelope = { from: 'alice@corp.test', to: ['carol@example.com'] };
const message = (n: number) => draft('alice@corp.test', 'carol@example.com', `Message ${n}`, `Body ${n}`);

function reset(): void {
  sink.deliveries.length = 0;
  sink.mode = 'accept';
  sink.connections = 0;
}

test('messages one after another share one connection; close() ends it', async () => {
  reset();
  const pool = new RelayPool({ nextHop: { host: '127.0.0.1', port: sink.port }, name: 'test' });
  for (let i = 0; i < 5; i++) assert.equal((await pool.relay(envelope, message(i), 10_000))[0]!.status, 'accepted');
  assert.equal(sink.deliveries.length, 5);
  assert.equal(sink.connections, 1);
  assert.equal(pool.idle, 1);
  pool.close();
  assert.equal(pool.idle, 0);
});

test('messages at once open a connection each, and at most maxIdle stay', async () => {
  reset();
  const pool = new RelayPool({ nextHop: { host: '127.0.0.1', port: sink.port }, name: 'test', maxIdle: 2 });
  const outcomes = await Promise.all([0, 1, 2, 3].map((i) => pool.relay(envelope, message(i), 10_000)));
  assert.ok(outcomes.every((o) => o[0]!.status === 'accepted'));
  assert.equal(sink.connections, 4);
  assert.equal(pool.idle, 2);
  pool.close();
});

test('a failed transaction closes its connection; the next message gets a new one', async () => {
  reset();
  const pool = new RelayPool({ nextHop: { host: '127.0.0.1', port: sink.port }, name: 'test' });
  assert.equal((await pool.relay(envelope, message(1), 10_000))[0]!.status, 'accepted');
  sink.mode = 'tempfail';
  const deferred = (await pool.relay(envelope, message(2), 10_000))[0]!;
  assert.equal(deferred.status, 'temporary');
  assert.equal(deferred.code, 451);
  assert.equal(pool.idle, 0, 'not reused after a 4xx');
  sink.mode = 'accept';
  assert.equal((await pool.relay(envelope, message(3), 10_000))[0]!.status, 'accepted');
  assert.equal(sink.connections, 2);
  pool.close();
});

test('a connection the next hop closed while idle leaves the pool: the next message is not lost on it', async () => {
  reset();
  const pool = new RelayPool({ nextHop: { host: '127.0.0.1', port: sink.port }, name: 'test' });
  assert.equal((await pool.relay(envelope, message(1), 10_000))[0]!.status, 'accepted');
  for (const c of (sink.server as unknown as { connections: Set<{ _socket: { destroy(): void } }> }).connections) c._socket.destroy();
  // The pool sees the close when its socket's events run: wait for that (a fixed 100 ms could pass first on a loaded machine).
  await waitFor('the pool to drop the closed connection', () => pool.idle === 0);
  assert.equal((await pool.relay(envelope, message(2), 10_000))[0]!.status, 'accepted');
  assert.equal(sink.deliveries.length, 2);
  assert.equal(sink.connections, 2);
  pool.close();
});

test('an idle connection older than idleMs is not used again', async () => {
  reset();
  const pool = new RelayPool({ nextHop: { host: '127.0.0.1', port: sink.port }, name: 'test', idleMs: 50 });
  assert.equal((await pool.relay(envelope, message(1), 10_000))[0]!.status, 'accepted');
  await sleep(120);
  assert.equal(pool.idle, 0, 'closed once idleMs passed, not left holding one of the next hop\'s processes until the next message');
  assert.equal((await pool.relay(envelope, message(2), 10_000))[0]!.status, 'accepted');
  assert.equal(sink.connections, 2);
  pool.close();
});

test('a streamed body is relayed as it is read (size announced); a stream that fails ends the transaction without the final dot: nothing delivered, a temporary outcome', async () => {
  reset();
  const pool = new RelayPool({ nextHop: { host: '127.0.0.1', port: sink.port }, name: 'test' });
  const whole = Buffer.concat([message(1), Buffer.from(`${'x'.repeat(998)}\r\n`.repeat(3000))]);
  const pieces = (fail: boolean) => Readable.from((async function* () {
    for (let p = 0; p < whole.length; p += 65536) {
      if (fail && p > whole.length / 2) throw new Error('the spool could not be read');
      yield whole.subarray(p, p + 65536);
    }
  })());
  assert.equal((await pool.relay(envelope, { size: whole.length, stream: () => pieces(false) }, 10_000))[0]!.status, 'accepted');
  assert.deepEqual(sink.deliveries[0]!.message, whole);
  const failed = await pool.relay(envelope, { size: whole.length, stream: () => pieces(true) }, 10_000);
  assert.equal(failed[0]!.status, 'temporary', failed[0]!.response);
  await sleep(200);
  assert.equal(sink.deliveries.length, 1, 'the half-sent copy was not delivered');
  pool.close();
});

test('relayMessage keeps nothing open; a next hop that is down is a temporary outcome', async () => {
  reset();
  assert.equal((await relayMessage({ nextHop: { host: '127.0.0.1', port: sink.port }, name: 'test', timeoutMs: 10_000 }, envelope, message(1)))[0]!.status, 'accepted');
  const down = await relayMessage({ nextHop: { host: '127.0.0.1', port: 1 }, name: 'test', timeoutMs: 10_000 }, envelope, message(2));
  assert.equal(down[0]!.status, 'temporary');
  assert.equal(down[0]!.code, 0);
});
