// A worker for worker-pool.test.ts: echoes its input, or dies the ways real workers can.
// An overlapping pool sends { task, input } and takes { task, output } back, in any order.
import { parentPort, threadId } from 'node:worker_threads';

parentPort!.on('message', (m: string | { task: number; input: string }) => {
  const input = typeof m === 'string' ? m : m.input;
  const answer = (output: string) => parentPort!.postMessage(typeof m === 'string' ? output : { task: m.task, output });
  if (input === 'exit') process.exit(7); // ends this thread only
  if (input === 'throw') setImmediate(() => { throw new Error('uncaught in worker'); });
  else if (input === 'slow') setTimeout(() => answer(`${input}@${threadId}`), 300);
  else if (input === 'quit-when-idle') {
    // Answers, then ends by itself with nothing in flight (as a gateway worker whose audit thread is gone).
    answer(`${input}@${threadId}`);
    setTimeout(() => process.exit(0), 50);
  } else answer(`${input}@${threadId}`);
});
