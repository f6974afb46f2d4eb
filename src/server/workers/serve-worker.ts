/**
 * A serving thread of `kakitome serve` (start-serve-workers.ts): the whole HTTP
 * server (API and console) and the submission port, listening on the port every
 * serving thread shares (SO_REUSEPORT: the kernel spreads the connections), with
 * a store connection, a service cache and counters of its own. What must hold for
 * the node as a whole is the coordinating thread's, asked over the channel:
 *
 * - audit rows (key uses, api.sign, every Store.audit) are committed by the
 *   coordinator's store, in commits shared by all threads; a row's promise here
 *   settles once it is committed there, so an answer still waits for its rows;
 * - rate limits (API keys, the console's) are the coordinator's buckets: a limit
 *   holds per node whatever thread answers (keys without a limit ask nothing);
 * - the console's one-time downloads are held by the coordinator;
 * - /metrics sums every thread's counters;
 * - log lines are written there: they ride with the next hand-over of audit rows
 *   (one message per turn of the event loop for both, not one each), or go on their
 *   own within LOG_RIDE_MS when no rows are handed over (an idle node, other routes).
 *
 * The master key comes from the coordinator (read once, a KeyObject), never from
 * this thread's environment.
 */
import { parentPort, resourceLimits, workerData } from 'node:worker_threads';
import { openStore, type StoreConfig } from '../../store/open-store.ts';
import { TenantDirectory } from '../../store/tenant-directory.ts';
import type { AuditRow } from '../../store/record-key-use.ts';
import type { HostPort } from '../../smtp/parse-host-port.ts';
import type { ServeConfig } from '../config.ts';
import type { Handover, HandoverStore } from '../console/handovers.ts';
import { Metrics } from '../metrics.ts';
import type { RateDecision, RateGate } from '../rate-limiter.ts';
import { ServiceCache } from '../service-cache.ts';
import type { BatchHealth, LogEntry } from '../service-context.ts';
import type { SubmissionConfig } from '../smtp/submission-config.ts';
import type { RunningSubmission } from '../smtp/start-submission.ts';
import { startServer, type RunningServer } from '../start-server.ts';
import { ThreadChannel } from './thread-channel.ts';
import { createLineLog } from '../line-log.ts';
import { persistCompileCache } from './persist-compile-cache.ts';

export interface ServeWorkerData {
  /** Where the store is, with the master key the coordinator read. */
  store: Pick<StoreConfig, 'home' | 'databaseUrl' | 'masterKey'>;
  /** The HTTP server's configuration (port: the shared port once the first thread bound it). */
  config: ServeConfig;
  http: boolean;
  submission?: SubmissionConfig;
  version: string;
}

/** What a serving thread bound, for the coordinator's "listening" lines. */
export interface ServeWorkerReady {
  url?: string;
  smtp?: HostPort;
}

const data = workerData as ServeWorkerData;
const channel = new ThreadChannel(parentPort!);

/**
 * The longest a log line waits for audit rows to ride with. Under load a serving
 * thread hands rows over in every turn of its event loop, so its lines cost no
 * message of their own: a message between threads (a structured clone, the
 * coordinator's wake-up and its handler) costs more than the rows it carries
 * (docs/performance.md, session 11).
 */
const LOG_RIDE_MS = 5;
const lineLog = createLineLog((text) => channel.send('log', text), { delayMs: LOG_RIDE_MS });
const log = (entry: LogEntry) => lineLog.log(entry);
const logLine = (json: string) => lineLog.append(`${json}\n`);

const rateLimiter: RateGate = {
  take: (key, ratePerMinute) => (ratePerMinute === undefined ? { allowed: true, retryAfter: 0 } : channel.call<RateDecision>('rate', key, ratePerMinute)),
};

const handovers: HandoverStore = {
  hold: (personId, fileName, contentType, bytes) => channel.call<string>('hold', personId, fileName, contentType, bytes),
  take: async (id, personId) => {
    const h = await channel.call<Handover | undefined>('take', id, personId);
    // A Buffer crosses threads as a Uint8Array.
    return h && { ...h, bytes: Buffer.from(h.bytes.buffer, h.bytes.byteOffset, h.bytes.byteLength) };
  },
};

const metrics = new Metrics();
let server: RunningServer | undefined;
// With the batch thread's counters (batch-sign) when the HTTP server runs one.
channel.handle('metrics-snapshot', () => (server ? server.snapshot() : metrics.snapshot()));
// This thread's batch side, for the node's /healthz (start-serve-workers.ts combines them).
channel.handle('own-batch-health', (): BatchHealth => server?.batchHealth() ?? { state: 'running' });

let running: { close(): Promise<void> } | undefined;

channel.handle('start', async (): Promise<ServeWorkerReady> => {
  const store = await openStore({ ...data.store, actor: 'serve', auditWriter: (rows: AuditRow[]) => channel.call<void>('audit', rows, lineLog.take()) });
  const tenants = new TenantDirectory(store);
  const cache = new ServiceCache(store, tenants);
  const shared = { rateLimiter, metrics, cache, log, logLine, version: data.version };
  let smtp: RunningSubmission | undefined;
  let stopping = false;
  try {
    if (data.http) server = await startServer(store, data.config, { ...shared, reusePort: true, renderMetrics: () => channel.call<string>('metrics'), batchHealth: () => channel.call<BatchHealth>('batch-health'), console: { handovers }, batchThread: { location: data.store, write: (text) => channel.send('log', text) } });
    if (data.submission) {
      const { startSubmission } = await import('../smtp/start-submission.ts');
      smtp = await startSubmission({ store, tenants, config: data.config, ...shared, shuttingDown: () => stopping }, data.submission, { reusePort: true });
    }
  } catch (e) {
    await (server ? server.close() : store.close());
    throw e;
  }
  running = {
    async close() {
      stopping = true;
      // The submission port first: its messages in flight still need the store, which the HTTP server closes.
      await smtp?.stop();
      await (server ? server.close() : store.close());
    },
  };
  // Now, not when the thread is terminated at SIGTERM (persist-compile-cache.ts).
  persistCompileCache();
  log({ time: new Date().toISOString(), level: 'info', msg: 'serving thread', youngGenerationMb: resourceLimits.maxYoungGenerationSizeMb });
  return { ...(server ? { url: server.url } : {}), ...(smtp ? { smtp: smtp.listening } : {}) };
});

channel.handle('stop', async () => {
  await running?.close();
  lineLog.flush();
});
