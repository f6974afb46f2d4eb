/**
 * The thread a server signs its batch chunks in (start-batch-thread.ts starts it):
 * a BatchWorker over a store connection of its own, in an isolate whose young
 * generation is small. Its audit rows go to the starting thread's store (committed
 * there, in the commits every other row shares), its log lines and counters too.
 *
 * Why a thread of its own: signing a million messages allocates some 100 GB of
 * short-lived objects (about 85 KB a message), and under that rate V8 grows the young
 * generation to its largest and the old generation behind it: a node's RSS passed
 * 300 MiB at 300,000 messages. A young generation of 1 MiB semi-spaces kept it
 * flat, but the same limit on the serving threads cost POST /api/v1/sign about a
 * third more CPU per request (docs/performance.md, "Batches through the signing
 * service"). V8 sets the limit per isolate, so the batch isolate takes the small
 * one and the serving threads keep the default.
 */
import { parentPort, resourceLimits, workerData } from 'node:worker_threads';
import { remedyOf, type ErrorCode, type Remedy } from '../../errors.ts';
import { BatchDirectory } from '../../store/batch-directory.ts';
import { openBatchBlobs } from '../../store/batch-blobs.ts';
import { openStore, type StoreConfig } from '../../store/open-store.ts';
import type { AuditRow } from '../../store/record-key-use.ts';
import { TenantDirectory } from '../../store/tenant-directory.ts';
import { batchConfigOf, type ServeConfig } from '../config.ts';
import { createLineLog } from '../line-log.ts';
import { Metrics } from '../metrics.ts';
import { ProblemError } from '../problem.ts';
import { ServiceCache } from '../service-cache.ts';
import type { ServiceContext } from '../service-context.ts';
import { ThreadChannel, transferBytes } from '../workers/thread-channel.ts';
import { persistCompileCache } from '../workers/persist-compile-cache.ts';
import { ownedCopy } from '../../threads/owned-copy.ts';
import { BatchWorker, CHUNK_GARBAGE_BYTES } from './batch-worker.ts';
import { collectGarbageAbove, garbageMeter, releaseUnusedHeap } from './collect-garbage.ts';
import { UPLOAD_GARBAGE_BYTES, UPLOAD_RELEASE_BYTES } from './start-batch-thread.ts';
import { storeUploadChunks, type StoredUpload, type UploadJob } from './store-upload-chunks.ts';

/** What 'store-upload' answers: the chunks stored, or the refusal the upload met (its problem details). */
export type StoreUploadAnswer = { ok: true; stored: StoredUpload } | { ok: false; problem: { status: number; code: ErrorCode; message: string; headers: Record<string, string>; remedy?: Remedy } };

export interface BatchThreadData {
  /** Where the store is, with the master key the starting thread holds. */
  store: Pick<StoreConfig, 'home' | 'databaseUrl' | 'masterKey'>;
  config: ServeConfig;
  version: string;
}

const data = workerData as BatchThreadData;
const channel = new ThreadChannel(parentPort!);
const lines = createLineLog((text) => channel.send('log', text));
const metrics = new Metrics();
let running: { worker: BatchWorker; directory: BatchDirectory; close: () => Promise<void> } | undefined;

channel.handle('start', async () => {
  const store = await openStore({ ...data.store, actor: 'serve', auditWriter: (rows: AuditRow[]) => channel.call<void>('audit', rows) });
  try {
    const tenants = new TenantDirectory(store);
    const ctx: ServiceContext = {
      store, tenants, config: data.config, metrics, version: data.version, cache: new ServiceCache(store, tenants),
      // Batches take no request rate: the upload took it.
      rateLimiter: { take: () => ({ allowed: true, retryAfter: 0 }) },
      log: (entry) => lines.log(entry), shuttingDown: () => false,
    };
    const blobs = await openBatchBlobs(store.engine);
    const worker = new BatchWorker(ctx, blobs, (trouble) => channel.send('store-trouble', trouble ?? null));
    worker.start();
    running = { worker, directory: new BatchDirectory(store, blobs), close: () => store.close() };
    // Now, not when the thread is terminated at SIGTERM (persist-compile-cache.ts).
    persistCompileCache();
    // What its start-up left (modules, the store's opening) freed before the first chunk.
    releaseUnusedHeap();
    lines.log({ time: new Date().toISOString(), level: 'info', msg: 'batch thread', node: worker.node, youngGenerationMb: resourceLimits.maxYoungGenerationSizeMb });
  } catch (e) {
    await store.close();
    throw e;
  }
});

