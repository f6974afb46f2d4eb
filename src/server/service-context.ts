/**
 * What every handler of the service shares: the store, the tenant directory, the
 * configuration, the counters, the rate limiter and the log. Passed in, never
 * global (style guide: injection), so a test builds one around its own store.
 */
import type { BatchBlobs } from '../store/batch-blobs.ts';
import type { Store } from '../store/store.ts';
import type { ApiKeyRecord, TenantDirectory } from '../store/tenant-directory.ts';
import type { ServeConfig } from './config.ts';
import type { StoredUpload, UploadJob } from './batches/store-upload-chunks.ts';
import type { Metrics } from './metrics.ts';
import type { RateGate } from './rate-limiter.ts';
import type { ServiceCache } from './service-cache.ts';

export type BatchHealth = { state: 'running' } | { state: 'restarting' | 'waiting-for-store' | 'stopped'; reason: string };

export type LogEntry = Record<string, string | number | boolean | undefined>;

export interface ServiceContext {
  store: Store;
  tenants: TenantDirectory;
  config: ServeConfig;
  metrics: Metrics;
  rateLimiter: RateGate;
  /** Writes one structured log entry (serve: one JSON line on standard output). */
  log: (entry: LogEntry) => void;
  /** Writes one log line already made as JSON (without its LF), as `log` writes an entry; without it, request lines go through `log`. */
  logLine?: (json: string) => void;
  version: string;
  /** True once SIGTERM arrived: /healthz answers 503 so a load balancer stops sending. */
  shuttingDown: () => boolean;
  /** Keys, senders and identities kept between requests (service-cache.ts); made on first use. */
  cache?: ServiceCache;
  /**
   * Batches (HTTP server only): where chunk bytes are kept, a nudge for this node's
   * workers when an upload is queued, and (with a batch thread) an upload's body
   * cut into chunks and stored there; undefined from it: cut here.
   */
  batches?: {
    blobs: BatchBlobs; wake: () => void; storeUpload?: (job: UploadJob, body: AsyncIterable<Buffer>) => Promise<StoredUpload> | undefined;
    /** A batch's stored outputs, read in the batch thread and handed over a piece at a time (start-batch-thread.ts); undefined: read them here. */
    readOutputs?: (batchId: string, outputs: readonly string[]) => AsyncGenerator<Buffer> | undefined;
  };
  /**
   * The batch side's state for /healthz (start-server.ts): 'stopped' answers 503, 'restarting' and 'waiting-for-store'
   * say degraded. Under --workers N the node's, every serving thread's batch thread combined (server/workers).
   */
  batchHealth?: () => BatchHealth | Promise<BatchHealth>;
  /** The /metrics page, when it sums more than this thread's counters (server/workers); else metrics.render(). */
  renderMetrics?: () => Promise<string>;
}

/** What the server knows about one request, for its handlers and its log line. */
export interface RequestState {
  requestId: string;
  /** The route pattern, for logs and metrics (never the raw path with its parameters). */
  route?: string;
  /** The operation's audit name, when the route gives one (RouteSpec.audit). */
  audit?: string;
  key?: ApiKeyRecord;
  /** The code of the problem answered, for the log line. */
  code?: string;
}

export type AppEnv = { Variables: { state: RequestState } };

/** The audit actor for a request: tenant and key id (the secret is never written anywhere). */
export function actorOf(key: ApiKeyRecord): string {
  return `api:${key.tenant}/${key.id}`;
}
