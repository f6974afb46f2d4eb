/**
 * The gateway's audit thread (src/gateway/audit-thread.ts): it commits the rows
 * each client (a crypto worker) sends over its own port, in the store, with the
 * client's actor; when the thread is gone, a client's port closes, so its calls
 * fail instead of waiting for ever (the worker then ends and is replaced), and the
 * next connect starts another thread.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { MessagePort } from 'node:worker_threads';
import { AuditThread } from '../../src/gateway/start-audit-thread.ts';
import { ThreadChannel } from '../../src/server/workers/thread-channel.ts';
import { timeOrderedId } from '../../src/store/time-ordered-id.ts';
import type { AuditRow } from '../../src/store/record-key-use.ts';
import type { Store } from '../../src/store/store.ts';
import { createWorld, openWorldStore, type GatewayWorld } from './gateway-fixture.ts';

let world: GatewayWorld;
let store: Store;

before(async () => {
  world = await createWorld();
  store = await openWorldStore(world);
});

after(async () => {
  await store?.close();
  world?.cleanup();
});

/** A client as transform-worker.ts makes one: its calls fail once the port closes. */
function client(port: MessagePort): (rows: AuditRow[]) => Promise<void> {
  const channel = new ThreadChannel(port);
  port.on('close', () => channel.close(new Error('the audit thread is gone')));
  return (rows) => channel.call<void>('audit', rows);
}

const row = (actor: string, object: string): AuditRow => [timeOrderedId(), new Date().toISOString(), actor, 'key.use.decrypt', object, null];
const rowsOf = async (actor: string) => (await store.engine.all('SELECT object FROM audit_log WHERE actor = ? ORDER BY object', [actor])).map((r) => String(r.object));

test('two clients\' rows are committed by the one thread, each with its own actor; once the thread is gone a client\'s call fails and the next connect starts another', { timeout: 60_000 }, async () => {
  const thread = new AuditThread({ store: { home: world.home } });
  try {
    const a = client(thread.connect());
    const b = client(thread.connect());
    await Promise.all([a([row('worker-a', '1'), row('worker-a', '2')]), b([row('worker-b', '3')])]);
    assert.deepEqual(await rowsOf('worker-a'), ['1', '2']);
    assert.deepEqual(await rowsOf('worker-b'), ['3']);
    assert.equal(thread.started, 1);

    await thread.close();
    await assert.rejects(a([row('worker-a', 'lost')]), /gone/);
    assert.deepEqual(await rowsOf('worker-a'), ['1', '2']);

    const c = client(thread.connect());
    await c([row('worker-c', '4')]);
    assert.equal(thread.started, 2);
    assert.deepEqual(await rowsOf('worker-c'), ['4']);
  } finally {
    await thread.close();
  }
});
