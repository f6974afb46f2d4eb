/**
 * One output of a directory batch, written by the worker that produced it: a
 * temporary file in OUTDIR ('wx': never an existing file), then rename(2) onto its
 * name, so the name only ever shows a complete output, even if the process is
 * killed. No fsync per file: the batch makes every output durable at once when it
 * ends (sync-output-directory.ts). Synchronous calls: the worker has nothing else
 * to do meanwhile, and they skip the thread-pool round trips of fs/promises.
 * rename(2) replaces the directory entry itself and never writes through a link;
 * the batch refuses names that are links or special files before it starts.
 */
import { closeSync, openSync, readdirSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { threadId } from 'node:worker_threads';
import { KakitomeError } from '../errors.ts';
import { cannotWrite } from './io.ts';
import type { WriteGuard } from './write-guard.ts';

let written = 0;

/** The temporary names of this process: `.NAME.PID-THREAD-N.tmp`, hidden, unique, recognisable. */
export function temporaryNamePattern(pid = process.pid): RegExp {
  return new RegExp(`^\\..+\\.${pid}-\\d+-\\d+\\.tmp$`);
}

export function writeBatchFile(dir: string, name: string, data: Uint8Array, guard: WriteGuard): void {
  const path = join(dir, name);
  if (!guard.enter()) throw new KakitomeError('INVALID_ARGUMENT', `Not written ${path}: the batch was interrupted.`);
  const tmp = join(dir, `.${name}.${process.pid}-${threadId}-${++written}.tmp`);
  let fd: number | undefined;
  try {
    fd = openSync(tmp, 'wx', 0o600);
    for (let off = 0; off < data.byteLength;) off += writeSync(fd, data, off, data.byteLength - off);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, path);
  } catch (e) {
    if (fd !== undefined) try { closeSync(fd); } catch { /* closing is best effort here */ }
    try { unlinkSync(tmp); } catch { /* never created, or already gone */ }
    throw cannotWrite(path, e);
  } finally {
    guard.leave();
  }
}

/** Removes this process's temporary files from `dir` (after a worker died between creating one and renaming it). */
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
