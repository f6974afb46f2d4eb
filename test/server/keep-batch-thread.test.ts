/**
 * The keeper's bound on restarts (src/server/batches/keep-batch-thread.ts): a batch
 * thread that keeps dying is started again with a growing back-off until it died
 * more than `limit` times in the window, then stays stopped (what /healthz answers
 * 503 for, as the last test checks through the app); a start that fails counts as a
 * death; each dead thread's chunks are given back under its name. The threads here
 * are only what the keeper sees of one (its `failed` promise): a real thread's death
 * on a real `kakitome serve` is serve-batch-thread-restart.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { keepBatchThread } from '../../src/server/batches/keep-batch-thread.ts';
import type { BatchThread } from '../../src/server/batches/start-batch-thread.ts';
import type { LogEntry } from '../../src/server/service-context.ts';
import { randomBytes } from 'node:crypto';
import { masterKeyFromBytes } from '../../src/keys/master-key.ts';
import { Store } from '../../src/store/store.ts';
import { openSqliteEngine } from '../../src/store/sqlite-engine.ts';
import { TenantDirectory } from '../../src/store/tenant-directory.ts';
import { createApp } from '../../src/server/create-app.ts';
import { Metrics } from '../../src/server/metrics.ts';
import { RateLimiter } from '../../src/server/rate-limiter.ts';

let nodes = 0;
function thread(): { t: BatchThread; die: (e: Error) => void; stopped: () => boolean } {
  let die: (e: Error) => void = () => {};
  let stopped = false;
  const failed = new Promise<Error>((resolve) => (die = resolve));
  const t: BatchThread = {
    wake: () => {}, storeUpload: () => Promise.reject(new Error('unused')), readOutputs: () => { throw new Error('unused'); },
    snapshot: async () => ({ requests: [], durations: [], operations: [['operation="batch-sign",outcome="ok"', 5]], inFlight: 0 }),
    stop: async () => void (stopped = true), failed, exited: failed.then(() => undefined), node: `node-${nodes++}`, storeTrouble: () => undefined,
  };
  return { t, die: (e) => die(e), stopped: () => stopped };
}

/** A keeper over threads that die when told, with these bounds. */
async function keepThreads(bounds: Parameters<typeof keepBatchThread>[3]) {
  const made: Array<ReturnType<typeof thread>> = [];
  const kept = await keepBatchThread(async () => {
    const m = thread();
    made.push(m);
    return m.t;
  }, () => {}, async () => 0, bounds);
  return { made, kept };
}

const until = async (what: () => boolean) => {
  const deadline = Date.now() + 5000;
  while (!what() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  assert.ok(what());
};

test('a thread that keeps dying is restarted with a back-off, up to the bound, then stays stopped; a failed start counts', async () => {
  const made: Array<ReturnType<typeof thread>> = [];
  let failStart = false;
  const logs: LogEntry[] = [];
  const released: string[] = [];
  const kept = await keepBatchThread(async () => {
    if (failStart) {
      failStart = false;
      throw new Error('the store cannot be opened');
    }
    const m = thread();
    made.push(m);
    return m.t;
  }, (e) => void logs.push(e), async (node) => (released.push(node), 1), { limit: 3, windowMs: 60_000, firstDelayMs: 20, maxDelayMs: 1000 });
  assert.deepEqual(kept.state(), { state: 'running' });
  // Counters as last reported are kept past the thread's death.
  assert.deepEqual((await kept.snapshot())?.operations, [['operation="batch-sign",outcome="ok"', 5]]);

  made[0]!.die(new Error('out of memory'));
  await until(() => kept.state().state === 'restarting');
  assert.equal(kept.current(), undefined);
  assert.match((kept.state() as { reason: string }).reason, /out of memory.*again in 0\.02 s/);
  await until(() => kept.state().state === 'running');
  assert.equal(kept.restarts(), 1);
  assert.equal(kept.current(), made[1]!.t);
  assert.deepEqual((await kept.snapshot())?.operations, [['operation="batch-sign",outcome="ok"', 10]]);

  // Second death; its restart fails (third death), the next start works: back-off 40 ms then 80 ms.
  failStart = true;
  made[1]!.die(new Error('uncaught'));
  await until(() => made.length === 3 && kept.state().state === 'running');
  assert.equal(kept.restarts(), 2);
  assert.deepEqual(logs.filter((l) => l.msg === 'batch thread failed').map((l) => [l.error, l.retryMs]), [['Error: out of memory', 20], ['Error: uncaught', 40], ['Error: the store cannot be opened', 80]]);

  // The fourth death in the window passes the bound of 3: stopped for good, no start more.
  made[2]!.die(new Error('native crash'));
  await until(() => kept.state().state === 'stopped');
  assert.match((kept.state() as { reason: string }).reason, /died 4 times .*native crash.*until it is restarted/);
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(made.length, 3);
  assert.equal(kept.current(), undefined);
  assert.equal(logs.find((l) => l.restart === false)?.msg, 'batch thread failed');
  // Each dead thread's chunks given back at once, under its own name.
  await until(() => released.length === 3);
  assert.deepEqual(released, ['node-0', 'node-1', 'node-2']);
  await kept.stop();
});

test('stop() during a back-off starts nothing more and stops the running thread', async () => {
  const { made, kept } = await keepThreads({ limit: 3, windowMs: 60_000, firstDelayMs: 100, maxDelayMs: 1000 });
  made[0]!.die(new Error('gone'));
  await until(() => kept.state().state === 'restarting');
  await kept.stop();
  await new Promise((r) => setTimeout(r, 250));
  assert.equal(made.length, 1);
});

test('/healthz over the keeper: 200 ok while running, 200 degraded while restarting, 503 with the reason once stopped', async (t) => {
  const store = await Store.open(openSqliteEngine(':memory:'), { masterKey: masterKeyFromBytes(randomBytes(32)), actor: 'tester' });
  t.after(() => store.close());
  const { made, kept } = await keepThreads({ limit: 1, windowMs: 60_000, firstDelayMs: 150, maxDelayMs: 1000 });
  t.after(() => kept.stop());
  const app = createApp({
    store, tenants: new TenantDirectory(store), config: { host: '127.0.0.1', port: 0, maxMessageBytes: 1024 * 1024, shutdownGraceMs: 1000, revocation: 'allow-unknown' },
    metrics: new Metrics(), rateLimiter: new RateLimiter(), log: () => {}, version: 'test', shuttingDown: () => false, batchHealth: () => kept.state(),
  });
  const health = async () => {
    const r = await app.request('/healthz');
    return [r.status, await r.json()] as [number, Record<string, unknown>];
  };
  assert.deepEqual(await health(), [200, { status: 'ok', batches: 'running' }]);
  made[0]!.die(new Error('heap out of memory'));
  await until(() => kept.state().state === 'restarting');
  const [status, body] = await health();
  assert.deepEqual([status, body.status, body.batches], [200, 'degraded', 'restarting']);
  assert.match(String(body.reason), /heap out of memory/);
  await until(() => kept.state().state === 'running');
  made[1]!.die(new Error('heap out of memory again'));
  await until(() => kept.state().state === 'stopped');
  const [stopped, problem] = await health();
  assert.equal(stopped, 503);
  assert.equal(problem.code, 'INTERNAL');
  assert.match(String(problem.detail), /died 2 times .*heap out of memory again.*until it is restarted/);
});
