/**
 * One output of a directory batch, written by the worker that produced it ('wx':
 * never an existing file), complete and closed when this returns, and published
 * later, once its bytes are on stable storage, so that an output's name only ever
 * shows a complete output, even after a crash or a power cut:
 * - into an existing OUTDIR, a temporary file in OUTDIR that gets its name by
 *   rename(2) with its group (sync-output-directory.ts);
 * - into a new OUTDIR, its own name in the batch's hidden staging directory, which
 *   becomes OUTDIR at the end (staging-directory.ts).
 * Synchronous calls: the worker has nothing else to do meanwhile, and they skip the
 * thread-pool round trips of fs/promises.
 */
import { closeSync, openSync, readdirSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { threadId } from 'node:worker_threads';
import { KakitomeError } from '../errors.ts';
import { cannotWrite, childPath } from './io.ts';
import type { WriteGuard } from './write-guard.ts';

let written = 0;

/** The temporary names of this process: `.NAME.PID-THREAD-N.tmp`, hidden, unique, recognisable. */
export function temporaryNamePattern(pid = process.pid): RegExp {
  return new RegExp(`^\\..+\\.${pid}-\\d+-\\d+\\.tmp$`);
}

/** Writes `data` for output `name` to a new temporary file in `dir`; returns that file's name (in `dir`). */
export function writeBatchTemporary(dir: string, name: string, data: Uint8Array, guard: WriteGuard): string {
  return writeNewFile(dir, name, `.${name}.${process.pid}-${threadId}-${++written}.tmp`, data, guard);
}

/**
 * Writes `data` for output `name` under that name in a staging directory
 * (staging-directory.ts), which no reader ever sees as OUTDIR until every file in
 * it is complete and on stable storage: no temporary name, no rename per file.
 */
export function writeBatchStaged(stagingDir: string, name: string, data: Uint8Array, guard: WriteGuard): string {
  return writeNewFile(stagingDir, name, name, data, guard);
}

/** Creates `file` in `dir` ('wx': never an existing file) with `data`, complete and closed, or removes it and throws. */
function writeNewFile(dir: string, name: string, file: string, data: Uint8Array, guard: WriteGuard): string {
  const path = childPath(dir, name);
  if (!guard.enter()) throw new KakitomeError('INVALID_ARGUMENT', `Not written ${path}: the batch was interrupted.`);
  const tmp = childPath(dir, file);
  let fd: number | undefined;
  try {
    fd = openSync(tmp, 'wx', 0o600);
    for (let off = 0; off < data.byteLength;) off += writeSync(fd, data, off, data.byteLength - off);
    closeSync(fd);
    return file;
  } catch (e) {
    // Only a file this call created is removed ('wx' refused any other).
    if (fd !== undefined) {
      try { closeSync(fd); } catch { /* closing is best effort here */ }
      try { unlinkSync(tmp); } catch { /* already gone */ }
    }
    throw cannotWrite(path, e);
  } finally {
    guard.leave();
  }
}

/** Removes this process's temporary files from `dir`: those not yet named when a batch stops early, and any a dead worker left. */
export function removeTemporaryFiles(dir: string): void {
  const ours = temporaryNamePattern();
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const n of names) {
    if (ours.test(n)) try { unlinkSync(join(dir, n)); } catch { /* already gone */ }
  }
}
