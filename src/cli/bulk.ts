/**
 * Batches: a directory of .eml files into another directory (same names), or an
 * mbox file into another mbox file, on a pool of worker threads (all cores by
 * default). One bad message is reported and skipped; it never stops the batch or
 * loses the others. A progress bar is drawn on stderr when stderr is a terminal,
 * and a summary always ends the run.
 *
 * Memory stays bounded: at most a window of messages (twice the pool size) is in
 * flight; mbox input is read as a stream, and its output is written in input order
 * through a reorder buffer no larger than that window.
 */
import { availableParallelism } from 'node:os';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, realpath, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { KakitomeError } from '../errors.ts';
import { WorkerPool } from './worker-pool.ts';
import type { BulkAnswer, BulkTask, BulkWorkerData } from './bulk-worker.ts';
import { toFailure, type JobName, type JobResult } from './job.ts';
import { EXIT_OK, exitCodeForError, worstExitCode, type ExitCode } from './exit-codes.ts';
import { MAX_MESSAGE_BYTES, describeFsError, openAtomicWriter, readFileBounded, syncDirectory, writeFileAtomic } from './io.ts';
import { splitMbox, formatMboxEntry, looksLikeMbox, type MboxEntry } from './mbox.ts';
import { Progress } from './progress.ts';

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
  succeeded: number;
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

/** Runs a batch to the end and returns its summary; throws only for problems with the batch itself. */
export async function runBatch(opts: BatchOptions): Promise<BatchSummary> {
  if (opts.output === undefined || opts.output === '-') {
    throw new KakitomeError('INVALID_ARGUMENT', opts.kind === 'directory'
      ? 'A directory batch needs -o OUTDIR (a directory for the results, not the input directory).'
      : 'An mbox batch needs -o FILE (the mbox to write).');
  }
  const started = process.hrtime.bigint();
  const size = Math.max(1, Math.min(opts.workers ?? availableParallelism(), 64));
  const data: BulkWorkerData = { job: opts.job, options: opts.jobOptions };
  const progress = new Progress(opts.job, opts.progress ?? process.stderr.isTTY === true);
  const failures: BatchItem[] = [];
  let total = 0;
  let failed = 0;
  let exitCode: ExitCode = EXIT_OK;
  let pool: WorkerPool<BulkTask, BulkAnswer> | undefined;
  const record = async (item: BatchItem, result: JobResult): Promise<void> => {
    total++;
    exitCode = worstExitCode([exitCode, item.exitCode]);
    progress.tick(item.exitCode === EXIT_OK);
    if (item.exitCode !== EXIT_OK) {
      failed++;
      if (failures.length < MAX_FAILURES_KEPT) failures.push(item);
      progress.note(`${item.name}: ${item.code ?? 'FAILED'}: ${item.message ?? 'failed'} (skipped)`);
    }
    await opts.onResult?.(item, result);
  };
  try {
    if (opts.kind === 'directory') {
      const names = await listMessages(opts.input, opts.output);
      progress.start(names.length);
      pool = new WorkerPool<BulkTask, BulkAnswer>(workerUrl(), data, Math.min(size, Math.max(1, names.length)));
      await runDirectory(pool, names, opts.input, opts.output, record);
    } else {
      const total = (await stat(opts.input)).size;
      progress.start(undefined, total);
      pool = new WorkerPool<BulkTask, BulkAnswer>(workerUrl(), data, size);
      await runMbox(pool, opts.input, opts.output, record, (bytes) => progress.bytes(bytes));
    }
  } finally {
    await pool?.close();
    progress.stop();
  }
  failures.sort((a, b) => a.index - b.index);
  return {
    kind: opts.kind,
    total,
    succeeded: total - failed,
    failed,
    seconds: Number(process.hrtime.bigint() - started) / 1e9,
    failures,
    exitCode,
  };
}

