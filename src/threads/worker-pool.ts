/**
 * A fixed pool of worker threads, each with up to `perWorker` tasks in flight, so a
 * worker finds its next task already waiting when it finishes one (the main thread
 * never stands between two tasks). A worker answers its tasks in the order it
 * received them (bulk-worker.ts runs them one after the other), except in a pool
 * made with `overlapping`: its workers run their tasks at once and answer each as
 * it is done, tagged with the task's number (`OverlappingTask`, `OverlappingAnswer`:
 * the gateway's transform-worker.ts), so that a task waiting for the store (a key
 * use's commit, a revocation check) holds up neither the others nor their answers.
 * An overlapping pool's tasks and answers go over a MessageChannel of its own
 * (`workerData.pool`, read in the worker with `overlappingPort`), not the worker's
 * parentPort: node's Worker reads process.env (WATCH_REPORT_DEPENDENCIES, a getenv)
 * for every message that comes through parentPort (internal/worker.js), about 6 µs a
 * message on the gateway's main thread (session 13's profile).
 *
 * Hand-written rather than piscina: a batch needs only "N workers, a queue, replace
 * a worker that dies", about a hundred lines, and workers here must load TypeScript
 * sources in development (Node 24 type stripping) and dist/ JavaScript when
 * published, which is simplest with a plain `new Worker(url)`.
 */
import { MessageChannel, Worker, type MessagePort, type Transferable } from 'node:worker_threads';
import { getCompileCacheDir } from 'node:module';

/**
 * Workers use the module compile cache the launcher enabled (bin/kakitome.js) only
 * when told through their environment; without it each worker strips and compiles
 * the sources again (measured: 770 ms of CPU per worker instead of 250-390 ms).
 */
export function workerEnv(): NodeJS.ProcessEnv {
  const cache = getCompileCacheDir();
  return cache === undefined || process.env.NODE_COMPILE_CACHE !== undefined ? process.env : { ...process.env, NODE_COMPILE_CACHE: cache };
}

/** What an overlapping pool posts to its workers, and what they answer (in any order). */
export interface OverlappingTask<I> {
  task: number;
  input: I;
}
export interface OverlappingAnswer<O> {
  task: number;
  output: O;
}

/** In a worker of an overlapping pool: the port its tasks come on and its answers go back to. */
export function overlappingPort(workerData: unknown): MessagePort {
  const port = (workerData as { pool?: MessagePort } | null)?.pool;
  if (port === undefined) throw new Error('not a worker of an overlapping WorkerPool (workerData.pool is missing)');
  return port;
}

/** Per worker started: fields added to its workerData (an object) and what they move to it. */
export type WorkerStart = () => { data: Record<string, unknown>; transfer: Transferable[] };

interface Task<I, O> {
  /** Its number, for an overlapping pool's answers. */
  id: number;
  input: I;
  transfer: readonly Transferable[];
  resolve: (o: O) => void;
  reject: (e: unknown) => void;
}

interface Slot<I, O> {
  worker: Worker;
  /** Where its tasks go and its answers come from: the pool's own port (overlapping), else the worker itself. */
  port: Pick<MessagePort, 'postMessage'>;
  /** Posted and not yet answered, oldest first. */
  tasks: Task<I, O>[];
}

export class WorkerPool<I, O> {
  /** Workers in the pool (fewer after shrink()). */
  #size: number;
  readonly perWorker: number;
  /** A worker runs all its tasks in flight at once: one that dies takes all of them down. */
  readonly #overlapping: boolean;
  readonly #url: URL;
  readonly #workerData: unknown;
  readonly #slots: Slot<I, O>[] = [];
  readonly #queue: Task<I, O>[] = [];
  #closed = false;
  #nextId = 0;
  /** Crashes since the last answer: past a bound the workers cannot even start, so stop. */
  #crashes = 0;
  /** Every crash, for a caller that must clean up after a worker that died mid-task. */
  crashed = 0;

  /** Each worker's own part of its data (a MessagePort to another thread), made when it starts. */
  readonly #startWith: WorkerStart | undefined;

