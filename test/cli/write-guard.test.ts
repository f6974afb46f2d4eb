import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { WriteGuard } from '../../src/cli/write-guard.ts';

test('stop() waits for the write under way (in another thread) and refuses every later one', async () => {
  const guard = new WriteGuard();
  // A worker that enters, holds the write for 200 ms, then leaves.
  const body = `
    const { workerData, parentPort } = require('node:worker_threads');
    const cells = new Int32Array(workerData);
    Atomics.add(cells, 1, 1);
    parentPort.postMessage('in');
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
    Atomics.sub(cells, 1, 1);
    Atomics.notify(cells, 1);`;
  const w = new Worker(body, { eval: true, workerData: guard.buffer });
  await new Promise((resolve) => w.once('message', resolve));
  const t0 = Date.now();
  assert.equal(guard.stop(5000), true);
  assert.ok(Date.now() - t0 >= 100, 'stop() returned only after the write ended');
  assert.equal(guard.enter(), false, 'no write starts once stopping');
  await w.terminate();
});

test('stop() gives up after its timeout when a writer never leaves (a worker that died mid-write)', () => {
  const guard = new WriteGuard();
  assert.equal(guard.enter(), true);
  const t0 = Date.now();
  assert.equal(guard.stop(100), false);
  assert.ok(Date.now() - t0 >= 90);
  guard.leave();
  assert.equal(guard.stop(100), true);
});
