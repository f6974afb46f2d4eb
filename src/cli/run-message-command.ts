/**
 * What sign, verify, encrypt and decrypt share: pick single-message or batch mode
 * from IN, build the job, run it, write OUT (atomically, and only when the job
 * allows), print the verdict (JSON on stdout with --json, else a human report on
 * stderr) and return the exit status.
 */
import { createJob } from './jobs.ts';
import { runJob, toFailure, type JobName, type JobResult, type StreamJob, type StreamJobResult } from './job.ts';
import { EXIT_OK, exitCodeForError, type ExitCode } from './exit-codes.ts';
import { isStdio, readStream, writeOutput, writeStdout } from './io.ts';
import { openMessageInput } from './open-message-input.ts';
import { openOutputSink } from './open-output-sink.ts';
import { stripEnvelopeLine } from '../mime/mbox.ts';
import { detectBatchKind, runBatch, type BatchItem, type BatchSummary } from './bulk.ts';
import { describeError, describeFailure } from './describe-error.ts';
import type { VerdictView } from '../smime/verdict-view.ts';
import { unlockMessageStore, type StoreLocation } from './commands/store-options.ts';

export interface MessageCommandSpec {
  command: JobName;
  /** Plain data: rebuilt into a job on this thread and in each batch worker. */
  jobOptions: unknown;
  input?: string;
  output?: string;
  /** Print the structured verdict on stdout (verify, decrypt). */
  json?: boolean;
  /** Treat IN as an mbox even if it does not start with a "From " line. */
  mbox?: boolean;
  /** Worker threads for a batch. */
  jobs?: number;
}

/** The verdict --json prints when the command failed before reaching one. */
function errorVerdict(e: unknown): VerdictView {
  const f = toFailure(e);
  return { status: 'error', code: f.code, summary: f.message, signers: [], warnings: [] };
}

async function printJson(value: unknown): Promise<void> {
  await writeStdout(Buffer.from(JSON.stringify(value, null, 2) + '\n'));
}

/**
 * Whether the job takes private keys from the store: sign, decrypt without key
 * files, encrypt --sign. Verify and plain encrypt only read certificates and trust
 * anchors, which needs no master key (and asks for no passphrase).
 */
function usesStoredKeys(spec: MessageCommandSpec): boolean {
  const o = spec.jobOptions as { signFromStore?: boolean; p12?: string; cert?: string; key?: string };
  switch (spec.command) {
    case 'sign': return true;
    case 'decrypt': return o.p12 === undefined && (o.cert === undefined || o.key === undefined);
    case 'encrypt': return o.signFromStore === true;
    default: return false;
  }
}

/** The spec with its key store's master key opened here, once, before any job or worker (StoreLocation.masterKey), when the job uses stored keys. */
async function unlockStore(spec: MessageCommandSpec): Promise<MessageCommandSpec> {
  const options = spec.jobOptions as { store?: StoreLocation } | undefined;
  if (!options?.store || !usesStoredKeys(spec)) return spec;
  return { ...spec, jobOptions: { ...options, store: await unlockMessageStore(options.store) } };
}

export async function runMessageCommand(given: MessageCommandSpec): Promise<ExitCode> {
  let spec = given;
  try {
    spec = await unlockStore(given);
    const kind = await detectBatchKind(spec.input, spec.mbox === true, !isStdio(spec.output));
    if (kind !== undefined) return await runBatchCommand(spec, kind);
    return await runSingle(spec);
  } catch (e) {
    if (spec.json) await printJson(errorVerdict(e));
    process.stderr.write(describeError(spec.command, e) + '\n');
    return exitCodeForError(e);
  }
}

async function runSingle(spec: MessageCommandSpec): Promise<ExitCode> {
  // Credentials first: a wrong passphrase is reported before stdin is consumed.
  const job = await createJob(spec.command, spec.jobOptions);
  let result: JobResult;
  try {
    const input = await openMessageInput(spec.input);
    if (input.kind === 'stream' && job.stream) return await runStreamed(spec, job.stream, input.open(job.streamTakesReusedBuffers === true));
    // A job that cannot stream (a key store choosing recipients...) takes the message whole, up to the memory bound.
    const message = input.kind === 'whole' ? stripEnvelopeLine(input.data) : await readStream(input.open(false), spec.input === undefined || spec.input === '-' ? 'Standard input' : `Input ${spec.input}`);
    result = await runJob(job, message);
  } finally {
    await job.close?.();
  }
  if (result.failure) {
    if (spec.json) await printJson(result.verdict ?? { status: 'error', code: result.failure.code, summary: result.failure.message, signers: [], warnings: [] });
    process.stderr.write(describeFailure(spec.command, result.failure) + '\n');
    return result.exitCode;
  }
  // With --json and no -o, stdout carries the verdict, so the message is not written.
  if (result.output !== undefined && !(spec.json && isStdio(spec.output))) {
    await writeOutput(spec.output, result.output);
  }
  printWarnings(spec.command, result.warnings);
  if (result.verdict) {
    if (spec.json) await printJson(result.verdict);
    else await printVerdict(spec.command, result.verdict, result.exitCode === EXIT_OK);
  }
  return result.exitCode;
}

