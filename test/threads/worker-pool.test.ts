import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WorkerPool, overlappingPort } from '../../src/threads/worker-pool.ts';

const url = new URL('./echo-worker.ts', import.meta.url);

test('tasks spread over the workers and all complete', async () => {
  const pool = new WorkerPool<string, string>(url, undefined, 2);
  try {
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => pool.run(`t${i}`)));
    assert.deepEqual(answers.map((a) => a.split('@')[0]), Array.from({ length: 20 }, (_, i) => `t${i}`));
    assert.equal(new Set(answers.map((a) => a.split('@')[1])).size, 2);
  } finally {
    await pool.close();
  }
});

test('a worker that dies fails only its own task; the pool replaces it and goes on', async () => {
  const pool = new WorkerPool<string, string>(url, undefined, 2);
  try {
    const results = await Promise.allSettled(['a', 'exit', 'b', 'throw', 'c', 'd', 'e'].map((t) => pool.run(t)));
    assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled', 'fulfilled']);
    assert.match(String((results[1] as PromiseRejectedResult).reason), /exited with code 7/);
    assert.match(String((results[3] as PromiseRejectedResult).reason), /uncaught in worker/);
    assert.match(await pool.run('after'), /^after@/);
  } finally {
    await pool.close();
  }
});

test('tasks queued behind one that kills its worker never started: they run on the new worker instead of failing with it', async () => {
  const pool = new WorkerPool<string, string>(url, undefined, 1, 3);
  try {
    const results = await Promise.allSettled(['exit', 'b', 'c'].map((t) => pool.run(t)));
    assert.deepEqual(results.map((r) => r.status), ['rejected', 'fulfilled', 'fulfilled']);
    assert.equal(pool.crashed, 1);
  } finally {
    await pool.close();
  }
});

test('workers that cannot start make the pool give up instead of respawning forever', async () => {
  const pool = new WorkerPool<string, string>(new URL('./no-such-worker.ts', import.meta.url), undefined, 1);
  try {
    await assert.rejects(pool.run('x'));
    await assert.rejects(pool.run('y'), /closed|Cannot find module|ERR_MODULE_NOT_FOUND/);
  } finally {
    await pool.close();
  }
});

test('overlapping workers run their tasks at once: one that dies takes every task it had down (none is run twice), and the pool goes on', async () => {
  const pool = new WorkerPool<string, string>(url, undefined, 1, 3, { overlapping: true });
  try {
    const results = await Promise.allSettled(['exit', 'b', 'c'].map((t) => pool.run(t)));
    assert.deepEqual(results.map((r) => r.status), ['rejected', 'rejected', 'rejected']);
    assert.equal(pool.crashed, 1);
    assert.match(await pool.run('after'), /^after@/);
  } finally {
    await pool.close();
  }
});

test('overlapping workers answer each task when it is done: a slow one holds up neither the others nor their answers', async () => {
  const pool = new WorkerPool<string, string>(url, undefined, 1, 3, { overlapping: true });
  try {
    const done: string[] = [];
    await Promise.all(['slow', 'b', 'c'].map(async (t) => done.push((await pool.run(t)).split('@')[0]!)));
    assert.deepEqual(done, ['b', 'c', 'slow']);
  } finally {
    await pool.close();
  }
});

test('an overlapping pool speaks to its workers over a port of its own, not parentPort (whose every message costs the main thread a getenv)', async () => {
  for (const [overlapping, where] of [[true, 'pool'], [false, 'parent']] as const) {
    const pool = new WorkerPool<string, string>(url, undefined, 1, 2, { overlapping });
    try {
      assert.deepEqual(await Promise.all([pool.run('where'), pool.run('where')]), [where, where]);
    } finally {
      await pool.close();
    }
  }
  assert.throws(() => overlappingPort({}), /workerData.pool is missing/);
});

test('a worker that ends by itself while idle is replaced: the next task runs on a new one', { timeout: 20_000 }, async () => {
  for (const overlapping of [false, true]) {
    const pool = new WorkerPool<string, string>(url, undefined, 1, 2, { overlapping });
    try {
      const first = (await pool.run('quit-when-idle')).split('@')[1];
      // The thread ends 50 ms after answering, on its own schedule (a loaded machine can delay it past any fixed wait):
      // wait until the pool has seen the exit and replaced it.
      const deadline = Date.now() + 10_000;
      while (pool.crashed === 0) {
        assert.ok(Date.now() < deadline, 'the idle worker\'s exit was never seen');
        await new Promise((r) => setTimeout(r, 20));
      }
      const next = (await pool.run('x')).split('@')[1];
      assert.notEqual(next, first);
    } finally {
      await pool.close();
    }
  }
});

test('shrink() ends the idle workers beyond the size asked (none replaced, none counted as crashed); the rest run every task', async () => {
  const pool = new WorkerPool<string, string>(url, undefined, 3, 2);
  try {
    const first = pool.run('first');
    pool.shrink(1);
    assert.equal(pool.size, 1);
    const answers = await Promise.all([first, ...Array.from({ length: 10 }, (_, i) => pool.run(`t${i}`))]);
    assert.equal(new Set(answers.map((a) => a.split('@')[1])).size, 1, 'one worker left');
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(pool.crashed, 0);
    assert.equal(pool.size, 1);
  } finally {
    await pool.close();
  }
});
