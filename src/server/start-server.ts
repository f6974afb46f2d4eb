/**
 * Runs the application on node:http (@hono/node-server) and stops it gracefully:
 * stop accepting connections, let requests in flight finish (idle keep-alive
 * connections are closed as they become idle), cut whatever is left after the
 * grace period, then close the store. Each server is also a batch node: its
 * BatchWorker signs chunks from the queue the nodes share (src/server/batches/),
 * in a thread of its own with a small young generation when `batchThread` says
 * where the store is (kakitome serve), else on this thread (tests, embedding).
 */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { getRequestListener } from '@hono/node-server';
import { answerSignRequest, isSignRequest } from './sign-route.ts';
import type { Store } from '../store/store.ts';
import { TenantDirectory } from '../store/tenant-directory.ts';
import { DEFAULT_MAX_CONNECTIONS, type ServeConfig } from './config.ts';
import { createApp } from './create-app.ts';
import { Metrics, type MetricsSnapshot } from './metrics.ts';
import { RateLimiter, type RateGate } from './rate-limiter.ts';
import { ServiceCache } from './service-cache.ts';
import type { BatchHealth, LogEntry, ServiceContext } from './service-context.ts';
import { createConsoleContext, type ConsoleContext, type ConsoleOptions } from './console/console-context.ts';
import { consoleOriginFor } from './console/console-origin.ts';
import { openBatchBlobs } from '../store/batch-blobs.ts';
import { BatchQueue } from '../store/batch-queue.ts';
import { BatchWorker } from './batches/batch-worker.ts';
import { startBatchThread, type BatchThread } from './batches/start-batch-thread.ts';
import { keepBatchThread, type KeptBatchThread } from './batches/keep-batch-thread.ts';
import { releaseUnusedHeap } from './batches/collect-garbage.ts';
import type { StoreConfig } from '../store/open-store.ts';

export interface RunningServer {
  /** http://host:port/ as bound (port 0 resolved). */
  url: string;
  /** The web console's context (its origin set from the bound address). */
  console: ConsoleContext;
  /** Graceful stop; resolves when every connection is closed and the store too. */
  close(): Promise<void>;
  /** This server's counters with its batch thread's (server/workers sums them for /metrics). */
  snapshot(): Promise<MetricsSnapshot>;
  /** This server's own batch side, for /healthz (server/workers combines every serving thread's). */
  batchHealth(): BatchHealth;
}

export interface ServerOptions {
  log: (e: LogEntry) => void;
  /** ServiceContext.logLine: request lines made as JSON, written with the log's lines. */
  logLine?: (json: string) => void;
  version: string;
  /** Shared with the submission port when `kakitome serve` runs both (a key's rate limit counts its HTTP requests and its SMTP messages together). */
  rateLimiter?: RateGate;
  metrics?: Metrics;
  cache?: ServiceCache;
  /** The web console's options (session policy, rates, password hash cost, where downloads are held). */
  console?: ConsoleOptions;
  /** Serving threads (server/workers): /metrics sums them all. */
  renderMetrics?: () => Promise<string>;
  /** Serving threads (server/workers): /healthz tells the node's batch side, every thread's combined, not this thread's alone. */
  batchHealth?: () => Promise<BatchHealth>;
  /** Serving threads: each listens on the same port (SO_REUSEPORT) and the kernel spreads the connections. */
  reusePort?: boolean;
  /**
   * Sign batch chunks in a thread of its own (batches/batch-thread.ts), which opens
   * the store at `location`; `write` takes its log lines (JSON lines, joined).
   */
  batchThread?: { location: Pick<StoreConfig, 'home' | 'databaseUrl' | 'masterKey'>; write: (text: string) => void };
}

