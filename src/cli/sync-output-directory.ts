/**
 * The outputs of a directory batch on their way to their names, and the batch's
 * durability point. A worker writes each output to a hidden temporary file in
 * OUTDIR (write-batch-file.ts) and the main thread hands it here. No output gets
 * its name before its bytes are on stable storage, so that no crash, not even a
 * power cut, can leave a partial or empty file under an output's name: outputs are
 * committed in groups, each group made durable at once and only then renamed.
 *
 * Making a group durable is one syncfs(2) of OUTDIR's file system, through
 * `sync -f` (coreutils and busybox on Linux; Node has no syncfs), run by one small
 * shell started for the whole batch (SyncHelper). Where that is missing or fails,
 * each file of the group is fsync'd instead (slower, same guarantee), and a file
 * that cannot be flushed fails its message; after a failed sync, syncs are not
 * trusted again (Linux reports a write-back error once). An fsync per 2 KB file
 * costs more CPU than signing it; one sync per group costs next to nothing.
 *
 * A group closes at GROUP_FILES outputs or GROUP_MS after its first output,
 * whichever comes first; one group is committed at a time while the next one fills.
 * finish() commits the last group and fsyncs OUTDIR, so that the renames are
 * durable too: that is the durability point. When it returns, every output
 * committed is on stable storage under its name.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { accessSync, constants, renameSync, statSync, unlinkSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { open } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { setImmediate as yieldToEvents } from 'node:timers/promises';
import { cannotWrite, childPath, syncDirectory } from './io.ts';

/** Absolute paths only: the batch never runs a `sync` found through PATH. */
export const SYNC_PROGRAMS = ['/usr/bin/sync', '/bin/sync'];

/** fsyncs in flight when falling back to one per file (they share journal commits). */
const FSYNC_CONCURRENCY = 16;

/**
 * Outputs in a group, at most. Each group costs one `sync -f` (a fork and exec of
 * sync(1) by the helper shell, a few ms of CPU): at 4,096 a quiet 20,000-message
 * batch makes about 5 of them instead of 10.
 */
const GROUP_FILES = 4096;

/**
 * How long the first output of a group waits for its group to close, at most. A
 * second: on a loaded machine, where a batch runs for minutes, a quarter second
 * made hundreds of syncs (the sync processes took 4% of a directory batch's CPU).
 */
const GROUP_MS = 1000;

/** Renames between two turns of the event loop (workers' answers keep being read). */
const RENAMES_PER_TURN = 256;

/**
 * Runs `sync -f DIR` on request, from one shell started once per batch. Spawning
 * sync from the batch itself, a large process with several threads, costs far more
 * than the sync: fork(2) marks every page of the process copy-on-write, so each
 * page the workers write afterwards faults and is copied, with TLB shootdowns
 * between the cores (measured: with a spawn every 250 ms, page faults took 14% of a
 * directory batch's CPU). The shell reads one line per sync and answers with one
 * line, 0 when sync succeeded. DIR and the program are the shell's arguments, never
 * parsed as commands.
 */
export class SyncHelper {
  readonly #child: ChildProcessByStdio<Writable, Readable, null>;
  readonly #waiting: Array<(ok: boolean) => void> = [];
  /** The file system it syncs (st_dev of its directory when it started). */
  readonly #device: number | undefined;
  #buffered = '';
  #dead = false;

  constructor(program: string, dir: string) {
    try {
      this.#device = statSync(dir).dev;
    } catch {
      this.#device = undefined;
    }
    this.#child = spawn('/bin/sh', ['-c', 'while read -r _; do if "$0" -f "$1"; then echo 0; else echo 1; fi; done', program, dir], { stdio: ['pipe', 'pipe', 'ignore'], env: {} });
    this.#child.stdout.setEncoding('utf8').on('data', (text: string) => {
      this.#buffered += text;
      for (let nl = this.#buffered.indexOf('\n'); nl >= 0; nl = this.#buffered.indexOf('\n')) {
        const line = this.#buffered.slice(0, nl);
        this.#buffered = this.#buffered.slice(nl + 1);
        this.#waiting.shift()?.(line === '0');
      }
    });
    const died = (): void => {
      this.#dead = true;
      for (const w of this.#waiting.splice(0)) w(false);
    };
    this.#child.on('error', died);
    this.#child.on('close', died);
    this.#child.stdin.on('error', () => {});
  }

  /** True once OUTDIR's file system is synced; false when the sync failed or could not run. */
  sync(): Promise<boolean> {
    if (this.#dead) return Promise.resolve(false);
    return new Promise((resolve) => {
      this.#waiting.push(resolve);
      this.#child.stdin.write('\n');
    });
  }

  /**
   * Whether its syncs cover the files in `dir`: the same file system as the
   * directory it was started with (a helper started before OUTDIR existed syncs
   * OUTDIR's nearest existing parent; a mount made there since would not be covered).
   */
  covers(dir: string): boolean {
    try {
      return this.#device !== undefined && statSync(dir).dev === this.#device;
    } catch {
      return false;
    }
  }

  close(): void {
    this.#child.stdin.end();
  }
}