  constructor(url: URL, workerData: unknown, size: number, perWorker = 1, options: { overlapping?: boolean; startWith?: WorkerStart } = {}) {
    this.#size = Math.max(1, size);
    this.perWorker = Math.max(1, perWorker);
    this.#overlapping = options.overlapping === true;
    this.#url = url;
    this.#workerData = workerData;
    this.#startWith = options.startWith;
    for (let i = 0; i < this.#size; i++) this.#slots.push(this.#spawn());
  }

  #spawn(): Slot<I, O> {
    const own = this.#startWith?.();
    const channel = this.#overlapping ? new MessageChannel() : undefined;
    const data = { ...own?.data, ...(channel ? { pool: channel.port2 } : {}) };
    const transfer = [...(own?.transfer ?? []), ...(channel ? [channel.port2] : [])];
    const workerData = own || channel ? { ...(this.#workerData as object), ...data } : this.#workerData;
    const worker = new Worker(this.#url, { workerData, ...(transfer.length > 0 ? { transferList: transfer } : {}), env: workerEnv() });
    const slot: Slot<I, O> = { worker, port: channel?.port1 ?? worker, tasks: [] };
    const onAnswer = (message: O | OverlappingAnswer<O>): void => {
      let t: Task<I, O> | undefined;
      let out = message as O;
      if (this.#overlapping) {
        const answer = message as OverlappingAnswer<O>;
        const i = slot.tasks.findIndex((x) => x.id === answer.task);
        t = i >= 0 ? slot.tasks.splice(i, 1)[0] : undefined;
        out = answer.output;
      } else {
        t = slot.tasks.shift();
      }
      this.#crashes = 0;
      t?.resolve(out);
      this.#pump();
    };
    if (channel) channel.port1.on('message', onAnswer);
    else worker.on('message', onAnswer);
    const replace = (err: unknown): void => {
      if (slot.tasks.length === 0 && !this.#slots.includes(slot)) return;
      // A worker runs its tasks one after the other: the first was running and died
      // with it; the others never started, and go back to the head of the queue.
      // Overlapping, every task in flight was running: all fail with it (run again,
      // one of them could take the next worker down too).
      const [running, ...waiting] = slot.tasks.splice(0);
      running?.reject(err);
      if (this.#overlapping) for (const t of waiting) t.reject(err);
      else this.#queue.unshift(...waiting);
      this.crashed++;
      if (this.#closed) return;
      if (++this.#crashes > this.size * 3) {
        this.#closed = true;
        for (const q of this.#queue.splice(0)) q.reject(err);
        return;
      }
      // A worker that crashed (out of memory, a native error) takes only the task it
      // was running down: the batch goes on with a fresh worker.
      const i = this.#slots.indexOf(slot);
      if (i >= 0) this.#slots[i] = this.#spawn();
      this.#pump();
    };
    slot.worker.on('error', replace);
    slot.worker.on('exit', (code) => {
      channel?.port1.close();
      // One that ends by itself while idle (a gateway worker whose audit thread is gone) is replaced too.
      if (slot.tasks.length > 0 || (!this.#closed && this.#slots.includes(slot))) replace(new Error(`worker exited with code ${code}`));
    });
    return slot;
  }

  #pump(): void {
    // Fill the least busy worker first, so tasks spread over every worker.
    while (this.#queue.length > 0) {
      let best: Slot<I, O> | undefined;
      for (const slot of this.#slots) if (slot.tasks.length < this.perWorker && (best === undefined || slot.tasks.length < best.tasks.length)) best = slot;
      if (best === undefined) return;
      const next = this.#queue.shift()!;
      best.tasks.push(next);
      best.port.postMessage(this.#overlapping ? ({ task: next.id, input: next.input } satisfies OverlappingTask<I>) : next.input, next.transfer);
    }
  }

  /**
   * Ends the workers beyond the first `size` that have nothing in flight (a batch
   * starts one per core before it knows how many messages it has; a small batch then
   * ends those it does not need while they are still starting).
   */
  shrink(size: number): void {
    for (let i = this.#slots.length - 1; i >= Math.max(1, size); i--) {
      const slot = this.#slots[i]!;
      if (slot.tasks.length > 0) continue;
      this.#slots.splice(i, 1);
      void slot.worker.terminate();
    }
    this.#size = this.#slots.length;
  }

  /** Workers in the pool (fewer after shrink()). */
  get size(): number {
    return this.#size;
  }

  /** Queues one input (its `transfer` list moves to the worker); resolves with the worker's answer. */
  run(input: I, transfer: readonly Transferable[] = []): Promise<O> {
    if (this.#closed) return Promise.reject(new Error('worker pool closed'));
    return new Promise<O>((resolve, reject) => {
      this.#queue.push({ id: this.#nextId++, input, transfer, resolve, reject });
      this.#pump();
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const t of this.#queue.splice(0)) t.reject(new Error('worker pool closed'));
    await Promise.all(this.#slots.map((s) => s.worker.terminate()));
  }
}
