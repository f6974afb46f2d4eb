/**
 * The body of one batch worker: builds the job once from the (plain-data) options
 * it was started with, then answers each task, a chunk of messages, with one
 * result per message. Tasks run one after the other, so answers come back in the
 * order the tasks came (worker-pool.ts relies on it).
 *
 * - `files` (directory batch): the worker reads each input file, runs the job and
 *   writes the output file itself (write-batch-file.ts), so the main thread only
 *   hands out names and counts results.
 * - `entries` (mbox batch): the messages come in one buffer; the worker runs the
 *   job on each and returns the outputs already formatted as mbox entries, in
 *   order, in one transferred buffer that the main thread appends to OUT.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { join } from 'node:path';
import { createJob } from './jobs.ts';
import { runJob, toFailure, type Job, type JobFailure, type JobName, type JobResult } from './job.ts';
import { exitCodeForError, type ExitCode } from './exit-codes.ts';
import { readFileBoundedSync } from './io.ts';
import { formatMboxEntry } from './mbox.ts';
import { writeBatchFile } from './write-batch-file.ts';
import { WriteGuard } from './write-guard.ts';
import type { VerdictView } from './verdict-view.ts';

export interface BulkWorkerData {
  job: JobName;
  options: unknown;
  /** The batch's WriteGuard (directory batches). */
  guard?: SharedArrayBuffer;
}

export interface FileItem {
  id: number;
  name: string;
}

export interface EntryItem {
  id: number;
  /** The From_ line's text, written back in front of the output. */
  envelope: string;
  /** The message: data.subarray(start, end). */
  start: number;
  end: number;
}

export type BulkTask =
  | { kind: 'files'; inDir: string; outDir: string; items: FileItem[] }
  | { kind: 'entries'; data: Uint8Array; items: EntryItem[] }
  /** Answers once the job is built: `failure` says why it cannot be (bad credentials). */
  | { kind: 'check' };

export interface BulkItemResult {
  id: number;
  exitCode: ExitCode;
  verdict?: VerdictView;
  failure?: JobFailure;
  /** Its output was written (directory) or is in the answer's `output` (mbox). */
  written: boolean;
}

export interface BulkAnswer {
  results: BulkItemResult[];
  /** check: the job could not be built. */
  failure?: JobFailure;
  /** entries: the outputs as mbox entries, in order (transferred). */
  output?: Uint8Array;
}

const data = workerData as BulkWorkerData;
const guard = new WriteGuard(data.guard);
let ready: Promise<Job>;
try {
  ready = createJob(data.job, data.options);
} catch (e) {
  ready = Promise.reject(e);
}
// Answer every message with the start-up failure instead of crashing in a loop.
ready.catch(() => {});

function failed(e: unknown): JobResult {
  return { exitCode: exitCodeForError(e), failure: toFailure(e) };
}

function itemResult(id: number, r: JobResult, written: boolean): BulkItemResult {
  const out: BulkItemResult = { id, exitCode: r.exitCode, written };
  if (r.verdict !== undefined) out.verdict = r.verdict;
  if (r.failure !== undefined) out.failure = r.failure;
  return out;
}

async function run(message: () => Buffer): Promise<JobResult> {
  try {
    return await runJob(await ready, message());
  } catch (e) {
    return failed(e);
  }
}

async function runFiles(task: Extract<BulkTask, { kind: 'files' }>): Promise<BulkAnswer> {
  const results: BulkItemResult[] = [];
  for (const { id, name } of task.items) {
    let r = await run(() => readFileBoundedSync(join(task.inDir, name), name));
    let written = false;
    if (r.output !== undefined) {
      try {
        writeBatchFile(task.outDir, name, r.output, guard);
        written = true;
      } catch (e) {
        r = failed(e);
      }
    }
    results.push(itemResult(id, r, written));
  }
  return { results };
}

async function runEntries(task: Extract<BulkTask, { kind: 'entries' }>): Promise<BulkAnswer> {
  const results: BulkItemResult[] = [];
  const pieces: Buffer[] = [];
  let size = 0;
  const input = Buffer.from(task.data.buffer, task.data.byteOffset, task.data.byteLength);
  for (const item of task.items) {
    const r = await run(() => input.subarray(item.start, item.end));
    if (r.output !== undefined) {
      const entry = formatMboxEntry(item.envelope, r.output);
      pieces.push(entry);
      size += entry.length;
    }
    results.push(itemResult(item.id, r, r.output !== undefined));
  }
  // One standalone buffer (never a slice of Node's shared pool) so it can be transferred.
  const output = Buffer.allocUnsafeSlow(size);
  let at = 0;
  for (const p of pieces) at += p.copy(output, at);
  return { results, output };
}

async function check(): Promise<BulkAnswer> {
  try {
    await ready;
    return { results: [] };
  } catch (e) {
    return { results: [], failure: toFailure(e) };
  }
}

let queue: Promise<void> = Promise.resolve();
parentPort!.on('message', (task: BulkTask) => {
  queue = queue.then(async () => {
    // A bug outside one message's job (or an answer that cannot be posted): every
    // message of the task is answered as failed, never left waiting.
    const failedTask = (e: unknown): BulkAnswer => task.kind === 'check'
      ? { results: [], failure: toFailure(e) }
      : { results: task.items.map(({ id }) => itemResult(id, failed(e), false)) };
    let answer: BulkAnswer;
    try {
      answer = task.kind === 'files' ? await runFiles(task) : task.kind === 'entries' ? await runEntries(task) : await check();
    } catch (e) {
      answer = failedTask(e);
    }
    try {
      parentPort!.postMessage(answer, answer.output ? [answer.output.buffer as ArrayBuffer] : []);
    } catch (e) {
      parentPort!.postMessage(failedTask(e));
    }
  });
});
