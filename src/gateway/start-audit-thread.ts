/**
 * Starts the gateway's audit thread (audit-thread.ts) and gives each crypto worker
 * a port to it (`connect`, one per worker started: crypto-pool.ts). A thread that
 * died (a native error; a database error only fails its batch) is started again by
 * the next `connect`; the workers whose port it closed end themselves and are
 * replaced, with a port to the new thread (transform-worker.ts).
 */
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { workerEnv } from '../threads/worker-pool.ts';
import type { AuditThreadData } from './audit-thread.ts';

function threadUrl(): URL {
  // Development runs the .ts sources (Node 24 type stripping); the package runs dist/*.js.
  return new URL(import.meta.url.endsWith('.ts') ? './audit-thread.ts' : './audit-thread.js', import.meta.url);
}

export class AuditThread {
  readonly #data: AuditThreadData;
  #worker: Worker | undefined;
  /** Threads started (the first, and one after each that died). */
  started = 0;

  constructor(data: AuditThreadData) {
    this.#data = data;
  }

  /** A port to the thread for one client: it sends `audit` calls (thread-channel.ts) with rows and hears when they are committed. */
  connect(): MessagePort {
    // threadId is -1 once the thread has ended, which may be before its 'exit' event: a port sent to it would never answer nor close.
    if (this.#worker === undefined || this.#worker.threadId === -1) this.#worker = this.#start();
    const worker = this.#worker;
    const { port1, port2 } = new MessageChannel();
    worker.postMessage({ connect: port1 }, [port1]);
    return port2;
  }

  #start(): Worker {
    const worker = new Worker(threadUrl(), { workerData: this.#data, env: workerEnv() });
    this.started++;
    // An error ends the thread: its clients' ports close (they fail what they waited for), and the next connect starts another.
    worker.on('error', () => {});
    worker.on('exit', () => {
      if (this.#worker === worker) this.#worker = undefined;
    });
    return worker;
  }

  async close(): Promise<void> {
    const worker = this.#worker;
    this.#worker = undefined;
    await worker?.terminate();
  }
}