/**
 * The sync helper of a directory batch into `outDir`, started as the batch's first
 * step, before its workers (forking a small process) and before it knows whether
 * OUTDIR is published whole (staging-directory.ts) or by groups: it syncs the file
 * system of OUTDIR or, while OUTDIR does not exist, of its nearest existing parent,
 * where OUTDIR and its staging directory will be made. Each publisher checks that
 * it covers its directory (SyncHelper.covers) and starts its own otherwise.
 */
export function startBatchSyncHelper(outDir: string, programs: readonly string[] = SYNC_PROGRAMS): SyncHelper | undefined {
  const program = findSyncProgram(programs);
  if (program === undefined) return undefined;
  for (let dir = resolve(outDir); ; dir = dirname(dir)) {
    try {
      if (statSync(dir).isDirectory()) return new SyncHelper(program, dir);
    } catch { /* not there (yet): its parent */ }
    if (dirname(dir) === dir) return undefined;
  }
}

/** The first of `programs` that exists and may be run. */
export function findSyncProgram(programs: readonly string[]): string | undefined {
  return programs.find((p) => {
    try {
      accessSync(p, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

async function fsyncFile(path: string): Promise<void> {
  const h = await open(path, 'r');
  try { await h.sync(); } finally { await h.close(); }
}

/**
 * fsyncs each output's file in `dir` (where one sync of the file system is not
 * available); returns the outputs that could not be flushed, with why.
 */
export async function fsyncEach<T extends PendingOutput>(dir: string, outputs: readonly T[]): Promise<Map<T, unknown>> {
  const failed = new Map<T, unknown>();
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(FSYNC_CONCURRENCY, outputs.length) }, async () => {
    while (next < outputs.length) {
      const output = outputs[next++]!;
      await fsyncFile(join(dir, output.temporary)).catch((e: unknown) => {
        failed.set(output, cannotWrite(join(dir, output.name), e));
      });
    }
  }));
  return failed;
}

/** One output waiting for its name: `temporary` (a name in the same directory) becomes `name`. */
export interface PendingOutput {
  name: string;
  temporary: string;
}

/** Told once per output: it has its name (no error), or it was not written and its temporary file is gone (error). */
export type Committed<T extends PendingOutput> = (output: T, error?: unknown) => Promise<void> | void;

export class OutputCommitter<T extends PendingOutput> {
  readonly #dir: string;
  readonly #committed: Committed<T>;
  readonly #programs: readonly string[];
  readonly #groupFiles: number;
  readonly #groupMs: number;
  /** Started with the first group; undefined once syncs are not trusted (or cannot run). */
  #helper: SyncHelper | undefined;
  /** A helper given was checked against OUTDIR (which exists by the first group). */
  #helperChecked: boolean;
  #syncs = true;
  #open: T[] = [];
  #openedAt = 0;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  /** flushBehind() asked for the open group to close before it is due. */
  #early = false;
  #failure: unknown;

  /**
   * `groupFiles` and `groupMs` default to GROUP_FILES and GROUP_MS (tests make small
   * groups). `helper`: the batch's (startBatchSyncHelper), used once OUTDIR exists if it covers it.
   */
  constructor(dir: string, committed: Committed<T>, options: { programs?: readonly string[]; groupFiles?: number; groupMs?: number; helper?: SyncHelper } = {}) {
    this.#dir = dir;
    this.#committed = committed;
    this.#programs = options.programs ?? SYNC_PROGRAMS;
    this.#groupFiles = options.groupFiles ?? GROUP_FILES;
    this.#groupMs = options.groupMs ?? GROUP_MS;
    this.#helper = options.helper;
    this.#helperChecked = options.helper === undefined;
  }

  /**
   * Starts the helper shell now rather than at the first group: a batch calls this
   * before it starts its workers, when fork(2) has one thread and a small heap to
   * copy. OUTDIR need not exist yet (the shell uses it only to sync).
   */
  startSyncHelper(): void {
    if (!this.#syncs || this.#helper !== undefined) return;
    const program = findSyncProgram(this.#programs);
    if (program !== undefined) this.#helper = new SyncHelper(program, this.#dir);
  }

  /** A helper given that does not sync OUTDIR's file system is replaced by one of its own. */
  #checkHelper(): void {
    if (this.#helperChecked) return;
    this.#helperChecked = true;
    if (this.#helper?.covers(this.#dir) === false) {
      this.#helper.close();
      this.#helper = undefined;
    }
  }

  /** An output whose temporary file is written and closed. */
  add(output: T): void {
    if (this.#open.length === 0) {
      this.#openedAt = Date.now();
      this.#timer = setTimeout(() => this.#next(), this.#groupMs);
    }
    this.#open.push(output);
    if (this.#open.length >= this.#groupFiles) this.#next();
  }

  /**
   * Closes the open group now (once the group being committed, if any, is done)
   * instead of when it is due. The batch calls it when its last chunk is handed out,
   * so that finish() finds only the outputs of the last chunks uncommitted.
   */
  flushBehind(): void {
    this.#early = true;
    this.#next();
  }

  /** Starts committing the open group when it is due (or asked for early) and no other group is being committed. */
  #next(): void {
    if (this.#running !== undefined || this.#open.length === 0) return;
    if (!this.#early && this.#open.length < this.#groupFiles && Date.now() - this.#openedAt < this.#groupMs) return;
    this.#early = false;
    const group = this.#open;
    this.#open = [];
    clearTimeout(this.#timer);
    this.#running = this.#commit(group)
      .catch((e: unknown) => { this.#failure ??= e; })
      .finally(() => {
        this.#running = undefined;
        this.#next();
      });
  }

  /** Makes a group durable, then names it. */
  async #commit(group: T[]): Promise<void> {
    const unflushed = await this.#flush(group);
    for (let i = 0; i < group.length; i++) {
      if (i > 0 && i % RENAMES_PER_TURN === 0) await yieldToEvents();
      const output = group[i]!;
      const temporary = childPath(this.#dir, output.temporary);
      let error = unflushed.get(output);
      if (error === undefined) {
        try {
          // rename(2) replaces the directory entry itself, never writing through a link.
          renameSync(temporary, childPath(this.#dir, output.name));
        } catch (e) {
          error = cannotWrite(childPath(this.#dir, output.name), e);
        }
      }
      if (error !== undefined) {
        try { unlinkSync(temporary); } catch { /* already gone, or the directory refuses: it stays hidden */ }
      }
      const told = this.#committed(output, error);
      if (told !== undefined) await told;
    }
  }

  /** Puts a group's bytes on stable storage; returns the outputs that could not be flushed, with why. */
  async #flush(group: T[]): Promise<Map<T, unknown>> {
    this.#checkHelper();
    this.startSyncHelper();
    if (this.#syncs && this.#helper !== undefined && await this.#helper.sync()) return new Map();
    // No sync program, or it failed: each file on its own, and no syncfs trusted again.
    this.#syncs = false;
    this.#helper?.close();
    this.#helper = undefined;
    return fsyncEach(this.#dir, group);
  }

  /**
   * The durability point: commits what is left, then fsyncs the directory so that
   * every rename is durable. Returns once every output added has been told its fate.
   */
  async finish(): Promise<void> {
    clearTimeout(this.#timer);
    // A group being committed may start the next one when it ends.
    while (this.#running !== undefined) await this.#running;
    clearTimeout(this.#timer);
    const last = this.#open;
    this.#open = [];
    if (last.length > 0) await this.#commit(last).catch((e: unknown) => { this.#failure ??= e; });
    this.#helper?.close();
    if (this.#failure !== undefined) throw this.#failure;
    await syncDirectory(this.#dir);
  }

  /** Stops committing (an interrupted or failed batch): the temporary files left are the caller's to remove. */
  stop(): void {
    clearTimeout(this.#timer);
    this.#open = [];
    this.#helper?.close();
  }
}
