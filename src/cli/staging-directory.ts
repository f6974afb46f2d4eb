/**
 * A directory batch into an OUTDIR that does not exist yet: OUTDIR appears once, at
 * the end, complete and on stable storage. Each worker writes its outputs under
 * their own names into a hidden staging directory beside OUTDIR,
 * `PARENT/.NAME.kakitome-staging-PID` (write-batch-file.ts writeBatchStaged); at the
 * end the batch makes them durable with one sync of the file system, renames the
 * staging directory to OUTDIR (one rename(2) for the whole batch) and fsyncs PARENT:
 * the durability point.
 *
 * Why: naming each output by its own rename (sync-output-directory.ts, still used
 * when OUTDIR exists) costs a second directory entry and a rename per message, about
 * 12-24 µs of CPU a 2 KB message on the VM where it was measured; the whole batch
 * costs one rename here.
 *
 * What a crash leaves: no OUTDIR at all (its name is never seen before every file
 * in it is whole and durable), and the staging directory, whose files are the
 * outputs written so far, whole but for at most one partial file per worker. The
 * next batch to the same OUTDIR removes a staging directory whose process is gone
 * (removeAbandonedStaging) and says so. An interrupted batch (Ctrl-C, SIGTERM)
 * removes its staging directory: nothing of it is published.
 */