export async function startServer(store: Store, config: ServeConfig, options: ServerOptions): Promise<RunningServer> {
  let shuttingDown = false;
  const blobs = await openBatchBlobs(store.engine);
  let worker: BatchWorker | undefined;
  // The batch thread, started again when it dies (keep-batch-thread.ts): meanwhile this node still takes uploads, cut into chunks here.
  let kept: KeptBatchThread | undefined;
  const thread = (): BatchThread | undefined => kept?.current();
  let localTrouble: string | undefined;
  const tenants = new TenantDirectory(store);
  const metrics = options.metrics ?? new Metrics();
  // This thread's counters with the batch thread's, when there is one.
  const snapshot = async (): Promise<MetricsSnapshot> => {
    const theirs = kept ? await kept.snapshot() : undefined;
    // The keeper's counters, this thread's own (a thread restarted counts once, in the process that started it).
    const own = new Metrics().absorb(metrics.snapshot());
    if (kept) Object.assign(own.batch, { threadsRunning: own.batch.threadsRunning + (kept.current() ? 1 : 0), threadRestarts: own.batch.threadRestarts + kept.restarts() });
    return theirs ? own.absorb(theirs).snapshot() : own.snapshot();
  };
  // This thread's batch side: its batch thread (or its own workers) and the store trouble they report.
  const ownBatchHealth = (): BatchHealth => {
    const s = kept?.state() ?? { state: 'running' as const };
    if (s.state !== 'running') return s;
    const trouble = kept ? kept.storeTrouble() : localTrouble;
    return trouble ? { state: 'waiting-for-store', reason: `The batch workers wait for the store (${trouble}); no chunk's attempt is spent meanwhile.` } : s;
  };
  const service: ServiceContext = {
    store, tenants, config, metrics, rateLimiter: options.rateLimiter ?? new RateLimiter(),
    log: options.log, ...(options.logLine ? { logLine: options.logLine } : {}), version: options.version, shuttingDown: () => shuttingDown, cache: options.cache ?? new ServiceCache(store, tenants),
    batches: {
      blobs, wake: () => (thread() ?? worker)?.wake(),
      storeUpload: (job, body) => thread()?.storeUpload(job, body),
      // PostgreSQL's blobs only: read here, their hex text grows this thread's young generation (docs/performance.md); files are read here at no such cost.
      readOutputs: (batchId, outputs) => (blobs.kind === 'table' ? thread()?.readOutputs(batchId, outputs) : undefined),
    },
    batchHealth: options.batchHealth ?? (() => ownBatchHealth()),
    ...(options.renderMetrics ? { renderMetrics: options.renderMetrics } : options.batchThread ? { renderMetrics: async () => new Metrics().absorb(await snapshot()).render() } : {}),
  };
  const listen = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${config.port}/`;
  const consoleContext = createConsoleContext(service, consoleOriginFor(listen, config.publicUrl), { ...options.console, ...(config.checkMaxBytes ? { checkMaxBytes: config.checkMaxBytes } : {}), ...(config.stepUpWindowMs ? { stepUpWindowMs: config.stepUpWindowMs } : {}), ...(config.ldap ? { ldap: config.ldap } : {}), ...(config.mail ? { mail: config.mail } : {}), ...(config.oidc ? { oidc: config.oidc } : {}) });
  const app = createApp(service, { console: consoleContext });
  const honoListener = getRequestListener(app.fetch);
  // Slow-loris bounds: headers within 20 s, a whole request within 5 minutes (a 50 MiB upload at 1.4 Mbit/s).
  const answer = (req: IncomingMessage, res: ServerResponse): void => {
    // The signing route on node:http itself (sign-route.ts); everything else through Hono.
    if (isSignRequest(req)) {
      answerSignRequest(service, req, res).catch((e: unknown) => {
        service.log({ time: new Date().toISOString(), level: 'error', msg: 'internal error', error: e instanceof Error ? `${e.name}: ${e.message}` : String(e) });
        res.destroy();
      });
    }
    else void honoListener(req, res);
  };
  const server = createServer({ headersTimeout: 20_000, requestTimeout: 300_000, keepAliveTimeout: 5_000, maxHeaderSize: 16 * 1024 }, answer);
  // Expect: 100-continue (curl sends it for bodies over 1 MiB). node:http answers "100 Continue"
  // at once by default, before the key, the media type or the size is checked, so a client
  // with no key was invited to send its whole body. Now the 100 goes only when the body
  // is read (a 'data' or 'readable' listener: the key, scope, rate and Content-Length
  // passed); a refusal is the final answer instead, and node:http closes that connection.
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    const invite = (event: string | symbol) => {
      if (event !== 'data' && event !== 'readable') return;
      req.off('newListener', invite);
      if (!res.headersSent) res.writeContinue();
    };
    req.on('newListener', invite);
    answer(req, res);
  });
  // Open descriptors bounded (each serving thread its share of the node's): past it a new connection is closed as it arrives.
  server.maxConnections = Math.ceil((config.maxConnections ?? DEFAULT_MAX_CONNECTIONS) / Math.max(1, config.workers ?? 1));
  server.listen({ port: config.port, host: config.host, ...(options.reusePort ? { reusePort: true } : {}) });
  await Promise.race([once(server, 'listening'), once(server, 'error').then(([e]) => Promise.reject(e))]);
  // This node signs batch chunks from the shared queue, whichever node received them.
  if (options.batchThread) {
    // Start-up (modules, migrations, the console's templates) grew this thread's young generation to V8's
    // largest: given back before the batch thread starts beside it, and before batches come (collect-garbage.ts).
    releaseUnusedHeap();
    const where = options.batchThread;
    try {
      const queue = new BatchQueue(store.engine, () => store.now());
      kept = await keepBatchThread(() => startBatchThread({ store, location: where.location, config, version: options.version, write: where.write }), options.log, (node) => queue.releaseNode(node));
    } catch (e) {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      throw e;
    }
  } else {
    const local = new BatchWorker(service, blobs, (trouble) => (localTrouble = trouble));
    local.start();
    worker = local;
  }
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}/`;
  consoleContext.origin = consoleOriginFor(url, config.publicUrl);
  let closing: Promise<void> | undefined;
  return {
    url,
    console: consoleContext,
    snapshot,
    batchHealth: ownBatchHealth,
    close() {
      closing ??= (async () => {
        shuttingDown = true;
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        // A keep-alive connection becomes idle when its request is answered: close it then.
        const sweep = setInterval(() => server.closeIdleConnections(), 50);
        const cut = setTimeout(() => server.closeAllConnections(), config.shutdownGraceMs);
        server.closeIdleConnections();
        try {
          // The chunk in hand is released for another node at once; requests in flight finish meanwhile.
          await Promise.all([closed, (kept ?? worker)!.stop()]);
        } finally {
          clearInterval(sweep);
          clearTimeout(cut);
          await store.close();
        }
      })();
      return closing;
    },
  };
}
