/**
 * Starts the thread a server signs batch chunks in (batch-thread.ts), with a small
 * young generation (BATCH_YOUNG_GENERATION_MB): the rest of the process keeps
 * V8's default, which POST /api/v1/sign needs. The thread's audit rows are
 * committed by `store` (this thread's, or through it the coordinator's), its log
 * lines written by `log`; a thread that dies is reported by `failed`, and its
 * chunk is claimed again by a node once its lease runs out.
 */
import { Worker } from 'node:worker_threads';
import type { StoreConfig } from '../../store/open-store.ts';
import type { AuditRow } from '../../store/record-key-use.ts';
import type { Store } from '../../store/store.ts';
import type { ServeConfig } from '../config.ts';
import type { MetricsSnapshot } from '../metrics.ts';
import { ProblemError } from '../problem.ts';
import { garbageMeter, releaseUnusedHeap } from './collect-garbage.ts';
import { batchNodeName } from './batch-worker.ts';
import { ThreadChannel, transferBytes, watchThread } from '../workers/thread-channel.ts';
import type { BatchThreadData, StoreUploadAnswer } from './batch-thread.ts';
import type { StoredUpload, UploadJob } from './store-upload-chunks.ts';

/**
 * The batch isolate's young generation, MiB: 3 is V8's 1 MiB semi-spaces (the
 * young generation is three semi-spaces), what `--max-semi-space-size=1` gives a
 * whole process. Measured on a node signing P-256 batches (docs/performance.md).
 */
export const BATCH_YOUNG_GENERATION_MB = 3;

export interface BatchThread {
  wake(): void;
  /** An upload's body cut into chunks and stored in the thread (batch-thread.ts), this thread handing it over a piece at a time. */
  storeUpload(job: UploadJob, body: AsyncIterable<Buffer>): Promise<StoredUpload>;
  /**
   * A batch's outputs read in the thread (src/store/batch-blobs.ts) and handed over a
   * piece at a time, moved across, not copied: so this thread parses none of the
   * store's answers. Returning early closes the thread's reading.
   */
  readOutputs(batchId: string, outputs: readonly string[]): AsyncGenerator<Buffer>;
  /** The thread's counters (batch-sign), for /metrics. */
  snapshot(): Promise<MetricsSnapshot | undefined>;
  /** The chunk in hand is released, the thread's store closed, the thread gone. */
  stop(): Promise<void>;
  /** Resolves if the thread dies before stop(). */
  failed: Promise<Error>;
  /** Resolves once the thread exited (after `failed`: its store connection closed with it). */
  exited: Promise<void>;
  /** The thread's name in the queue (batch-worker.ts batchNodeName): the node its chunks are claimed by. */
  node: string;
  /** The store's passing trouble the thread's workers wait out now (batch-worker.ts), or undefined. */
  storeTrouble(): string | undefined;
}

/** The bytes handed to the batch thread at a time: about 1 MiB, in memory of their own so they move across without a copy. */
export const UPLOAD_PIECE_BYTES = 1024 * 1024;
/** How many of the upload's bytes pass through this thread between young-generation collections (collect-garbage.ts). */
export const UPLOAD_GARBAGE_BYTES = 8 * 1024 * 1024;
/** An upload at least this large gives back the heap it grew, in both threads, once it is stored (collect-garbage.ts releaseUnusedHeap). */
export const UPLOAD_RELEASE_BYTES = 64 * 1024 * 1024;

/** The body's chunks (64 KiB from a socket) gathered into pieces of UPLOAD_PIECE_BYTES, each in an ArrayBuffer of its own. */
async function* handOverPieces(body: AsyncIterable<Buffer>, count: { bytes: number }): AsyncGenerator<Buffer> {
  const collect = garbageMeter(UPLOAD_GARBAGE_BYTES);
  let held: Buffer[] = [];
  let size = 0;
  const take = () => {
    const piece = Buffer.allocUnsafeSlow(size);
    let at = 0;
    for (const b of held) at += b.copy(piece, at);
    held = [];
    size = 0;
    return piece;
  };
  for await (const chunk of body) {
    held.push(chunk);
    size += chunk.length;
    count.bytes += chunk.length;
    if (size >= UPLOAD_PIECE_BYTES) {
      collect(size);
      yield take();
    }
  }
  if (size) yield take();
}

