/**
 * Batches: a directory of .eml files into another directory (same names), or an
 * mbox file into another mbox file, on a pool of worker threads (all cores by
 * default). One bad message is reported and skipped; it never stops the batch or
 * loses the others. A progress bar is drawn on stderr when stderr is a terminal,
 * and a summary always ends the run.
 *
 * Throughput: messages travel in chunks (CHUNK_MESSAGES per worker round trip) and
 * each worker has CHUNKS_PER_WORKER chunks queued, so it never waits for the main
 * thread. In a directory batch the workers read and write the files themselves
 * (write-batch-file.ts: temporary file, then rename; no fsync per file) and the
 * batch makes every output durable once, at the end (sync-output-directory.ts).
 * In an mbox batch the main thread splits the input and appends the workers'
 * formatted entries to OUT in input order.
 *
 * Memory stays bounded: at most CHUNKS_PER_WORKER chunks per worker are in flight,
 * a chunk holds at most CHUNK_BYTES of messages (or one larger message), mbox input
 * is read as a stream and stops being read past MAX_BYTES_IN_FLIGHT, and its output
 * is written in input order through a reorder buffer no larger than that window.
 */
import { availableParallelism } from 'node:os';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, realpath, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { KakitomeError } from '../errors.ts';
import { WorkerPool } from './worker-pool.ts';
import type { BulkAnswer, BulkItemResult, BulkTask, BulkWorkerData, EntryItem, FileItem } from './bulk-worker.ts';
import { toFailure, type JobName, type JobResult } from './job.ts';
import { EXIT_OK, exitCodeForError, worstExitCode, type ExitCode } from './exit-codes.ts';
import { MAX_MESSAGE_BYTES, describeFsError, onInterrupt, openAtomicWriter } from './io.ts';
import { splitMbox, looksLikeMbox } from './mbox.ts';
import { Progress } from './progress.ts';
import { WriteGuard } from './write-guard.ts';
import { removeTemporaryFiles } from './write-batch-file.ts';
import { OutputFlusher } from './sync-output-directory.ts';

/** Messages per worker round trip: the cost of a round trip is shared by these. */
const CHUNK_MESSAGES = 16;
/** A chunk closes at this many bytes of messages (a larger message travels alone). */
const CHUNK_BYTES = 1 << 20;
/** Chunks queued per worker, so that the next one is waiting when a worker finishes one. */
const CHUNKS_PER_WORKER = 3;
/** mbox: bytes of messages read but not yet written past which reading pauses. */
const MAX_BYTES_IN_FLIGHT = 64 << 20;
/** mbox: bytes written between two background flushes of OUT (commit() then has little left to flush). */
const FLUSH_BEHIND_BYTES = 16 << 20;

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
}