import { mkdirSync, readdirSync, renameSync, rmSync, unlinkSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { cannotWrite, childPath, syncDirectory } from './io.ts';
import { SYNC_PROGRAMS, SyncHelper, findSyncProgram, fsyncEach, type Committed, type PendingOutput } from './sync-output-directory.ts';

/**
 * Outputs waiting in a staging directory, at most: each waits until the end of the
 * batch with its result (about 150 bytes of memory), so a larger batch writes into
 * OUTDIR by groups instead (sync-output-directory.ts) and its memory stays bounded.
 */
export const MAX_STAGED_OUTPUTS = 200_000;

/** Outputs between two background syncs (as OutputCommitter's groups: a sync -f is a few ms of CPU). */
const FLUSH_BEHIND_FILES = 4096;

/** The longest file name most file systems take (NAME_MAX). */
const NAME_MAX = 255;

const SUFFIX = '.kakitome-staging-';

/** The staging directory's name for OUTDIR (beside it, so that a rename makes it OUTDIR), or undefined when that name would be too long. */
export function stagingPathFor(outDir: string, pid = process.pid): string | undefined {
  const full = resolve(outDir);
  const name = `.${basename(full)}${SUFFIX}${pid}`;
  return Buffer.byteLength(name) > NAME_MAX ? undefined : join(dirname(full), name);
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes the staging directories an earlier batch to OUTDIR left when it was killed
 * or the system crashed (their process is gone); returns their paths. Those of a
 * batch still running are left alone.
 */
export function removeAbandonedStaging(outDir: string): string[] {
  const full = resolve(outDir);
  const prefix = `.${basename(full)}${SUFFIX}`;
  let names: string[];
  try {
    names = readdirSync(dirname(full));
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const n of names) {
    if (!n.startsWith(prefix)) continue;
    const pid = n.slice(prefix.length);
    if (!/^[1-9]\d{0,9}$/.test(pid) || Number(pid) === process.pid || isRunning(Number(pid))) continue;
    const path = join(dirname(full), n);
    try {
      rmSync(path, { recursive: true, force: true });
      removed.push(path);
    } catch { /* cannot remove it: it stays hidden, and is said again next time */ }
  }
  return removed;
}

export class StagingDirectory<T extends PendingOutput> {
  /** Where the workers write (their `outDir`). */
  readonly path: string;
  readonly #outDir: string;
  readonly #committed: Committed<T>;
  readonly #programs: readonly string[];
  #helper: SyncHelper | undefined;
  readonly #waiting: T[] = [];
  #published = false;
  #flushingBehind: Promise<void> | undefined;
  /** Asked for while one was running: starts when that one ends. */
  #flushAgain = false;
  #syncFailed = false;

  /** `helper`: the batch's (startBatchSyncHelper), kept if it covers the staging directory once made. */
  constructor(outDir: string, path: string, committed: Committed<T>, options: { programs?: readonly string[]; helper?: SyncHelper } = {}) {
    this.#outDir = resolve(outDir);
    this.path = path;
    this.#committed = committed;
    this.#programs = options.programs ?? SYNC_PROGRAMS;
    this.#helper = options.helper;
  }

  /** As OutputCommitter's: the sync helper is cheapest to start before the workers. */
  startSyncHelper(): void {
    const program = findSyncProgram(this.#programs);
    if (program !== undefined && this.#helper === undefined) this.#helper = new SyncHelper(program, this.path);
  }

  /** Creates the staging directory (and OUTDIR's parents); an OUTDIR that exists by now is refused by the caller's checks. */
  async create(): Promise<void> {
    await mkdir(dirname(this.#outDir), { recursive: true }).catch((e: NodeJS.ErrnoException) => {
      throw cannotWrite(this.#outDir, e);
    });
    try {
      // 0700 whatever the umask: under umask 000 another account could add files to
      // it, published in OUTDIR as if they were the batch's outputs.
      mkdirSync(this.path, { mode: 0o700 });
    } catch (e) {
      throw cannotWrite(this.#outDir, e);
    }
    if (this.#helper?.covers(this.path) === false) {
      this.#helper.close();
      this.#helper = undefined;
      this.startSyncHelper();
    }
  }

  /**
   * An output whose file in the staging directory is written and closed. Every
   * FLUSH_BEHIND_FILES outputs the file system is synced in the background (nobody
   * waits for it, it proves nothing), so that the kernel writes the outputs back
   * while the batch runs and the one sync that counts, at the end, has little left
   * (a failed one makes the end fsync each file instead).
   */
  add(output: T): void {
    this.#waiting.push(output);
    if (this.#waiting.length % FLUSH_BEHIND_FILES === 0) this.flushBehind();
  }

  /**
   * Syncs the file system in the background now (after the one running, if any).
   * The batch calls it when its last chunk is handed out, so that the sync that
   * counts, at the end, finds only the outputs of the last chunks unwritten.
   */
  flushBehind(): void {
    if (this.#helper === undefined) return;
    if (this.#flushingBehind !== undefined) {
      this.#flushAgain = true;
      return;
    }
    this.#flushAgain = false;
    this.#flushingBehind = this.#helper.sync().then((ok) => {
      // Linux reports a write-back error once: after a failed sync no later one is trusted.
      if (!ok) this.#syncFailed = true;
      this.#flushingBehind = undefined;
      if (this.#flushAgain) this.flushBehind();
    });
  }

  /**
   * The durability point: makes every output durable, publishes them all as OUTDIR,
   * then tells each its fate. Where OUTDIR appeared meanwhile (another program made
   * it), each output is renamed into it instead, as a batch into an existing OUTDIR
   * would.
   */
  async finish(): Promise<void> {
    const outputs = this.#waiting.splice(0);
    const failed = await this.#flush(outputs);
    for (const [output] of failed) {
      try { unlinkSync(childPath(this.path, output.temporary)); } catch { /* already gone: it was not published */ }
    }
    await syncDirectory(this.path);
    try {
      renameSync(this.path, this.#outDir);
    } catch {
      await this.#moveEach(outputs, failed);
    }
    this.#published = true;
    await syncDirectory(dirname(this.#outDir));
    for (const output of outputs) {
      const told = this.#committed(output, failed.get(output));
      if (told !== undefined) await told;
    }
  }

  /** OUTDIR exists after all: each output is renamed into it (a name taken by a directory fails that output alone). */
  async #moveEach(outputs: readonly T[], failed: Map<T, unknown>): Promise<void> {
    await mkdir(this.#outDir, { recursive: true, mode: 0o700 });
    for (const output of outputs) {
      if (failed.has(output)) continue;
      try {
        renameSync(childPath(this.path, output.temporary), childPath(this.#outDir, output.name));
      } catch (e) {
        failed.set(output, cannotWrite(childPath(this.#outDir, output.name), e));
      }
    }
    await syncDirectory(this.#outDir);
    rmSync(this.path, { recursive: true, force: true });
  }

  async #flush(outputs: readonly T[]): Promise<Map<T, unknown>> {
    this.#flushAgain = false;
    await this.#flushingBehind;
    const helper = this.#helper;
    this.#helper = undefined;
    const synced = helper !== undefined && !this.#syncFailed && await helper.sync();
    helper?.close();
    return synced ? new Map() : fsyncEach(this.path, outputs);
  }

  /** Stops the batch (interrupted or failed): the staging directory is removed unless it was published. */
  stop(): void {
    this.#helper?.close();
    this.#helper = undefined;
    if (!this.#published) try { rmSync(this.path, { recursive: true, force: true }); } catch { /* left hidden; the next batch removes it */ }
  }
}
