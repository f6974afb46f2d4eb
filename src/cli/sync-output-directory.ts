/**
 * The durability point of a directory batch. Outputs are renamed into place
 * without an fsync each (an fsync per 2 KB file costs more than signing it); once
 * the last one is in place, this makes them all durable at once, and the batch
 * exits only after it returned: one syncfs(2) of OUTDIR's file system, through
 * `sync -f` (coreutils and busybox on Linux; Node has no syncfs), then an fsync of
 * OUTDIR for the renames. Where `sync -f` is missing or fails, every written file
 * is fsync'd instead (slower, same guarantee), and a file that cannot be flushed
 * fails the batch.
 */
import { spawn } from 'node:child_process';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { KakitomeError } from '../errors.ts';
import { describeFsError, syncDirectory } from './io.ts';

/** Absolute paths only: the batch never runs a `sync` found through PATH. */
const SYNC_PROGRAMS = ['/usr/bin/sync', '/bin/sync'];

/** fsyncs in flight when falling back to one per file (they share journal commits). */
const FSYNC_CONCURRENCY = 16;

function syncFileSystem(program: string, dir: string): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn(program, ['-f', dir], { stdio: 'ignore', env: {} });
    child.on('error', () => resolve(false));
    child.on('close', (code) => resolve(code === 0));
  });
}

async function fsyncFile(path: string): Promise<void> {
  const h = await open(path, 'r');
  try { await h.sync(); } finally { await h.close(); }
}

/** Returns once every file named in `written` (names in `dir`) is on stable storage. */
export async function syncOutputDirectory(dir: string, written: readonly string[], options: { programs?: readonly string[] } = {}): Promise<void> {
  if (written.length === 0) return;
  let synced = false;
  for (const program of options.programs ?? SYNC_PROGRAMS) {
    if ((synced = await syncFileSystem(program, dir))) break;
  }
  if (!synced) {
    const failed: string[] = [];
    let next = 0;
    await Promise.all(Array.from({ length: Math.min(FSYNC_CONCURRENCY, written.length) }, async () => {
      while (next < written.length) {
        const name = written[next++]!;
        // A file removed or replaced since it was written is someone else's now.
        await fsyncFile(join(dir, name)).catch((e: NodeJS.ErrnoException) => {
          if (e.code !== 'ENOENT') failed.push(`${name} (${describeFsError(e)})`);
        });
      }
    }));
    if (failed.length > 0) {
      throw new KakitomeError('INVALID_ARGUMENT', `${failed.length} output file(s) in ${dir} could not be flushed to disk and may be lost after a crash: ${failed.slice(0, 5).join(', ')}${failed.length > 5 ? ', ...' : ''}. Check the device, then run the batch again.`);
    }
  }
  await syncDirectory(dir);
}
