/**
 * A batch worker (bulk-worker.ts) that dies the way a worker out of memory or hit by
 * a native crash does, on chosen messages, for cli-batch-crash.test.ts:
 * - directory batch: while writing an output whose name ends in "-crash.eml", after its
 *   temporary file is written and before the rename (the worst moment);
 * - mbox batch: on receiving a block that holds "CRASH-HERE".
 * process.exit() in a worker ends that thread only, as such a crash does.
 */
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { parentPort } from 'node:worker_threads';

const rename = fs.renameSync;
fs.renameSync = (from: fs.PathLike, to: fs.PathLike): void => {
  if (String(to).endsWith('-crash.eml')) process.exit(70);
  rename(from, to);
};
syncBuiltinESMExports();

// Registered before the real worker's listener, so it runs first.
parentPort!.on('message', (task: { kind: string; data?: Uint8Array }) => {
  if (task.kind === 'mbox' && Buffer.from(task.data!.buffer, task.data!.byteOffset, task.data!.byteLength).includes('CRASH-HERE')) process.exit(70);
});

await import('../../src/cli/bulk-worker.ts');
