/**
 * The body of one batch worker: builds the job once from the (plain-data) options
 * it was started with, then answers each message with a JobResult.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createJob } from './jobs.ts';
import { runJob, toFailure, type Job, type JobName, type JobResult } from './job.ts';
import { exitCodeForError } from './exit-codes.ts';

export interface BulkWorkerData {
  job: JobName;
  options: unknown;
}

export interface BulkTask {
  id: number;
  message: Uint8Array;
}

export interface BulkAnswer {
  id: number;
  result: JobResult;
}

const data = workerData as BulkWorkerData;
let ready: Promise<Job>;
try {
  ready = createJob(data.job, data.options);
} catch (e) {
  ready = Promise.reject(e);
}
// Answer every message with the start-up failure instead of crashing in a loop.
ready.catch(() => {});

parentPort!.on('message', async (task: BulkTask) => {
  let result: JobResult;
  try {
    const job = await ready;
    result = await runJob(job, Buffer.from(task.message.buffer, task.message.byteOffset, task.message.byteLength));
  } catch (e) {
    result = { exitCode: exitCodeForError(e), failure: toFailure(e) };
  }
  const answer: BulkAnswer = { id: task.id, result };
  const transfer = result.output && result.output.byteLength === result.output.buffer.byteLength && !(result.output.buffer instanceof SharedArrayBuffer) ? [result.output.buffer] : [];
  parentPort!.postMessage(answer, transfer as ArrayBuffer[]);
});
