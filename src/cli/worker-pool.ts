/**
 * A fixed pool of worker threads, one task in flight per worker.
 *
 * Hand-written rather than piscina: a batch needs only "N workers, a queue, replace
 * a worker that dies", about eighty lines, and workers here must load TypeScript
 * sources in development (Node 24 type stripping) and dist/ JavaScript when
 * published, which is simplest with a plain `new Worker(url)`.
 */
import { Worker } from 'node:worker_threads';

interface Task<I, O> {
  input: I;
  resolve: (o: O) => void;
  reject: (e: unknown) => void;
}

interface Slot<I, O> {
  worker: Worker;
  task?: Task<I, O>;
}

export class WorkerPool<I, O> {
  readonly size: number;
  readonly #url: URL;
  readonly #workerData: unknown;
  readonly #slots: Slot<I, O>[] = [];
  readonly #queue: Task<I, O>[] = [];
  #closed = false;
  /** Crashes since the last answer: past a bound the workers cannot even start, so stop. */
  #crashes = 0;

  constructor(url: URL, workerData: unknown, size: number) {
    this.size = Math.max(1, size);
    this.#url = url;
    this.#workerData = workerData;
    for (let i = 0; i < this.size; i++) this.#slots.push(this.#spawn());
  }

  #spawn(): Slot<I, O> {
    const slot: Slot<I, O> = { worker: new Worker(this.#url, { workerData: this.#workerData }) };
    slot.worker.on('message', (out: O) => {
      const t = slot.task;
      slot.task = undefined;
      this.#crashes = 0;
      t?.resolve(out);
      this.#pump();
    });
    const replace = (err: unknown): void => {
      const t = slot.task;
      slot.task = undefined;
      t?.reject(err);
      if (this.#closed) return;
      if (++this.#crashes > this.size * 3) {
        this.#closed = true;
        for (const q of this.#queue.splice(0)) q.reject(err);
        return;
      }
      // A worker that crashed (out of memory, a native error) takes only its own
      // message down: the batch goes on with a fresh worker.
      const i = this.#slots.indexOf(slot);
      if (i >= 0) this.#slots[i] = this.#spawn();
      this.#pump();
    };
    slot.worker.on('error', replace);
    slot.worker.on('exit', (code) => {
      if (slot.task) replace(new Error(`worker exited with code ${code}`));
    });
    return slot;
  }

  #pump(): void {
    for (const slot of this.#slots) {
      if (slot.task !== undefined) continue;
      const next = this.#queue.shift();
      if (next === undefined) return;
      slot.task = next;
      slot.worker.postMessage(next.input);
    }
  }

  /** Queues one input; resolves with the worker's answer. */
  run(input: I): Promise<O> {
    if (this.#closed) return Promise.reject(new Error('worker pool closed'));
    return new Promise<O>((resolve, reject) => {
      this.#queue.push({ input, resolve, reject });
      this.#pump();
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const t of this.#queue.splice(0)) t.reject(new Error('worker pool closed'));
    await Promise.all(this.#slots.map((s) => s.worker.terminate()));
  }
}
