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
import { ThreadChannel, watchThread } from '../workers/thread-channel.ts';
import type { BatchThreadData } from './batch-thread.ts';

/**
 * The batch isolate's young generation, MiB: 3 is V8's 1 MiB semi-spaces (the
 * young generation is three semi-spaces), what `--max-semi-space-size=1` gives a
 * whole process. Measured on a node signing P-256 batches (docs/performance.md).
 */
export const BATCH_YOUNG_GENERATION_MB = 3;

export interface BatchThread {
  wake(): void;
  /** The thread's counters (batch-sign), for /metrics. */
  snapshot(): Promise<MetricsSnapshot | undefined>;
  /** The chunk in hand is released, the thread's store closed, the thread gone. */
  stop(): Promise<void>;
  /** Resolves if the thread dies before stop(). */
  failed: Promise<Error>;
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
    snapshot: () => channel.call<MetricsSnapshot>('metrics-snapshot').catch(() => undefined),
    stop,
    failed,
  };
}
