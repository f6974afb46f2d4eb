/**
 * `kakitome serve --workers N` (default one per CPU): N serving threads
 * (serve-worker.ts), each a whole server on the same port (SO_REUSEPORT, the kernel
 * spreads connections over them), and this thread coordinating them. Why threads
 * that each serve, and not one thread that serves with a signing pool: handing a
 * 2 KB message to a worker and the signed one back costs about 70 µs of CPU, a
 * quarter of an RSA-2048 signature (docs/performance.md), while a thread that
 * serves whole requests sends nothing per message but its audit rows, in batches.
 *
 * This thread owns what must hold for the node: it commits every thread's audit
 * rows with its own store connection (one writer, so SQLite's write lock never
 * makes a serving thread wait, and each commit is shared by all threads), holds
 * the rate-limit buckets and the console's one-time downloads, sums the counters
 * for /metrics, combines every thread's batch side for /healthz (a batch thread
 * stopped for good on any serving thread is the node's 503, whichever thread
 * answers: combineBatchHealth), and writes the log lines. The first thread binds the port (0: any
 * free one); the others join it. Nothing else may hold it beforehand (probe-port.ts).
 *
 * A serving thread that dies unexpectedly is reported by `failed`: the caller stops
 * the others gracefully and exits with an error (a supervisor restarts the
 * service), as a crash of a single-threaded server would.
 */
import { Worker } from 'node:worker_threads';
import type { StoreConfig } from '../../store/open-store.ts';
import type { AuditRow } from '../../store/record-key-use.ts';
import type { Store } from '../../store/store.ts';
import type { HostPort } from '../../smtp/parse-host-port.ts';
import type { ServeConfig } from '../config.ts';
import { Handovers } from '../console/handovers.ts';
import { createConsoleContext, type ConsoleContext } from '../console/console-context.ts';
import { consoleOriginFor } from '../console/console-origin.ts';
import { TenantDirectory } from '../../store/tenant-directory.ts';
import type { BatchHealth, ServiceContext } from '../service-context.ts';
import { Metrics, type MetricsSnapshot } from '../metrics.ts';
import { RateLimiter } from '../rate-limiter.ts';
import type { SubmissionConfig } from '../smtp/submission-config.ts';
import { ThreadChannel, watchThread } from './thread-channel.ts';
import { probePort } from './probe-port.ts';
import type { ServeWorkerData, ServeWorkerReady } from './serve-worker.ts';

export interface ServeWorkersOptions {
  workers: number;
  /** This thread's store: it commits the audit rows of every serving thread. */
  store: Store;
  location: Pick<StoreConfig, 'home' | 'databaseUrl' | 'masterKey'>;
  config: ServeConfig;
  http: boolean;
  submission?: SubmissionConfig;
  version: string;
  /** Where log lines go (JSON lines, already joined). */
  write: (text: string) => void;
}

export interface RunningWorkers {
  url?: string;
  /** A console context on this thread's store (the first-run setup link is issued here). */
  console?: ConsoleContext;
  smtp?: HostPort;
  /** Resolves if a serving thread dies unexpectedly. */
  failed: Promise<Error>;
  /** Stops every thread gracefully (each finishes what it answers); the caller then closes the store. */
  stop(): Promise<void>;
}

interface Thread {
  worker: Worker;
  channel: ThreadChannel;
  exited: Promise<void>;
}

/** The console as this thread sees it: its store, buckets and downloads, the serving threads' address. */
function coordinatorConsole(o: ServeWorkersOptions, url: string, rateLimiter: RateLimiter, handovers: Handovers): ConsoleContext {
  const tenants = new TenantDirectory(o.store);
  const service: ServiceContext = {
    store: o.store, tenants, config: o.config, metrics: new Metrics(), rateLimiter, version: o.version, shuttingDown: () => false,
    log: (entry) => o.write(`${JSON.stringify(entry)}\n`),
  };
  return createConsoleContext(service, consoleOriginFor(url, o.config.publicUrl), { handovers, ...(o.config.checkMaxBytes ? { checkMaxBytes: o.config.checkMaxBytes } : {}), ...(o.config.stepUpWindowMs ? { stepUpWindowMs: o.config.stepUpWindowMs } : {}) });
}

/**
 * A serving thread's young generation, MiB: 4 MiB semi-spaces (the young generation is
 * three). V8 starts marking the old generation once the room left under its limit is no
 * larger than the young generation may grow, and under load it grew a serving thread's to
 * 16 MiB semi-spaces: the old generation sat 24 MB under its limit, so marking started
 * again soon after every mark-compact, each freeing 2-8 MB of 33-40. Capped, POST /sign
 * P-256 under wrk, two alternating pairs, in the measured window: mark-compacts 0.14-0.17
 * -> 0 per 1,000 requests, scavenges 2.4 -> 10.1, CPU 171 -> 160 and 188 -> 170 µs a
 * request, V8's helper threads 14-17 -> 11-12 (docs/performance.md, session 16). A node
 * with the submission port keeps V8's own sizing: smaller young generations measured
 * worse there (session 9), where what survives a scavenge is mostly promoted (session 12).
 */
