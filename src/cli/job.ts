/**
 * A job is one command applied to one message: sign, verify, encrypt or decrypt.
 * The same job runs on the main thread for a single message and inside each worker
 * of a batch, so its options are plain data (paths, flags, a resolved passphrase)
 * that can cross a worker boundary, and its result is plain data too.
 */
import type { Writable } from 'node:stream';
import type { ErrorCode, Remedy } from '../errors.ts';
import { isKakitomeError, remedyOf } from '../errors.ts';
import { exitCodeForError, type ExitCode } from './exit-codes.ts';
import type { VerdictView } from '../smime/verdict-view.ts';

export type JobName = 'sign' | 'verify' | 'encrypt' | 'decrypt';

export interface JobFailure {
  /** A stable Kakitome code, or INTERNAL for a bug. */
  code: ErrorCode | 'INTERNAL';
  message: string;
  /** What would fix it, in the library's terms (describe-error.ts names the CLI's way). */
  remedy?: Remedy;
}

export interface JobResult {
  exitCode: ExitCode;
  /** Bytes for OUT; absent when nothing may be written (e.g. a failed verification). */
  output?: Uint8Array;
  /** The verdict, for verify and decrypt. */
  verdict?: VerdictView;
  /** Set when the job threw instead of producing a verdict. */
  failure?: JobFailure;
  /** Notes for the user (e.g. a body part that could not carry the legacy display), printed on standard error. */
  warnings?: string[];
}

/** What a streamed job reports: its OUT went to the Writable it was given. */
export interface StreamJobResult {
  exitCode: ExitCode;
  /** The verdict, for verify and decrypt. */
  verdict?: VerdictView;
  /** False when what was written to OUT must be discarded (e.g. an untrusted signature). */
  keepOutput: boolean;
  /** Notes for the user (e.g. a part re-encoded), printed on standard error. */
  warnings?: string[];
}

/**
 * The same job over a message too large to hold in memory: reads `input` as it
 * streams and writes OUT to `output` (never ending it). Present only when the
 * job's options allow streaming (e.g. not for opaque signing).
 */
export type StreamJob = (input: AsyncIterable<Buffer>, output: Writable) => Promise<StreamJobResult>;

/**
 * `close` releases what the job holds open (a key store) once the last message is
 * done; batch workers are terminated instead.
 */
export type Job = ((message: Buffer) => Promise<JobResult>) & {
  close?: () => Promise<void>;
  stream?: StreamJob;
  /** The stream form copies what it keeps, so its input may reuse buffers (readFileChunks). */
  streamTakesReusedBuffers?: boolean;
};

/** Runs a job, turning a thrown error into a failed result (a batch never stops on one message). */
export async function runJob(job: Job, message: Buffer): Promise<JobResult> {
  try {
    return await job(message);
  } catch (e) {
    return { exitCode: exitCodeForError(e), failure: toFailure(e) };
  }
}

export function toFailure(e: unknown): JobFailure {
  if (isKakitomeError(e)) return { code: e.code, message: e.message, ...remedyOf(e) };
  return { code: 'INTERNAL', message: (e as Error)?.message ?? String(e) };
}
