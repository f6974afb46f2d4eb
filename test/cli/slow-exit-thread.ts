/**
 * Preloaded (`node --import`) into a CLI process by launcher-natural-end.test.ts: a worker
 * thread that is always inside a blocking child-process call (a 0.5 s sleep, which
 * terminating the thread does not interrupt), unref'd so that it keeps nothing alive.
 * Node stops worker threads at the start of every exit, process.exit() or natural,
 * and waits for this one: the main thread then spends up to half a second in the
 * exit path without running a garbage collection, the window in which a V8 thread
 * that asks for one (V8's --stress-concurrent-allocation, a concurrent compile in
 * nodejs/node#54918) starts waiting for it.
 */
import { Worker } from 'node:worker_threads';

new Worker("const { spawnSync } = require('node:child_process'); for (;;) spawnSync('sleep', ['0.5']);", { eval: true }).unref();
