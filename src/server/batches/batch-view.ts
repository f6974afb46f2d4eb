/**
 * GET /api/v1/batches/{id} and /result: a batch as the API shows it (progress and
 * a page of failures), and its signed result streamed chunk by chunk as one mbox
 * (a piece of at most 256 KiB in memory at a time; Content-Length is the sum of the
 * chunks' outputs, so a client sees a transfer cut short).
 */
import type { z } from 'zod';
import type { BatchDirectory, BatchRecord } from '../../store/batch-directory.ts';
import { ProblemError } from '../problem.ts';
import { garbageMeter } from './collect-garbage.ts';
import type { Batch, BatchSummary } from '../schemas.ts';

export const FAILURES_PER_PAGE = 1000;
/** Result bytes streamed between young-generation collections. */
const RESULT_GARBAGE_BYTES = 8 * 1024 * 1024;

export function batchPath(id: string): string {
  return `/api/v1/batches/${id}`;
}

export async function viewBatch(directory: BatchDirectory, batch: BatchRecord, failuresFrom = 0): Promise<z.infer<typeof Batch>> {
  const page = await directory.failures(batch.id, failuresFrom, FAILURES_PER_PAGE + 1);
  const more = page.length > FAILURES_PER_PAGE;
  return {
    ...summarizeBatch(batch),
    failures: page.slice(0, FAILURES_PER_PAGE),
    ...(more ? { nextFailuresFrom: page[FAILURES_PER_PAGE]!.index } : {}),
  };
}

/** A batch's progress, as GET /api/v1/batches lists it (no failures). */
export function summarizeBatch(batch: BatchRecord): z.infer<typeof BatchSummary> {
  const time = (name: 'queuedAt' | 'finishedAt' | 'expiresAt') => (batch[name] ? { [name]: batch[name].toISOString() } : {});
  return {
    id: batch.id,
    state: batch.state,
    total: batch.total,
    signed: batch.signed,
    failed: batch.failed,
    pending: Math.max(0, batch.total - batch.signed - batch.failed),
    mediaType: batch.mediaType,
    options: batch.options,
    receivedBytes: batch.receivedBytes,
    resultBytes: batch.resultBytes,
    createdAt: batch.createdAt.toISOString(),
    ...time('queuedAt'),
    ...time('finishedAt'),
    ...time('expiresAt'),
    ...(batch.state === 'done' ? { result: `${batchPath(batch.id)}/result` } : {}),
  };
}

/** GET /api/v1/batches's page boundary: the last listed batch, as an opaque value. */
export function batchCursor(batch: BatchRecord): string {
  return Buffer.from(`${batch.createdAt.toISOString()} ${batch.id}`).toString('base64url');
}

/** The batch a `before` value names; 400 INVALID_ARGUMENT for anything a page did not give. */
export function readBatchCursor(cursor: string): { createdAt: string; id: string } {
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z) ([0-9a-f-]{36})$/.exec(Buffer.from(cursor, 'base64url').toString('latin1'));
  if (!m) throw new ProblemError(400, 'INVALID_ARGUMENT', 'Query parameter before: not a value a page of GET /api/v1/batches gave (its next).');
  return { createdAt: m[1]!, id: m[2]! };
}

/** The signed result: 409 CONFLICT until the batch is done. */
export async function streamBatchResult(directory: BatchDirectory, batch: BatchRecord, readOutputs?: (batchId: string, outputs: readonly string[]) => AsyncGenerator<Buffer> | undefined): Promise<Response> {
  if (batch.state !== 'done') {
    throw new ProblemError(409, 'CONFLICT', `Batch ${batch.id} is ${batch.state} (${batch.signed + batch.failed} of ${batch.total} messages done): poll GET ${batchPath(batch.id)} until its state is done.`, { 'retry-after': '5' });
  }
  const parts = (await directory.resultParts(batch.id)).filter((p) => p.bytes > 0);
  // A piece at a time, pulled only as the client reads: one piece of the result in memory,
  // and the pieces sent freed every few MiB (collect-garbage.ts), not only once V8 would.
  // Where the batch thread reads them (PostgreSQL), they come over already in pieces of their own.
  const collect = garbageMeter(RESULT_GARBAGE_BYTES);
  const outputs = parts.map((p) => p.output);
  const source = readOutputs?.(batch.id, outputs) ?? (async function* () {
    for (const output of outputs) yield* directory.blobs.read(batch.id, output);
  })();
  const pieces = (async function* () {
    for await (const piece of source) {
      collect(piece.length);
      yield piece;
    }
  })();
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { done, value } = await pieces.next();
      if (done) controller.close();
      else controller.enqueue(new Uint8Array(value.buffer, value.byteOffset, value.byteLength));
    },
    async cancel() {
      await pieces.return(undefined);
    },
  }, { highWaterMark: 0 });
  return new Response(body, { status: 200, headers: { 'content-type': 'application/mbox', 'content-length': String(batch.resultBytes) } });
}