channel.handle('wake', () => running?.worker.wake());

/**
 * An upload received by the starting thread, cut into messages and chunks here
 * (store-upload-chunks.ts): its body's bytes are asked for a piece at a time
 * ('upload-next', moved across, not copied), so neither thread holds more than a
 * piece and a chunk. A ProblemError (a framing or count refusal) comes back as an
 * answer, with its status; any other failure as the call's error.
 */
channel.handle('store-upload', async (uploadId: number, job: UploadJob): Promise<StoreUploadAnswer> => {
  if (!running) throw new Error('The batch thread is not running.');
  const collect = garbageMeter(UPLOAD_GARBAGE_BYTES);
  let received = 0;
  const body = (async function* () {
    for (;;) {
      const piece = await channel.call<Uint8Array | null>('upload-next', uploadId);
      if (!piece) return;
      received += piece.byteLength;
      collect(piece.byteLength);
      // The pieces, messages and encoded chunks before this one: promoted (a chunk's messages outlive many of this small
      // young generation's collections), so only a full collection frees them; V8 would wait for about 32 MiB more.
      collectGarbageAbove(CHUNK_GARBAGE_BYTES);
      yield Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
    }
  })();
  try {
    const started = performance.now();
    const stored = await storeUploadChunks(running.directory, job, body, batchConfigOf(data.config));
    lines.log({ time: new Date().toISOString(), level: 'info', msg: 'batch upload', event: 'stored', node: running.worker.node, batch: job.batchId, messages: stored.total, chunks: stored.chunks, ms: Math.round(performance.now() - started) });
    return { ok: true, stored };
  } catch (e) {
    if (e instanceof ProblemError) return { ok: false, problem: { status: e.status, code: e.code, message: e.message, headers: e.headers, ...remedyOf(e) } };
    throw e;
  } finally {
    if (received >= UPLOAD_RELEASE_BYTES) releaseUnusedHeap();
  }
});

/**
 * A batch's outputs, read here for a serving thread that streams them
 * (start-batch-thread.ts readOutputs): each piece in memory of its own, moved
 * across. The store's answers (PostgreSQL's BYTEA as hex text) are parsed in this
 * isolate, whose young generation is small, and the pieces read before are freed
 * as the upload's are.
 */
const reads = new Map<number, AsyncGenerator<Buffer>>();
channel.handle('outputs-open', (id: number, batchId: string, outputs: string[]) => {
  if (!running) throw new Error('The batch thread is not running.');
  const blobs = running.directory.blobs;
  reads.set(id, (async function* () {
    for (const output of outputs) yield* blobs.read(batchId, output);
  })());
});
channel.handle('outputs-next', async (id: number) => {
  const read = reads.get(id);
  if (!read) throw new Error('No such read of batch outputs.');
  let next: IteratorResult<Buffer>;
  try {
    next = await read.next();
  } catch (e) {
    reads.delete(id);
    throw e;
  }
  if (next.done) {
    reads.delete(id);
    return null;
  }
  collectGarbageAbove(CHUNK_GARBAGE_BYTES);
  return transferBytes(ownedCopy(next.value));
});
channel.handle('outputs-close', async (id: number) => {
  const read = reads.get(id);
  reads.delete(id);
  await read?.return(undefined);
});

channel.handle('metrics-snapshot', () => metrics.snapshot());

channel.handle('stop', async () => {
  await running?.worker.stop();
  await running?.close();
  lines.flush();
});
