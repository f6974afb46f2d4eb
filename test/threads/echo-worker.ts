// A worker for worker-pool.test.ts: echoes its input, or dies the ways real workers can.
// An overlapping pool sends { task, input } and takes { task, output } back, in any order,
// over the pool's own port (workerData.pool); the others over parentPort.
import { parentPort, threadId, workerData } from 'node:worker_threads';
import { overlappingPort } from '../../src/threads/worker-pool.ts';

const own = (workerData as { pool?: unknown } | undefined)?.pool !== undefined;
const port = own ? overlappingPort(workerData) : parentPort!;

port.on('message', (m: string | { task: number; input: string }) => {
  const input = typeof m === 'string' ? m : m.input;
  const answer = (output: string) => port.postMessage(typeof m === 'string' ? output : { task: m.task, output });
  if (input === 'exit') process.exit(7); // ends this thread only
  if (input === 'where') answer(own ? 'pool' : 'parent');
  else if (input === 'throw') setImmediate(() => { throw new Error('uncaught in worker'); });
  else if (input === 'slow') setTimeout(() => answer(`${input}@${threadId}`), 300);
  else if (input === 'quit-when-idle') {
    // Answers, then ends by itself with nothing in flight (as a gateway worker whose audit thread is gone).
    answer(`${input}@${threadId}`);
    setTimeout(() => process.exit(0), 50);
  } else answer(`${input}@${threadId}`);
});
