/**
 * Batches: a directory of .eml files into another directory (same names), or an
 * mbox file into another mbox file, on a pool of worker threads (all cores by
 * default). One bad message is reported and skipped; it never stops the batch or
 * loses the others. A progress bar is drawn on stderr when stderr is a terminal,
 * and a summary always ends the run.
 *
 * Throughput: messages travel in chunks (CHUNK_MESSAGES file names, or an mbox
 * block of about MBOX_BLOCK_BYTES, per worker round trip) and each worker has
 * CHUNKS_PER_WORKER chunks queued, so it never waits for the main thread. In a
 * directory batch the workers read and write the files themselves
 * (write-batch-file.ts, no fsync per file). A new OUTDIR is published whole at the
 * end: the outputs wait under their names in a staging directory that one sync makes
 * durable and one rename makes OUTDIR (staging-directory.ts). An existing OUTDIR gets
 * them in groups, each made durable by one sync of its file system before its
 * renames, then OUTDIR is fsync'd at the end (sync-output-directory.ts). Either is
 * the durability point.
 * In an mbox batch the main thread only cuts the input into blocks at From_ lines
 * (mbox.ts readMboxBlocks: it never handles a message); the workers split them
 * and sign, and the main thread appends their formatted entries to OUT in input
 * order.
 *
 * Memory stays bounded: at most CHUNKS_PER_WORKER chunks per worker are in flight,
 * an mbox block holds about MBOX_BLOCK_BYTES of messages (or one larger message),
 * mbox input is read as a stream and stops being read past MAX_BYTES_IN_FLIGHT, and
 * its output is written in input order through a reorder buffer no larger than that
 * window.
 */
import { rmSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { lstat, mkdir, open, readdir, realpath, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { errorFromData, KakitomeError, type Remedy } from '../errors.ts';
import { WorkerPool } from '../threads/worker-pool.ts';
import type { BulkAnswer, BulkItemResult, BulkTask, BulkWorkerData, FileItem } from './bulk-worker.ts';
import { toFailure, type JobName, type JobResult } from './job.ts';
import { EXIT_OK, exitCodeForError, worstExitCode, type ExitCode } from './exit-codes.ts';
import { MAX_MESSAGE_BYTES, childPath, describeFsError, onInterrupt, openAtomicWriter, refusePlanted } from './io.ts';
import { formatMboxEntry, looksLikeMbox, oversizedMessageError, readMboxBlocks, splitMboxBuffer, type MboxBlock } from '../mime/mbox.ts';
import { Progress } from './progress.ts';
import { WriteGuard } from './write-guard.ts';
import { removeTemporaryFiles } from './write-batch-file.ts';
import { OutputCommitter, startBatchSyncHelper, type Committed, type PendingOutput, type SyncHelper } from './sync-output-directory.ts';
import { MAX_STAGED_OUTPUTS, StagingDirectory, removeAbandonedStaging, stagingPathFor } from './staging-directory.ts';

/**
 * Files per worker round trip (directory batch): the cost of a round trip (two
 * structured clones, two thread wake-ups, the main thread's turn) is shared by these.
 */
const CHUNK_MESSAGES = 64;
/**
 * Files per round trip over the end of a directory batch (and at most the messages
 * per worker of a small one), so that no worker ends alone on a long queue.
 */
const TAIL_CHUNK_MESSAGES = 8;
/** The fewest messages worth one more worker in a directory batch (its start-up is about 0.1-0.15 s of CPU). */
const MIN_MESSAGES_PER_WORKER = 16;
/**
 * A directory this large (st_size) holds hundreds of entries or more (ext4: 16 KiB of
 * entries, about 400 names of 20 bytes; tmpfs and btrfs count less per name): its
 * batch starts every worker before listing it.
 */
const LARGE_DIRECTORY_BYTES = 16 << 10;
/** mbox: bytes read at a time, and about the size of a block of whole messages sent to a worker. */
const MBOX_BLOCK_BYTES = 128 << 10;
/**
 * mbox: blocks are this many times smaller over the last blocks of the file, so that
 * the batch does not end with one worker still busy on its queue of large blocks
 * while the others have nothing left.
 */
const MBOX_TAIL_DIVISOR = 16;
/**
 * Chunks queued per worker, so that the next one is waiting when a worker finishes
 * one, even while the main thread is paused (a mark-compact of its heap took up to
 * 90 ms under load, longer than three chunks, about 50 ms of signing).
 */
const CHUNKS_PER_WORKER = 6;
/**
 * Directory batch: the outputs written so far are synced in the background when this
 * many messages are left to hand out (and again when the last chunk is handed out),
 * so that each of those syncs has less to write and the one that counts, at the end,
 * finds the disk nearly done.
 */
const END_FLUSH_MESSAGES = 2048;
/** mbox: bytes of messages read but not yet written past which reading pauses. */
const MAX_BYTES_IN_FLIGHT = 64 << 20;
/** mbox: bytes written between two background flushes of OUT (commit() then has little left to flush). */
const FLUSH_BEHIND_BYTES = 16 << 20;
/**
 * mbox: the shared buffers a block's signed entries are formatted into (a 128 KiB
 * block of 2 KB messages takes about 440 KiB), recycled once written to OUT: a fresh
 * buffer per block faulted in every page it was written to (1.2% of a 20,000-message
 * batch's CPU, the workers' largest page-fault site) and was moved to the main thread
 * and freed there. A block whose entries need more gets a buffer of its own, as before.
 */
const SPARE_OUTPUT_BYTES = 512 << 10;
/**
 * mbox: blocks up to this size (a block is cut once it reaches MBOX_BLOCK_BYTES, so
 * it is at most that plus one read, but for a large message) are cut into shared
 * memory, recycled once the block is answered: posting one to a worker shares it
 * instead of copying it into a fresh buffer there, and the main thread keeps it to
 * run the block again if the worker dies.
 */
const SHARED_BLOCK_BYTES = 2 * MBOX_BLOCK_BYTES;

export type BatchKind = 'directory' | 'mbox';

export interface BatchOptions {
  job: JobName;
  /** The job's plain-data options, rebuilt in every worker. */
  jobOptions: unknown;
  input: string;
  output: string | undefined;
  kind: BatchKind;
  /** Worker threads; defaults to the number of cores. */
  workers?: number;
  /** Called once per message (input order for mbox, completion order for a directory); awaited, so it may write with backpressure. */
  onResult?: (item: BatchItem, result: JobResult) => Promise<void> | void;
  /** Draw a progress bar (defaults to stderr being a terminal). */
  progress?: boolean;
  /** The workers' script (default bulk-worker.ts); tests wrap it to make a worker die mid-batch. */
  worker?: URL;
}

export interface BatchItem {
  /** Position in the input (sorted directory listing, or mbox order). */
  index: number;
  name: string;
  exitCode: ExitCode;
  code?: string;
  message?: string;
  /** The failure's remedy (KakitomeError.remedy), when it names one. */
  remedy?: Remedy;
  written: boolean;
}

export interface BatchSummary {
  kind: BatchKind;
  total: number;
  /** Exit status 0: written. */
  succeeded: number;
  /**
   * Written although their verdict is not success (decrypt: a valid inner signature
   * whose signer is not trusted, so that an archive stays readable): never counted
   * as failed, since their output is there; their reports say what is wrong.
   */
  flagged: number;
  /** Not written. */
  failed: number;
  seconds: number;
  /** The failed messages, in input order (at most MAX_FAILURES_KEPT; `failed` counts them all). */
  failures: BatchItem[];
  exitCode: ExitCode;
}

/** A batch of millions must not keep millions of reports: failures beyond this are only counted. */
const MAX_FAILURES_KEPT = 10_000;

/**
 * Which batch (if any) IN designates: a directory, or a file that starts like an
 * mbox when OUT is a file too. Without a file OUT, a From_-prefixed input is read
 * as one message (see stripEnvelopeLine): mail clients save single messages so.
 */
export async function detectBatchKind(input: string | undefined, forceMbox: boolean, outputIsFile = true): Promise<BatchKind | undefined> {
  if (input === undefined || input === '-') {
    if (forceMbox) throw new KakitomeError('INVALID_ARGUMENT', '--mbox needs -i FILE: an mbox batch is not read from standard input.');
    return undefined;
  }
  const info = await stat(input).catch((e: NodeJS.ErrnoException) => {
    throw new KakitomeError('INVALID_ARGUMENT', `Input ${input}: ${describeFsError(e)}.`, { cause: e });
  });
  if (info.isDirectory()) return 'directory';
  if (forceMbox) return 'mbox';
  // Only a regular file may be sniffed: reading the head of a pipe (-i /dev/stdin,
  // a process substitution) would consume bytes the message needs.
  if (!info.isFile()) return undefined;
  const head = Buffer.alloc(256);
  const h = await open(input, 'r');
  try {
    const { bytesRead } = await h.read(head, 0, head.length, 0);
    return outputIsFile && looksLikeMbox(head.subarray(0, bytesRead)) ? 'mbox' : undefined;
  } finally {
    await h.close();
  }
}

function workerUrl(): URL {
  // Development runs the .ts sources (Node 24 type stripping); the package runs dist/*.js.
  return new URL(import.meta.url.endsWith('.ts') ? './bulk-worker.ts' : './bulk-worker.js', import.meta.url);
}

function itemFrom(index: number, name: string, result: JobResult, written: boolean): BatchItem {
  const item: BatchItem = { index, name, exitCode: result.exitCode, written };
  const code = result.failure?.code ?? result.verdict?.code;
  const message = result.failure?.message ?? (result.exitCode !== EXIT_OK ? result.verdict?.summary : undefined);
  if (code !== undefined) item.code = code;
  if (message !== undefined) item.message = message;
  if (result.failure?.remedy) item.remedy = result.failure.remedy;
  return item;
}

/** A worker's answer for one message, as the JobResult that onResult receives (the output stays with the batch). */
function jobResultOf(r: BulkItemResult): JobResult {
  const result: JobResult = { exitCode: r.exitCode };
  if (r.verdict !== undefined) result.verdict = r.verdict;
  if (r.failure !== undefined) result.failure = r.failure;
  return result;
}

/** Runs a batch to the end and returns its summary; throws only for problems with the batch itself. */
export async function runBatch(opts: BatchOptions): Promise<BatchSummary> {
  if (opts.output === undefined || opts.output === '-') {
    throw new KakitomeError('INVALID_ARGUMENT', opts.kind === 'directory'
      ? 'A directory batch needs -o OUTDIR (a directory for the results, not the input directory).'
      : 'An mbox batch needs -o FILE (the mbox to write).');
  }
  const started = process.hrtime.bigint();
  const size = Math.max(1, Math.min(opts.workers ?? availableParallelism(), 64));
  const progress = new Progress(opts.job, opts.progress ?? process.stderr.isTTY === true);
  const failures: BatchItem[] = [];
  let total = 0;
  let failed = 0;
  let flagged = 0;
  let exitCode: ExitCode = EXIT_OK;
  let pool: WorkerPool<BulkTask, BulkAnswer> | undefined;
  let cleanUp: (() => void) | undefined;
  // Not async: with no onResult (every batch without --json) a message costs no promise and no await.
  const record = (item: BatchItem, result: JobResult, ticked = false): Promise<void> | void => {
    total++;
    exitCode = worstExitCode([exitCode, item.exitCode]);
    if (!ticked) progress.tick(item.exitCode === EXIT_OK);
    if (item.exitCode !== EXIT_OK && item.written) {
      flagged++;
      progress.note(`${item.name}: ${item.code ?? 'FLAGGED'}: ${item.message ?? 'see its report'} (written)`);
    } else if (item.exitCode !== EXIT_OK) {
      failed++;
      if (failures.length < MAX_FAILURES_KEPT) failures.push(item);
      progress.note(`${item.name}: ${item.code ?? 'FAILED'}: ${item.message ?? 'failed'} (skipped)`);
    }
    return opts.onResult?.(item, result);
  };
  try {
    if (opts.kind === 'directory') {
      const guard = new WriteGuard();
      const data: BulkWorkerData = { job: opts.job, options: opts.jobOptions, guard: guard.buffer };
      const outDir = opts.output;
      for (const path of removeAbandonedStaging(outDir)) progress.note(`Removed ${path}: the staging directory of an earlier batch to ${outDir} that did not finish (killed, or the system stopped); nothing of it had been published.`);
      // Before the workers exist: forking the sync helper is cheapest now.
      const helper = startBatchSyncHelper(outDir);
      cleanUp = () => helper?.close();
      const start = (workers: number): { pool: WorkerPool<BulkTask, BulkAnswer>; checked: Promise<void> } => {
        const started = pool = new WorkerPool<BulkTask, BulkAnswer>(opts.worker ?? workerUrl(), data, workers, CHUNKS_PER_WORKER);
        const checked = checkJob(started);
        checked.catch(() => {});
        return { pool: started, checked };
      };
      // A large directory: the workers start (about 0.1-0.15 s of CPU each before they
      // can sign) while this thread lists it, and those its messages do not need end
      // while they start. A small one is listed first (a worker started for nothing
      // costs more than its listing).
      let early = (await stat(opts.input)).size >= LARGE_DIRECTORY_BYTES ? start(size) : undefined;
      const names = await listMessages(opts.input);
      const workers = Math.min(size, Math.max(1, Math.ceil(names.length / MIN_MESSAGES_PER_WORKER)));
      early?.pool.shrink(workers);
      const { pool: p, checked } = early ??= start(workers);
      const publisher = await choosePublisher(outDir, names.length, commitDirectoryOutput(record), helper);
      cleanUp = () => publisher.stop();
      await checked;
      const refused = publisher instanceof StagingDirectory ? new Map<string, KakitomeError>() : await prepareOutputDirectory(opts.input, outDir);
      if (publisher instanceof StagingDirectory) await publisher.create();
      progress.start(names.length);
      let completed = false;
      // Interrupted, failed or done: let the workers finish the write they are in and
      // start no other; then no output is published any more, and every file not
      // published (and any a dead worker left) is removed.
      const stopWrites = (): void => {
        const idle = guard.stop(1000);
        publisher.stop();
        if (!(publisher instanceof StagingDirectory) && (!completed || !idle || p.crashed > 0)) removeTemporaryFiles(outDir);
      };
      const removeHandler = onInterrupt(stopWrites);
      cleanUp = () => {
        removeHandler();
        stopWrites();
      };
      const target = publisher instanceof StagingDirectory ? { outDir: publisher.path, staged: true } : { outDir, staged: false };
      await runDirectory(p, names, refused, opts.input, target, record, publisher, (ok) => progress.tick(ok));
      completed = true;
    } else {
      pool = new WorkerPool<BulkTask, BulkAnswer>(opts.worker ?? workerUrl(), { job: opts.job, options: opts.jobOptions } satisfies BulkWorkerData, size, CHUNKS_PER_WORKER);
      const checked = checkJob(pool);
      checked.catch(() => {});
      const info = await stat(opts.input);
      // A pipe or device has no size: its blocks keep their size to the end.
      const inputBytes = info.isFile() ? info.size : undefined;
      await checked;
      progress.start(undefined, inputBytes);
      await runMbox(pool, opts.input, inputBytes, opts.output, record, (bytes) => progress.bytes(bytes));
    }
  } finally {
    cleanUp?.();
    await pool?.close();
    progress.stop();
  }
  failures.sort((a, b) => a.index - b.index);
  return {
    kind: opts.kind,
    total,
    succeeded: total - failed - flagged,
    flagged,
    failed,
    seconds: Number(process.hrtime.bigint() - started) / 1e9,
    failures,
    exitCode,
  };
}

/**
 * Bad credentials fail the whole batch up front (exit 2), before OUT is touched,
 * instead of failing every message: one worker reports whether it could build the
 * job (every worker builds it from the same options). The main thread never loads
 * the job's modules.
 */
async function checkJob(pool: WorkerPool<BulkTask, BulkAnswer>): Promise<void> {
  const { failure } = await pool.run({ kind: 'check' });
  if (failure === undefined) return;
  throw failure.code === 'INTERNAL' ? new Error(failure.message) : errorFromData({ ...failure, code: failure.code });
}

/** The .eml files directly in DIR, sorted. */
async function listMessages(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  return entries.filter((e) => e.isFile() && /\.eml$/i.test(e.name)).map((e) => e.name).sort();
}

/**
 * Creates OUTDIR or checks it is a usable directory, not DIR itself. Returns the
 * names whose place in an OUTDIR that already existed is taken by something a batch
 * never replaces (a directory, a link, a device): one listing instead of an lstat
 * per output, and none at all for a directory this batch created.
 */
async function prepareOutputDirectory(dir: string, outDir: string): Promise<Map<string, KakitomeError>> {
  // A link another account planted at OUTDIR would take the outputs into a directory where it can replace them.
  const link = await lstat(outDir).catch(() => undefined);
  if (link?.isSymbolicLink()) refusePlanted(outDir, link);
  const created = await mkdir(outDir, { recursive: true, mode: 0o700 }).catch((e: NodeJS.ErrnoException) => {
    throw new KakitomeError('INVALID_ARGUMENT', `Output directory ${outDir}: ${describeFsError(e)}.`, { cause: e });
  });
  const outInfo = await stat(outDir);
  if (!outInfo.isDirectory()) throw new KakitomeError('INVALID_ARGUMENT', `-o ${outDir}: a directory batch writes into a directory, and this is a file.`);
  if ((await realpath(dir)) === (await realpath(outDir))) {
    throw new KakitomeError('INVALID_ARGUMENT', `-o ${outDir} is the input directory: give another directory so the originals are not overwritten.`);
  }
  const refused = new Map<string, KakitomeError>();
  if (created === undefined) {
    for (const e of await readdir(outDir, { withFileTypes: true })) {
      if (e.isFile() || !/\.eml$/i.test(e.name)) continue;
      const what = e.isDirectory() ? 'a directory' : e.isSymbolicLink() ? 'a symbolic link' : 'a device, pipe or socket';
      refused.set(e.name, new KakitomeError('INVALID_ARGUMENT', `Cannot write ${join(outDir, e.name)}: it is ${what}, and a batch replaces only regular files in OUTDIR.`));
    }
  }
  return refused;
}

/** `ticked`: the progress bar already counted this message (a staged output, published at the end). */
type Recorder = (item: BatchItem, result: JobResult, ticked?: boolean) => Promise<void> | void;

/** Keeps at most `limit` promises running; a rejection reaches the caller at its next wait. */
class Window {
  readonly #running = new Set<Promise<void>>();
  readonly #limit: number;

  constructor(limit: number) {
    this.#limit = limit;
  }

  get size(): number {
    return this.#running.size;
  }

  get full(): boolean {
    return this.#running.size >= this.#limit;
  }

  /** Waits until fewer than the limit run. */
  async room(): Promise<void> {
    while (this.full) await Promise.race(this.#running);
  }

  /** Settles when one of those running does (at once when none runs). */
  async next(): Promise<void> {
    if (this.#running.size > 0) await Promise.race(this.#running);
  }

  add(p: Promise<void>): void {
    this.#running.add(p);
    void p.finally(() => this.#running.delete(p)).catch(() => {});
  }

  async drain(): Promise<void> {
    await Promise.all(this.#running);
  }
}

/** `onStaged`: told of each output staged for a new OUTDIR, so that the progress bar moves before OUTDIR is published at the end. */
async function runDirectory(pool: WorkerPool<BulkTask, BulkAnswer>, names: string[], refused: Map<string, KakitomeError>, inDir: string, target: { outDir: string; staged: boolean }, record: Recorder, publisher: OutputPublisher, onStaged: (ok: boolean) => void): Promise<void> {
  const window = new Window(pool.size * pool.perWorker);
  // The last chunks, as many as the window holds, are small ones.
  const tail = names.length - pool.size * pool.perWorker * TAIL_CHUNK_MESSAGES;
  const flushAt = names.length - END_FLUSH_MESSAGES;
  for (let start = 0, chunk = 0; start < names.length; start += chunk) {
    chunk = start >= tail ? TAIL_CHUNK_MESSAGES : CHUNK_MESSAGES;
    if (start < flushAt && start + chunk >= flushAt) publisher.flushBehind();
    const items: FileItem[] = [];
    for (let id = start; id < Math.min(names.length, start + chunk); id++) {
      const name = names[id]!;
      const why = refused.get(name);
      if (why === undefined) items.push({ id, name });
      else await record(itemFrom(id, name, failureResult(why), false), failureResult(why));
    }
    if (items.length === 0) continue;
    await window.room();
    window.add(runChunk(pool, { kind: 'files', inDir, ...target, items }).then(async (answer) => {
      for (const r of answer.results) {
        // A written output is reported once it has its name (commitDirectoryOutput).
        if (r.temporary !== undefined) {
          if (target.staged) onStaged(r.exitCode === EXIT_OK);
          publisher.add({ name: names[r.id]!, temporary: r.temporary, result: r, ticked: target.staged });
        }
        else await record(itemFrom(r.id, names[r.id]!, r, false), jobResultOf(r));
      }
    }));
  }
  // Every chunk is handed out: what is written so far goes to disk while the last
  // chunks run, and the sync at the end has only theirs left to write.
  publisher.flushBehind();
  await window.drain();
  // The workers are done: they end while the outputs are made durable.
  const closing = pool.close();
  // The durability point: the batch ends only when every output is on disk under its name.
  await publisher.finish();
  await closing;
}

/** A directory batch's output waiting for its name, with the worker's result for its message. */
interface WrittenFile extends PendingOutput {
  result: BulkItemResult;
  /** Counted by the progress bar when it was staged. */
  ticked: boolean;
}

/** Names a directory batch's outputs: one by one in OUTDIR (OutputCommitter), or all at once as a new OUTDIR (StagingDirectory). */
type OutputPublisher = OutputCommitter<WrittenFile> | StagingDirectory<WrittenFile>;

/**
 * A new OUTDIR is published whole at the end from a staging directory (one rename
 * instead of one per output); an existing one (or a batch too large to keep every
 * output's result until the end) gets its outputs by groups.
 */
async function choosePublisher(outDir: string, count: number, committed: Committed<WrittenFile>, helper: SyncHelper | undefined): Promise<OutputPublisher> {
  const exists = await lstat(outDir).then(() => true, (e: NodeJS.ErrnoException) => e.code !== 'ENOENT');
  const staging = exists || count > MAX_STAGED_OUTPUTS ? undefined : stagingPathFor(outDir);
  const options = helper === undefined ? {} : { helper };
  return staging === undefined ? new OutputCommitter<WrittenFile>(outDir, committed, options) : new StagingDirectory<WrittenFile>(outDir, staging, committed, options);
}

/** Reports a directory batch's output once it has its name, or as failed when it could not get it. */
function commitDirectoryOutput(record: Recorder): (output: WrittenFile, error?: unknown) => Promise<void> | void {
  return (output, error) => {
    const r = output.result;
    if (error !== undefined) return record(itemFrom(r.id, output.name, failureResult(error), false), failureResult(error), output.ticked);
    return record(itemFrom(r.id, output.name, r, true), jobResultOf(r), output.ticked);
  };
}

async function runMbox(pool: WorkerPool<BulkTask, BulkAnswer>, input: string, inputBytes: number | undefined, output: string, record: Recorder, onBytes: (n: number) => void): Promise<void> {
  const writer = await openAtomicWriter(output);
  const window = new Window(pool.size * pool.perWorker);
  const done = new Map<number, { bytes: number; answer: BulkAnswer; spare: SharedArrayBuffer | undefined }>();
  /** Output buffers written to OUT and free again; at most one per block in the window and one per worker. */
  const spares: SharedArrayBuffer[] = [];
  const maxSpares = pool.size * (pool.perWorker + 1);
  let sparesMade = 0;
  /** Block memory free again: its block was answered (no worker reads it any more). */
  const freeBlocks: SharedArrayBuffer[] = [];
  const allocateBlock = (n: number): Buffer => n > SHARED_BLOCK_BYTES ? Buffer.allocUnsafeSlow(n) : Buffer.from(freeBlocks.pop() ?? new SharedArrayBuffer(SHARED_BLOCK_BYTES), 0, n);
  let bytesInFlight = 0;
  let unflushed = 0;
  let sent = 0;
  let nextToWrite = 0;
  /** The number of the first message of the next block written (blocks are written in input order). */
  let nextIndex = 0;
  let writing: Promise<void> = Promise.resolve();

  // Writes finished blocks in input order; chained after each completion.
  const flush = async (): Promise<void> => {
    for (let d = done.get(nextToWrite); d !== undefined; d = done.get(nextToWrite)) {
      done.delete(nextToWrite);
      nextToWrite++;
      const { bytes, answer, spare } = d;
      bytesInFlight -= bytes;
      const first = nextIndex;
      nextIndex += answer.results.length;
      const name = (r: BulkItemResult) => `message ${first + r.id + 1}`;
      if (answer.output !== undefined && answer.output.byteLength > 0) {
        try {
          await writer.write(answer.output);
          unflushed += answer.output.byteLength;
          if (unflushed >= FLUSH_BEHIND_BYTES) {
            unflushed = 0;
            writer.flushBehind();
          }
        } catch (e) {
          for (const r of answer.results) if (r.written) await record(itemFrom(first + r.id, name(r), failureResult(e), false), failureResult(e));
          throw e;
        }
      }
      // Written (the output may be this very memory) and answered: free for another block.
      if (spare !== undefined && spares.length < maxSpares) spares.push(spare);
      for (const r of answer.results) {
        const told = record(itemFrom(first + r.id, name(r), r, r.written), jobResultOf(r));
        if (told !== undefined) await told;
      }
    }
  };

  // A block leaves the window when its worker answers, not when it is written: a
  // worker that is ahead never waits for the block before its own to be written. The
  // reorder buffer is bounded by bytesInFlight instead.
  const send = async (block: MboxBlock): Promise<void> => {
    const bytes = 'data' in block ? block.data.length : 0;
    // Answers free the window; only writes free bytes.
    while (window.full || bytesInFlight >= MAX_BYTES_IN_FLIGHT) await (window.full || window.size > 0 ? window.next() : writing);
    const seq = sent++;
    bytesInFlight += bytes;
    let spare: SharedArrayBuffer | undefined;
    if ('data' in block) spare = spares.pop() ?? (sparesMade < maxSpares ? (sparesMade++, new SharedArrayBuffer(SPARE_OUTPUT_BYTES)) : undefined);
    window.add((async () => {
      const answered = 'data' in block ? await runMboxBlock(pool, block.data, spare) : { answer: oversizedAnswer(), spareFree: false };
      // Answered, or run again message by message from copies: the block's memory is free.
      if ('data' in block && block.data.buffer instanceof SharedArrayBuffer && freeBlocks.length < maxSpares) freeBlocks.push(block.data.buffer);
      done.set(seq, { bytes, answer: answered.answer, spare: answered.spareFree ? spare : undefined });
      writing = writing.then(flush);
    })());
  };

  try {
    let read = 0;
    const tail = inputBytes === undefined ? -1 : inputBytes - pool.size * pool.perWorker * MBOX_BLOCK_BYTES;
    const blockBytes = (): number => (tail >= 0 && read >= tail ? MBOX_BLOCK_BYTES / MBOX_TAIL_DIVISOR : MBOX_BLOCK_BYTES);
    const pieces = readPieces(input, blockBytes, (n) => {
      read += n;
      onBytes(n);
    });
    for await (const block of readMboxBlocks(pieces, blockBytes, MAX_MESSAGE_BYTES, allocateBlock)) await send(block);
    // Every block is handed out: what is written so far goes to disk while the last
    // blocks run, and commit()'s fsync has only theirs left (as a directory batch does).
    unflushed = 0;
    writer.flushBehind();
    await window.drain();
    await writing;
    // The workers are done: they end while OUT is made durable.
    const closing = pool.close();
    await writer.commit();
    await closing;
  } catch (e) {
    await writer.abort();
    throw e;
  }
}

/** A file (or a pipe) read `size()` bytes at a time, each read into a buffer of its own. */
async function* readPieces(path: string, size: () => number, onRead: (n: number) => void): AsyncGenerator<Buffer> {
  const handle = await open(path, 'r');
  try {
    for (;;) {
      const buffer = Buffer.allocUnsafeSlow(size());
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) return;
      onRead(bytesRead);
      yield buffer.subarray(0, bytesRead);
    }
  } finally {
    await handle.close();
  }
}

function oversizedAnswer(): BulkAnswer {
  return { results: [{ id: 0, ...failureResult(oversizedMessageError(MAX_MESSAGE_BYTES)), written: false }] };
}

/** One buffer of its own (structured clone copies a view's whole ArrayBuffer, so never a slice of a larger one). */
function joinStandalone(pieces: readonly Uint8Array[], size: number): Uint8Array {
  const out = Buffer.allocUnsafeSlow(size);
  let at = 0;
  for (const p of pieces) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

/**
 * Runs one mbox block (shared with the worker, or copied to it, and kept here, so
 * that it can run again), its entries formatted into `spare` when given. A worker
 * that died under it (out of memory, a native crash) took the whole block down: its
 * messages run again one by one, so only the message that kills a worker fails and
 * every other one is still processed. `spareFree`: the block was answered, so no
 * thread writes to `spare` any more (a dead worker's is not used again).
 */
async function runMboxBlock(pool: WorkerPool<BulkTask, BulkAnswer>, data: Uint8Array, spare?: SharedArrayBuffer): Promise<{ answer: BulkAnswer; spareFree: boolean }> {
  let answer: BulkAnswer;
  try {
    answer = await pool.run(spare === undefined ? { kind: 'mbox', data } : { kind: 'mbox', data, spare });
  } catch (e) {
    return { answer: await runMboxBlockAgain(pool, data, e), spareFree: false };
  }
  if (answer.failure !== undefined) throw answer.failure.code === 'INTERNAL' ? new Error(answer.failure.message) : errorFromData({ ...answer.failure, code: answer.failure.code });
  return { answer, spareFree: true };
}

/** A block whose worker died under it, message by message. */
async function runMboxBlockAgain(pool: WorkerPool<BulkTask, BulkAnswer>, data: Uint8Array, e: unknown): Promise<BulkAnswer> {
  const entries = splitMboxBuffer(Buffer.from(data.buffer, data.byteOffset, data.byteLength), MAX_MESSAGE_BYTES);
  if (entries.length === 1 && entries[0]!.message !== undefined) return { results: [{ id: 0, ...workerDied(e), written: false }] };
  const answers = await Promise.all(entries.map(async (entry): Promise<BulkAnswer> => {
    if (entry.message === undefined) return { results: [{ id: 0, ...failureResult(entry.error), written: false }] };
    const single = formatMboxEntry(entry.envelope, entry.message);
    return (await runMboxBlock(pool, joinStandalone([single], single.length))).answer;
  }));
  const outputs = answers.map((a) => a.output).filter((o): o is Uint8Array => o !== undefined);
  return {
    results: answers.map((a, i) => ({ ...a.results[0]!, id: i })),
    output: joinStandalone(outputs, outputs.reduce((n, o) => n + o.byteLength, 0)),
  };
}

/**
 * Runs one chunk of file names. A worker that died under it (out of memory, a
 * native crash) took the whole chunk down: its messages run again one by one, so
 * only the message that kills a worker fails, and every other one is still processed.
 */
async function runChunk(pool: WorkerPool<BulkTask, BulkAnswer>, task: Extract<BulkTask, { kind: 'files' }>): Promise<BulkAnswer> {
  try {
    return await pool.run(task);
  } catch (e) {
    // In a staging directory the dead worker may have left a partial file under an
    // output's name: none of the chunk's files was answered for, so all go (no other
    // worker writes these names), and the messages run again.
    if (task.staged) for (const { name } of task.items) rmSync(childPath(task.outDir, name), { force: true });
    if (task.items.length === 1) return { results: [{ id: task.items[0]!.id, ...workerDied(e), written: false }] };
    const answers = await Promise.all(task.items.map((item) => runChunk(pool, { ...task, items: [item] })));
    return { results: answers.flatMap((a) => a.results) };
  }
}

/** What a message whose worker died under it (out of memory, a native crash) is reported as: never a verdict, and never written. */
function workerDied(e: unknown): JobResult {
  return failureResult(new Error(`The worker processing this message stopped (${(e as Error)?.message ?? String(e)}); it was not written.`, { cause: e }));
}

function failureResult(e: unknown): JobResult {
  return { exitCode: exitCodeForError(e), failure: toFailure(e) };
}