function threadUrl(): URL {
  // Development runs the .ts sources (Node 24 type stripping); the package runs dist/*.js.
  return new URL(import.meta.url.endsWith('.ts') ? './batch-thread.ts' : './batch-thread.js', import.meta.url);
}

export async function startBatchThread(o: { store: Store; location: BatchThreadData['store'] & Pick<StoreConfig, 'masterKey'>; config: ServeConfig; version: string; write: (text: string) => void }): Promise<BatchThread> {
  const data: BatchThreadData = { store: o.location, config: o.config, version: o.version };
  const worker = new Worker(threadUrl(), { workerData: data, resourceLimits: { maxYoungGenerationSizeMb: BATCH_YOUNG_GENERATION_MB } });
  const channel = new ThreadChannel(worker);
  channel.handle('audit', (rows: AuditRow[]) => o.store.recordAuditRows(rows));
  channel.handle('log', (text: string) => o.write(text));
  let storeTrouble: string | undefined;
  channel.handle('store-trouble', (cause: string | null) => void (storeTrouble = cause ?? undefined));
  // Uploads being handed over, by id: each gives its next piece (or null at its end) when the thread asks.
  const uploads = new Map<number, () => Promise<Uint8Array | null>>();
  let nextUpload = 0;
  channel.handle('upload-next', async (id: number) => {
    const piece = await uploads.get(id)?.();
    return piece ? transferBytes(piece) : null;
  });
  const storeUpload = async (job: UploadJob, body: AsyncIterable<Buffer>): Promise<StoredUpload> => {
    const id = nextUpload++;
    const count = { bytes: 0 };
    const pieces = handOverPieces(body, count)[Symbol.asyncIterator]();
    // A failure of this side's reading (413, a broken connection, a lost lease) is thrown here as it was, status and all.
    let failure: { error: unknown } | undefined;
    uploads.set(id, async () => {
      try {
        const r = await pieces.next();
        return r.done ? null : r.value;
      } catch (e) {
        failure = { error: e };
        throw e;
      }
    });
    try {
      const answer = await channel.call<StoreUploadAnswer>('store-upload', id, job);
      if (failure) throw failure.error;
      if (answer.ok) return answer.stored;
      throw new ProblemError(answer.problem.status, answer.problem.code, answer.problem.message, answer.problem.headers, answer.problem.remedy);
    } catch (e) {
      throw failure ? failure.error : e;
    } finally {
      uploads.delete(id);
      await pieces.return?.(undefined).catch(() => undefined);
      if (count.bytes >= UPLOAD_RELEASE_BYTES) releaseUnusedHeap();
    }
  };
  let nextRead = 0;
  async function* readOutputs(batchId: string, outputs: readonly string[]): AsyncGenerator<Buffer> {
    const id = nextRead++;
    await channel.call('outputs-open', id, batchId, outputs);
    let finished = false;
    try {
      for (;;) {
        const piece = await channel.call<Uint8Array | null>('outputs-next', id);
        if (!piece) {
          finished = true;
          return;
        }
        yield Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
      }
    } finally {
      if (!finished) await channel.call('outputs-close', id).catch(() => undefined);
    }
  }
  let stopping = false;
  let report: (e: Error) => void = () => {};
  const failed = new Promise<Error>((resolve) => (report = resolve));
  const exited = watchThread(worker, channel, 'The batch thread', () => stopping, report);
  const stop = async () => {
    stopping = true;
    await channel.call('stop').catch(() => undefined);
    await worker.terminate();
    await exited;
  };
  try {
    await channel.call('start');
  } catch (e) {
    await stop();
    throw e;
  }
  return {
    wake: () => channel.send('wake'),
    storeUpload,
    readOutputs,
    snapshot: () => channel.call<MetricsSnapshot>('metrics-snapshot').catch(() => undefined),
    stop,
    failed,
    exited,
    node: batchNodeName(worker.threadId),
    storeTrouble: () => storeTrouble,
  };
}
