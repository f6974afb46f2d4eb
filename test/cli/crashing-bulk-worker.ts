/**
 * A batch worker (bulk-worker.ts) that dies the way a worker out of memory or hit by
 * a native crash does, on chosen messages, for cli-batch-crash.test.ts:
 * - directory batch: while writing the output of a message whose name ends in
 *   "-crash.eml", just after its file is created (the worst moment: a partial file
 *   exists), a temporary file in OUTDIR or its own name in a staging directory;
 * - mbox batch: on receiving a block that holds "CRASH-HERE".
 * process.exit() in a worker ends that thread only, as such a crash does.
 */
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { parentPort } from 'node:worker_threads';

const openSync = fs.openSync;
fs.openSync = ((path: fs.PathLike, flags: fs.OpenMode, mode?: fs.Mode | null): number => {
  const fd = openSync(path, flags, mode);
  if (flags === 'wx' && /-crash\.eml(\.\d+-\d+-\d+\.tmp)?$/.test(String(path))) process.exit(70);
  return fd;
}) as typeof fs.openSync;
syncBuiltinESMExports();

// Registered before the real worker's listener, so it runs first.
parentPort!.on('message', (task: { kind: string; data?: Uint8Array }) => {
  if (task.kind === 'mbox' && Buffer.from(task.data!.buffer, task.data!.byteOffset, task.data!.byteLength).includes('CRASH-HERE')) process.exit(70);
});

await import('../../src/cli/bulk-worker.ts');
