// A worker for worker-pool.test.ts: echoes its input, or dies the ways real workers can.
import { parentPort, threadId } from 'node:worker_threads';

parentPort!.on('message', (input: string) => {
  if (input === 'exit') process.exit(7); // ends this thread only
  if (input === 'throw') setImmediate(() => { throw new Error('uncaught in worker'); });
  else parentPort!.postMessage(`${input}@${threadId}`);
});