/**
 * A message too large to hold in memory, through the job's streaming form. OUT is
 * kept only when the job says so (e.g. verify: a trusted signature); a thrown error
 * discards it and reaches runMessageCommand's report.
 */
async function runStreamed(spec: MessageCommandSpec, stream: StreamJob, chunks: AsyncIterable<Buffer>): Promise<ExitCode> {
  const sink = await openOutputSink(spec.output, { discardAll: spec.json === true && isStdio(spec.output), directToStdout: spec.command === 'decrypt' });
  let result: StreamJobResult;
  try {
    result = await stream(chunks, sink.writable);
  } catch (e) {
    await sink.discard();
    throw e;
  }
  if (result.keepOutput) await sink.keep();
  else await sink.discard();
  printWarnings(spec.command, result.warnings);
  if (result.verdict) {
    if (spec.json) await printJson(result.verdict);
    else await printVerdict(spec.command, result.verdict, result.exitCode === EXIT_OK);
  }
  return result.exitCode;
}

/**
 * The human report of a verdict on standard error. Its module, and the MIME decoders
 * it reads the parts with, load only when a verdict is printed: sign, encrypt and
 * every batch never print one (a batch's main thread loaded them for nothing).
 */
async function printVerdict(command: JobName, verdict: VerdictView, ok: boolean): Promise<void> {
  const { renderVerdict } = await import('./render-verdict.ts');
  process.stderr.write(renderVerdict(verdict, ok, command));
}

function printWarnings(command: string, warnings: readonly string[] | undefined): void {
  for (const w of warnings ?? []) process.stderr.write(`kakitome ${command}: warning: ${w}\n`);
}

async function runBatchCommand(spec: MessageCommandSpec, kind: 'directory' | 'mbox'): Promise<ExitCode> {
  // --json on a batch writes JSON Lines: one object per message as it finishes, then
  // a summary, so a batch of millions never holds its reports in memory.
  const summary: BatchSummary = await runBatch({
    job: spec.command,
    jobOptions: spec.jobOptions,
    input: spec.input!,
    output: spec.output,
    kind,
    ...(spec.jobs !== undefined ? { workers: spec.jobs } : {}),
    ...(spec.json ? {
      onResult: (item: BatchItem, result: JobResult) => writeStdout(Buffer.from(JSON.stringify({
        type: 'message', ...item, ...(result.verdict ? { verdict: result.verdict } : {}),
      }) + '\n')),
    } : {}),
  });
  const rate = summary.total / Math.max(summary.seconds, 0.001);
  const verb = { sign: 'signed', verify: 'verified', encrypt: 'encrypted', decrypt: 'decrypted' }[spec.command];
  // A message written with a failing verdict (decrypt: an untrusted inner signer) is neither a success nor a failure.
  const flagged = summary.flagged > 0 ? `, ${summary.flagged} ${verb} and written with a problem (see their reports)` : '';
  process.stderr.write(`kakitome ${spec.command}: ${summary.succeeded} of ${summary.total} messages ${verb}${flagged}, ${summary.failed} failed (${summary.seconds.toFixed(2)} s, ${rate.toFixed(0)} msg/s) into ${spec.output}\n`);
  if (spec.json) {
    await writeStdout(Buffer.from(JSON.stringify({
      type: 'summary',
      status: summary.failed > 0 ? 'failed' : summary.flagged > 0 ? 'flagged' : 'ok',
      total: summary.total,
      succeeded: summary.succeeded,
      flagged: summary.flagged,
      failed: summary.failed,
      seconds: summary.seconds,
      exitCode: summary.exitCode,
    }) + '\n'));
  }
  return summary.exitCode;
}
