/**
 * The durability point of a directory batch. Outputs are renamed into place
 * without an fsync each (an fsync per 2 KB file costs more than signing it); once
 * the last one is in place, this makes them all durable at once, and the batch
 * exits only after it returned: one syncfs(2) of OUTDIR's file system, through
 * `sync -f` (coreutils and busybox on Linux; Node has no syncfs), then an fsync of
 * OUTDIR for the renames. Where `sync -f` is missing or fails, every written file
 * is fsync'd instead (slower, same guarantee), and a file that cannot be flushed
 * fails the batch.
 *
 * OutputFlusher starts such a sync in the background every FLUSH_EVERY outputs
 * while the batch runs, so that the disk writes overlap the signing and the final
 * sync has little left to do (20,000 outputs of 4 KB took 1.3 s to sync at the end
 * here).
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

/** Outputs between two background syncs. */
const FLUSH_EVERY = 2048;

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

/** The first of `programs` that syncs `dir`'s file system, or undefined when none can. */
async function syncWithFirstWorking(programs: readonly string[], dir: string): Promise<string | undefined> {
  for (const program of programs) {
    if (await syncFileSystem(program, dir)) return program;
  }
  return undefined;
}

/** Returns once every file named in `written` (names in `dir`) is on stable storage. */
export async function syncOutputDirectory(dir: string, written: readonly string[], options: { programs?: readonly string[] } = {}): Promise<void> {
  if (written.length === 0) return;
  const synced = (await syncWithFirstWorking(options.programs ?? SYNC_PROGRAMS, dir)) !== undefined;
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

/**
 * The outputs of one directory batch on their way to disk: record each written
 * name with written(); finish() is the durability point.
 */
export class OutputFlusher {
  readonly names: string[] = [];
  readonly #dir: string;
  readonly #programs: readonly string[];
  #background: Promise<void> | undefined;
  #since = 0;
  #disabled = false;

  constructor(dir: string, options: { programs?: readonly string[] } = {}) {
    this.#dir = dir;
    this.#programs = options.programs ?? SYNC_PROGRAMS;
  }

  written(name: string): void {
    this.names.push(name);
    if (++this.#since < FLUSH_EVERY || this.#background !== undefined || this.#disabled) return;
    this.#since = 0;
    // Best effort: only finish() promises anything.
    this.#background = syncWithFirstWorking(this.#programs, this.#dir).then((program) => {
      if (program === undefined) this.#disabled = true;
      this.#background = undefined;
    });
  }

  /** Returns once every output recorded is on stable storage. */
  async finish(): Promise<void> {
    await this.#background;
    // A background sync that failed may have been told of a write-back error that a
    // later syncfs would not repeat: then every file is fsync'd, each reporting its own.
    await syncOutputDirectory(this.#dir, this.names, { programs: this.#disabled ? [] : this.#programs });
  }
}