export interface BatchItem {
  /** Position in the input (sorted directory listing, or mbox order). */
  index: number;
  name: string;
  exitCode: ExitCode;
  code?: string;
  message?: string;
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
  const record = async (item: BatchItem, result: JobResult): Promise<void> => {
    total++;
    exitCode = worstExitCode([exitCode, item.exitCode]);
    progress.tick(item.exitCode === EXIT_OK);
    if (item.exitCode !== EXIT_OK && item.written) {
      flagged++;
      progress.note(`${item.name}: ${item.code ?? 'FLAGGED'}: ${item.message ?? 'see its report'} (written)`);
    } else if (item.exitCode !== EXIT_OK) {
      failed++;
      if (failures.length < MAX_FAILURES_KEPT) failures.push(item);
      progress.note(`${item.name}: ${item.code ?? 'FAILED'}: ${item.message ?? 'failed'} (skipped)`);
    }
    await opts.onResult?.(item, result);
  };
  try {
    if (opts.kind === 'directory') {
      const names = await listMessages(opts.input);
      const guard = new WriteGuard();
      const data: BulkWorkerData = { job: opts.job, options: opts.jobOptions, guard: guard.buffer };
      const workers = Math.min(size, Math.max(1, Math.ceil(names.length / CHUNK_MESSAGES)));
      const p = pool = new WorkerPool<BulkTask, BulkAnswer>(workerUrl(), data, workers, CHUNKS_PER_WORKER);
      await checkJob(p);
      const outDir = opts.output;
      const refused = await prepareOutputDirectory(opts.input, outDir);
      progress.start(names.length);
      // Interrupted, failed or done: let the workers finish the write they are in and
      // start no other, so that no temporary file is left (a worker that died
      // mid-write leaves one: removed by name).
      const stopWrites = (): void => {
        if (!guard.stop(1000) || p.crashed > 0) removeTemporaryFiles(outDir);
      };
      const removeHandler = onInterrupt(stopWrites);
      cleanUp = () => {
        removeHandler();
        stopWrites();
      };
      await runDirectory(p, names, refused, opts.input, outDir, record);
    } else {
      const inputBytes = (await stat(opts.input)).size;
      pool = new WorkerPool<BulkTask, BulkAnswer>(workerUrl(), { job: opts.job, options: opts.jobOptions } satisfies BulkWorkerData, size, CHUNKS_PER_WORKER);
      await checkJob(pool);
      progress.start(undefined, inputBytes);
      await runMbox(pool, opts.input, opts.output, record, (bytes) => progress.bytes(bytes));
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
  throw failure.code === 'INTERNAL' ? new Error(failure.message) : new KakitomeError(failure.code, failure.message);
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
  const created = await mkdir(outDir, { recursive: true }).catch((e: NodeJS.ErrnoException) => {
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

type Recorder = (item: BatchItem, result: JobResult) => Promise<void>;

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

  /** Waits until fewer than the limit run (or, with `until`, until it holds). */
  async room(until: () => boolean = () => this.#running.size < this.#limit): Promise<void> {
    while (this.#running.size > 0 && !until()) await Promise.race(this.#running);
  }

  add(p: Promise<void>): void {
    this.#running.add(p);
    void p.finally(() => this.#running.delete(p)).catch(() => {});
  }

  async drain(): Promise<void> {
    await Promise.all(this.#running);
  }
}

async function runDirectory(pool: WorkerPool<BulkTask, BulkAnswer>, names: string[], refused: Map<string, KakitomeError>, inDir: string, outDir: string, record: Recorder): Promise<void> {
  const flusher = new OutputFlusher(outDir);
  const window = new Window(pool.size * pool.perWorker);
  for (let start = 0; start < names.length; start += CHUNK_MESSAGES) {
    const items: FileItem[] = [];
    for (let id = start; id < Math.min(names.length, start + CHUNK_MESSAGES); id++) {
      const name = names[id]!;
      const why = refused.get(name);
      if (why === undefined) items.push({ id, name });
      else await record(itemFrom(id, name, failureResult(why), false), failureResult(why));
    }
    if (items.length === 0) continue;
    await window.room();
    window.add(runChunk(pool, { kind: 'files', inDir, outDir, items }).then(async (answer) => {
      for (const r of answer.results) {
        const name = names[r.id]!;
        if (r.written) flusher.written(name);
        await record(itemFrom(r.id, name, r, r.written), jobResultOf(r));
      }
    }));
  }
  await window.drain();
  // The durability point: the batch ends only when every output is on disk.
  await flusher.finish();
}

/** One chunk of an mbox batch on its way: refused entries stay here, in their place. */
interface MboxChunk {
  ids: number[];
  refused: Map<number, JobResult>;
  items: EntryItem[];
  pieces: Buffer[];
  bytes: number;
}

async function runMbox(pool: WorkerPool<BulkTask, BulkAnswer>, input: string, output: string, record: Recorder, onBytes: (n: number) => void): Promise<void> {
  const writer = await openAtomicWriter(output);
  const window = new Window(pool.size * pool.perWorker);
  const done = new Map<number, { chunk: MboxChunk; answer: BulkAnswer }>();
  let bytesInFlight = 0;
  let unflushed = 0;
  let sent = 0;
  let nextToWrite = 0;
  let writing: Promise<void> = Promise.resolve();

  // Writes finished chunks in input order; chained after each completion.
  const flush = async (): Promise<void> => {
    for (let d = done.get(nextToWrite); d !== undefined; d = done.get(nextToWrite)) {
      done.delete(nextToWrite);
      nextToWrite++;
      const { chunk, answer } = d;
      bytesInFlight -= chunk.bytes;
      const results = mergeResults(chunk, answer);
      if (answer.output !== undefined && answer.output.byteLength > 0) {
        try {
          await writer.write(answer.output);
          unflushed += answer.output.byteLength;
          if (unflushed >= FLUSH_BEHIND_BYTES) {
            unflushed = 0;
            writer.flushBehind();
          }
        } catch (e) {
          for (const r of results) if (r.written) await record(itemFrom(r.id, `message ${r.id + 1}`, failureResult(e), false), failureResult(e));
          throw e;
        }
      }
      for (const r of results) await record(itemFrom(r.id, `message ${r.id + 1}`, r, r.written), jobResultOf(r));
    }
  };

  const send = async (chunk: MboxChunk): Promise<void> => {
    await window.room(() => window.size < pool.size * pool.perWorker && bytesInFlight < MAX_BYTES_IN_FLIGHT);
    const seq = sent++;
    bytesInFlight += chunk.bytes;
    const task: BulkTask | undefined = chunk.items.length === 0 ? undefined : { kind: 'entries', data: joinStandalone(chunk.pieces, chunk.bytes), items: chunk.items };
    chunk.pieces = [];
    window.add((async () => {
      const answer = task === undefined ? { results: [] } : await runChunk(pool, task);
      done.set(seq, { chunk, answer });
      writing = writing.then(flush);
      await writing;
    })());
  };

  const fresh = (): MboxChunk => ({ ids: [], refused: new Map(), items: [], pieces: [], bytes: 0 });
  try {
    const stream = createReadStream(input);
    stream.on('data', (chunk) => onBytes(chunk.length));
    let chunk = fresh();
    for await (const entry of splitMbox(stream, MAX_MESSAGE_BYTES)) {
      chunk.ids.push(entry.index);
      if (entry.error !== undefined || entry.message === undefined) {
        chunk.refused.set(entry.index, failureResult(entry.error ?? new KakitomeError('MALFORMED', 'Malformed input: empty mbox entry.')));
      } else {
        chunk.items.push({ id: entry.index, envelope: entry.envelope, start: chunk.bytes, end: chunk.bytes + entry.message.length });
        chunk.pieces.push(entry.message);
        chunk.bytes += entry.message.length;
      }
      if (chunk.ids.length >= CHUNK_MESSAGES || chunk.bytes >= CHUNK_BYTES) {
        await send(chunk);
        chunk = fresh();
      }
    }
    if (chunk.ids.length > 0) await send(chunk);
    await window.drain();
    await writing;
    await writer.commit();
  } catch (e) {
    await writer.abort();
    throw e;
  }
}

/** The results of a chunk in input order: the worker's, with the entries refused before it in their places. */
function mergeResults(chunk: MboxChunk, answer: BulkAnswer): BulkItemResult[] {
  let next = 0;
  return chunk.ids.map((id) => {
    const r = chunk.refused.get(id);
    return r !== undefined ? { id, exitCode: r.exitCode, failure: r.failure!, written: false } : answer.results[next++]!;
  });
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
 * Runs one chunk. A worker that died under it (out of memory, a native crash) took
 * the whole chunk down: its messages run again one by one, so only the message that
 * kills a worker fails, and every other one is still processed.
 */
async function runChunk(pool: WorkerPool<BulkTask, BulkAnswer>, task: Exclude<BulkTask, { kind: 'check' }>): Promise<BulkAnswer> {
  try {
    return await pool.run(task);
  } catch (e) {
    if (task.items.length === 1) return { results: [{ id: task.items[0]!.id, ...failureResult(e), written: false }] };
    const singles: Array<Exclude<BulkTask, { kind: 'check' }>> = task.kind === 'files'
      ? task.items.map((item) => ({ ...task, items: [item] }))
      : task.items.map((item) => ({ kind: 'entries', data: joinStandalone([task.data.subarray(item.start, item.end)], item.end - item.start), items: [{ ...item, start: 0, end: item.end - item.start }] }));
    const answers = await Promise.all(singles.map((t) => runChunk(pool, t)));
    const outputs = answers.map((a) => a.output).filter((o): o is Uint8Array => o !== undefined);
    return {
      results: answers.flatMap((a) => a.results),
      ...(task.kind === 'entries' ? { output: joinStandalone(outputs, outputs.reduce((n, o) => n + o.byteLength, 0)) } : {}),
    };
  }
}

function failureResult(e: unknown): JobResult {
  return { exitCode: exitCodeForError(e), failure: toFailure(e) };
}