/** The .eml files directly in DIR (sorted), after checking OUTDIR is usable and not DIR itself. */
async function listMessages(dir: string, outDir: string): Promise<string[]> {
  await mkdir(outDir, { recursive: true }).catch((e: NodeJS.ErrnoException) => {
    throw new KakitomeError('INVALID_ARGUMENT', `Output directory ${outDir}: ${describeFsError(e)}.`, { cause: e });
  });
  const outInfo = await stat(outDir);
  if (!outInfo.isDirectory()) throw new KakitomeError('INVALID_ARGUMENT', `-o ${outDir}: a directory batch writes into a directory, and this is a file.`);
  if ((await realpath(dir)) === (await realpath(outDir))) {
    throw new KakitomeError('INVALID_ARGUMENT', `-o ${outDir} is the input directory: give another directory so the originals are not overwritten.`);
  }
  const entries = await readdir(dir, { withFileTypes: true });
  return entries.filter((e) => e.isFile() && /\.eml$/i.test(e.name)).map((e) => e.name).sort();
}

type Recorder = (item: BatchItem, result: JobResult) => Promise<void>;

async function runDirectory(pool: WorkerPool<BulkTask, BulkAnswer>, names: string[], inDir: string, outDir: string, record: Recorder): Promise<void> {
  let next = 0;
  // Each lane takes the next file when its previous one is done: 2 lanes per worker
  // keep every worker busy while a file is read or written.
  const lane = async (): Promise<void> => {
    while (next < names.length) {
      const id = next++;
      const name = names[id]!;
      let result: JobResult;
      try {
        const message = await readFileBounded(join(inDir, name), name);
        result = (await pool.run({ id, message })).result;
      } catch (e) {
        result = failureResult(e);
      }
      let written = false;
      if (result.output !== undefined) {
        try {
          await writeFileAtomic(resolve(outDir, name), result.output, { syncDirectory: false });
          written = true;
        } catch (e) {
          result = failureResult(e);
        }
      }
      await record(itemFrom(id, name, result, written), result);
    }
  };
  await Promise.all(Array.from({ length: pool.size * 2 }, lane));
  await syncDirectory(outDir);
}

async function runMbox(pool: WorkerPool<BulkTask, BulkAnswer>, input: string, output: string, record: Recorder, onBytes: (n: number) => void): Promise<void> {
  const writer = await openAtomicWriter(output);
  const window = pool.size * 2;
  const done = new Map<number, { entry: MboxEntry; result: JobResult }>();
  const inFlight = new Set<Promise<void>>();
  let nextToWrite = 0;
  let writing: Promise<void> = Promise.resolve();

  // Writes finished entries in input order; called after each completion.
  const flush = async (): Promise<void> => {
    for (let r = done.get(nextToWrite); r !== undefined; r = done.get(nextToWrite)) {
      done.delete(nextToWrite);
      nextToWrite++;
      const name = `message ${r.entry.index + 1}`;
      let written = false;
      let result = r.result;
      if (result.output !== undefined) {
        try {
          await writer.write(formatMboxEntry(r.entry.envelope, result.output));
          written = true;
        } catch (e) {
          result = failureResult(e);
          await record(itemFrom(r.entry.index, name, result, false), result);
          throw e;
        }
      }
      await record(itemFrom(r.entry.index, name, result, written), result);
    }
  };

  try {
    const stream = createReadStream(input);
    stream.on('data', (chunk) => onBytes(chunk.length));
    for await (const entry of splitMbox(stream, MAX_MESSAGE_BYTES)) {
      // Back-pressure: never more than `window` messages between reading and writing.
      while (entry.index - nextToWrite >= window) await Promise.race(inFlight);
      const p: Promise<void> = (async () => {
        const result: JobResult = entry.error !== undefined || entry.message === undefined
          ? failureResult(entry.error ?? new KakitomeError('MALFORMED', 'Malformed input: empty mbox entry.'))
          : await pool.run({ id: entry.index, message: entry.message }).then((a) => a.result, failureResult);
        done.set(entry.index, { entry: { ...entry, message: undefined } as MboxEntry, result });
        writing = writing.then(flush);
        await writing;
      })();
      inFlight.add(p);
      void p.finally(() => inFlight.delete(p)).catch(() => {});
    }
    await Promise.all(inFlight);
    await writing;
    await writer.commit();
  } catch (e) {
    await writer.abort();
    throw e;
  }
}

function failureResult(e: unknown): JobResult {
  return { exitCode: exitCodeForError(e), failure: toFailure(e) };
}
