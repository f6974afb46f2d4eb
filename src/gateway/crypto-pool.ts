/**
 * The gateway's worker threads for per-message crypto (issue 13, Operations): each
 * direction's copies of a message held in memory (transform-message.ts: decrypt,
 * verify, sign, encrypt, DKIM) are made in one of `workers` threads
 * (transform-worker.ts) while the main thread only speaks SMTP, checks DNS, holds,
 * bounces and relays. The pool is the CLI batch's (src/threads/worker-pool.ts): a
 * worker that dies takes only the messages it was working on down (answered 4xx:
 * Postfix retries them) and is replaced. How much work may wait for the workers is bounded before
 * this, at MAIL FROM (admission-gate.ts).
 */
import { WorkerPool } from '../threads/worker-pool.ts';
import type { StoreConfig } from '../store/open-store.ts';
import type { TransformTask, TransformWorkerData } from './transform-worker.ts';
import { failedTransform, type TransformRequest, type TransformResult } from './transform-message.ts';
import { AuditThread } from './start-audit-thread.ts';
import { ownedCopy } from '../threads/owned-copy.ts';

/**
 * Messages a worker works on at once (transform-worker.ts): one that waits for the
 * store (a key use's commit, a certificate lookup on PostgreSQL) leaves the thread
 * to the others, and their key uses share a commit. A worker that dies takes all of
 * them down (each answered 4xx: Postfix retries).
 */
const TASKS_PER_WORKER = 4;

export interface CryptoPoolOptions {
  workers: number;
  store: Pick<StoreConfig, 'home' | 'databaseUrl' | 'masterKey'>;
  authservId: string;
  domains: ReadonlySet<string>;
}

function workerUrl(): URL {
  // Development runs the .ts sources (Node 24 type stripping); the package runs dist/*.js.
  return new URL(import.meta.url.endsWith('.ts') ? './transform-worker.ts' : './transform-worker.js', import.meta.url);
}

export class CryptoPool {
  readonly size: number;
  readonly #pool: WorkerPool<TransformTask, TransformResult>;
  readonly #audit: AuditThread;
  #generation = 0;

  constructor(o: CryptoPoolOptions) {
    const data: Omit<TransformWorkerData, 'audit'> = { store: o.store, authservId: o.authservId, domains: [...o.domains] };
    // Every worker's key-use rows are committed by the audit thread, each worker through a port of its own.
    const audit = (this.#audit = new AuditThread({ store: { ...(o.store.home ? { home: o.store.home } : {}), ...(o.store.databaseUrl ? { databaseUrl: o.store.databaseUrl } : {}) } }));
    const startWith = () => {
      const port = audit.connect();
      return { data: { audit: port }, transfer: [port] };
    };
    this.#pool = new WorkerPool<TransformTask, TransformResult>(workerUrl(), data, o.workers, TASKS_PER_WORKER, { overlapping: true, startWith });
    this.size = this.#pool.size;
  }

  /** Audit threads started so far (one, and one more after each that died). */
  get auditThreadsStarted(): number {
    return this.#audit.started;
  }

  /** Workers that died so far (replaced). */
  get crashed(): number {
    return this.#pool.crashed;
  }

  /** After a reload (SIGHUP): each worker builds its context again (trust anchors, policy) before its next message. */
  reload(): void {
    this.#generation++;
  }

  /** One direction's copies, made in a worker under the main thread's policy `revision`. */
  async transform(request: TransformRequest, revision: string): Promise<TransformResult> {
    let result: TransformResult;
    try {
      // The message goes to the worker as a copy of its own, moved (the main thread keeps the original for holds and the DSN).
      const message = ownedCopy(request.message, true);
      result = await this.#pool.run({ generation: this.#generation, revision, request: { ...request, message } }, [message.buffer as ArrayBuffer]);
    } catch (e) {
      // The worker died (out of memory, a native error) or the pool is closed: deferred, Postfix retries.
      return failedTransform(request.direction, request.recipients, e);
    }
    for (const g of result.groups) {
      // Structured cloning gives a Uint8Array: the same bytes as a Buffer.
      const m = g.message as Uint8Array | undefined;
      if (m) g.message = Buffer.from(m.buffer, m.byteOffset, m.byteLength);
    }
    return result;
  }

  async close(): Promise<void> {
    await this.#pool.close();
    await this.#audit.close();
  }
}