export const SERVE_YOUNG_GENERATION_MB = 12;

function workerUrl(): URL {
  // Development runs the .ts sources (Node 24 type stripping); the package runs dist/*.js.
  return new URL(import.meta.url.endsWith('.ts') ? './serve-worker.ts' : './serve-worker.js', import.meta.url);
}

/** How bad each state is for the node: a thread whose batch thread stopped for good outranks one restarting it, which outranks one waiting for the store. */
const SEVERITY: Record<BatchHealth['state'], number> = { running: 0, 'waiting-for-store': 1, restarting: 2, stopped: 3 };

/**
 * The node's batch side from every serving thread's (in thread order): the worst
 * state, with the reason of each thread that is not running, named by its number
 * ("Serving thread 2 of 4: ..."). Each thread's /healthz answers this, so a load
 * balancer sees the same answer whichever thread its probe reaches.
 */
export function combineBatchHealth(each: readonly BatchHealth[]): BatchHealth {
  let worst: BatchHealth['state'] = 'running';
  const reasons: string[] = [];
  each.forEach((h, i) => {
    if (h.state === 'running') return;
    if (SEVERITY[h.state] > SEVERITY[worst]) worst = h.state;
    reasons.push(each.length > 1 ? `Serving thread ${i + 1} of ${each.length}: ${h.reason}` : h.reason);
  });
  return worst === 'running' ? { state: 'running' } : { state: worst, reason: reasons.join(' ') };
}

export async function startServeWorkers(o: ServeWorkersOptions): Promise<RunningWorkers> {
  const rates = new RateLimiter(() => performance.now());
  const handovers = new Handovers();
  const threads: Thread[] = [];
  let stopping = false;
  let reportFailure: (e: Error) => void = () => {};
  const failed = new Promise<Error>((resolve) => (reportFailure = resolve));

  const gatherMetrics = async (): Promise<string> => {
    const all = await Promise.all(threads.map((t) => t.channel.call<MetricsSnapshot>('metrics-snapshot').catch(() => undefined)));
    const sum = new Metrics();
    for (const s of all) if (s) sum.absorb(s);
    return sum.render();
  };

  // Every thread's batch side, asked at once; a thread that cannot answer (it is ending) counts as stopped.
  const gatherBatchHealth = async (): Promise<BatchHealth> => combineBatchHealth(await Promise.all(threads.map((t) => t.channel.call<BatchHealth>('own-batch-health').catch((): BatchHealth => ({ state: 'stopped', reason: 'The serving thread does not answer.' })))));

  const spawn = (data: ServeWorkerData): Thread => {
    const worker = new Worker(workerUrl(), { workerData: data, ...(data.submission ? {} : { resourceLimits: { maxYoungGenerationSizeMb: SERVE_YOUNG_GENERATION_MB } }) });
    const channel = new ThreadChannel(worker);
    // A serving thread's log lines ride with its audit rows (serve-worker.ts), written before the rows commit.
    channel.handle('audit', (rows: AuditRow[], log?: string) => {
      if (log) o.write(log);
      return o.store.recordAuditRows(rows);
    });
    channel.handle('rate', (key: string, rate: number) => rates.take(key, rate));
    channel.handle('hold', (personId: string, fileName: string, contentType: string, bytes: Uint8Array) => handovers.hold(personId, fileName, contentType, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)));
    channel.handle('take', (id: string, personId: string) => handovers.take(id, personId));
    channel.handle('metrics', gatherMetrics);
    channel.handle('batch-health', gatherBatchHealth);
    channel.handle('log', (text: string) => o.write(text));
    const exited = watchThread(worker, channel, 'A serving thread', () => stopping, reportFailure);
    const thread = { worker, channel, exited };
    threads.push(thread);
    return thread;
  };

  const stop = async (): Promise<void> => {
    stopping = true;
    await Promise.all(threads.map(async (t) => {
      await t.channel.call('stop').catch(() => undefined);
      await t.worker.terminate();
      await t.exited;
    }));
  };

  const base = { store: o.location, http: o.http, version: o.version };
  try {
    // Nothing else may hold the ports: SO_REUSEPORT would let two services share them silently (probe-port.ts).
    if (o.http) await probePort(o.config.host, o.config.port);
    if (o.submission) await probePort(o.submission.listen.host, o.submission.listen.port);
    // The first thread binds the ports (0: any free one), the others join them.
    const first = await spawn({ ...base, config: o.config, ...(o.submission ? { submission: o.submission } : {}) }).channel.call<ServeWorkerReady>('start');
    const port = first.url ? Number(new URL(first.url).port) : o.config.port;
    const config = { ...o.config, port };
    const submission = o.submission && first.smtp ? { ...o.submission, listen: { ...o.submission.listen, port: first.smtp.port } } : undefined;
    await Promise.all(Array.from({ length: o.workers - 1 }, () => spawn({ ...base, config, ...(submission ? { submission } : {}) }).channel.call('start')));
    return {
      ...(first.url ? { url: first.url, console: coordinatorConsole(o, first.url, rates, handovers) } : {}),
      ...(first.smtp ? { smtp: first.smtp } : {}),
      failed, stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
