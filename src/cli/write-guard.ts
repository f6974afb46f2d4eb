/**
 * Lets an interrupted batch stop its workers' writes without leaving a temporary
 * file behind. Workers write their own outputs (temporary file, then rename), so
 * the main thread's signal handler cannot know their temporary names; instead the
 * two share a counter in a SharedArrayBuffer. A worker counts itself in before it
 * creates a temporary file and out once that file is renamed or removed; the
 * handler raises the stop flag (no new temporary file is started after it) and
 * waits for the count to reach zero. From then on no temporary file of the batch
 * exists, whatever the moment of the interruption.
 */
const STOP = 0;
const WRITERS = 1;

export class WriteGuard {
  readonly #cells: Int32Array;

  constructor(buffer: SharedArrayBuffer = new SharedArrayBuffer(8)) {
    this.#cells = new Int32Array(buffer);
  }

  /** What a worker receives (in its workerData) to build the same guard. */
  get buffer(): SharedArrayBuffer {
    return this.#cells.buffer as SharedArrayBuffer;
  }

  /** Worker: counts itself in before creating a temporary file; false once the batch is stopping. */
  enter(): boolean {
    Atomics.add(this.#cells, WRITERS, 1);
    if (Atomics.load(this.#cells, STOP) === 0) return true;
    this.leave();
    return false;
  }

  /** Worker: its temporary file is renamed or removed. */
  leave(): void {
    Atomics.sub(this.#cells, WRITERS, 1);
    Atomics.notify(this.#cells, WRITERS);
  }

  /**
   * Main thread, in a signal handler: no write starts after this; returns true once
   * none is under way, false if one is still counted after `timeoutMs` (a worker
   * that died between creating and renaming its file).
   */
  stop(timeoutMs: number): boolean {
    Atomics.store(this.#cells, STOP, 1);
    const until = Date.now() + timeoutMs;
    for (let n = Atomics.load(this.#cells, WRITERS); n > 0; n = Atomics.load(this.#cells, WRITERS)) {
      const left = until - Date.now();
      if (left <= 0) return false;
      Atomics.wait(this.#cells, WRITERS, n, Math.min(left, 50));
    }
    return true;
  }
}
