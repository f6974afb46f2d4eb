/**
 * The batch thread's explicit collections (src/server/batches/collect-garbage.ts):
 * a full collection frees the Buffers a chunk left behind, and is not made when
 * there is nothing to free.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PerformanceObserver, constants } from 'node:perf_hooks';
import { collectGarbageAbove, releaseUnusedHeap } from '../../src/server/batches/collect-garbage.ts';

const MiB = 1024 * 1024;

/** Full collections made while `fn` runs (perf_hooks reports them a little later). */
async function majorCollections(fn: () => void): Promise<number> {
  let n = 0;
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) if ((e as unknown as { detail: { kind: number } }).detail.kind === constants.NODE_PERFORMANCE_GC_MAJOR) n++;
  });
  observer.observe({ entryTypes: ['gc'] });
  fn();
  // Node queues a collection's entry with setImmediate, then the observer's callback with another:
  // turns of the event loop, not time, bring them (a loaded machine can let 50 ms pass before the first turn).
  await new Promise((resolve) => setTimeout(resolve, 50));
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
  observer.disconnect();
  return n;
}

/** Buffers of `bytes` in all, dead once this returns. */
function leaveGarbage(bytes: number): void {
  const buffers = Array.from({ length: 8 }, () => Buffer.alloc(bytes / 8, 2));
  assert.equal(buffers.length, 8);
}

test('memory an isolate holds for good above the limit does not make a full collection after every chunk; Buffers that died since do', async () => {
  const limit = 4 * MiB;
  releaseUnusedHeap();
  // Alive throughout, three times the limit: a chunk in hand, a module's WebAssembly memory.
  const held = Buffer.alloc(3 * limit, 1);
  const first = await majorCollections(() => collectGarbageAbove(limit));
  assert.ok(first <= 1, `${first} collections`);
  const more = await majorCollections(() => {
    for (let i = 0; i < 5; i++) collectGarbageAbove(limit);
  });
  assert.equal(more, 0, 'nothing was freed by the first one, so no more are made');

  // A chunk's worth of Buffers that died since: collected.
  leaveGarbage(2 * limit);
  assert.equal(await majorCollections(() => collectGarbageAbove(limit)), 1);
  assert.equal(held[0], 1);
});
