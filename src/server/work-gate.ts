/**
 * Bounds work that is costly by nature (reading a PKCS#12 file: seconds of key
 * derivation in a worker; making a key for the internal CA): at most `running` at
 * once, at most `waiting` queued behind them, and beyond that an immediate 429, so
 * a flood of uploads costs the server neither threads nor memory.
 */
import { ProblemError } from './problem.ts';

export class WorkGate {
  readonly #running: number;
  readonly #waiting: number;
  #active = 0;
  readonly #queue: Array<() => void> = [];

  constructor(running: number, waiting: number) {
    this.#running = running;
    this.#waiting = waiting;
  }

  async run<T>(what: string, work: () => Promise<T>): Promise<T> {
    if (this.#active >= this.#running) {
      if (this.#queue.length >= this.#waiting) {
        throw new ProblemError(429, 'RATE_LIMITED', `Too many ${what} in progress on this node; try again in a few seconds.`, { 'retry-after': '5' });
      }
      await new Promise<void>((resolve) => this.#queue.push(resolve));
    } else {
      this.#active++;
    }
    try {
      return await work();
    } finally {
      // The slot passes straight to the next in line, or is given back.
      const next = this.#queue.shift();
      if (next) next();
      else this.#active--;
    }
  }
}
