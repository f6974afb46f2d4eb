/**
 * Backpressure to Postfix (issue 13, Operations): at most `capacity()` SMTP
 * transactions are admitted at once (one per crypto worker, plus the policy's
 * `maxQueuedMessages` waiting for one). A transaction is admitted at MAIL FROM and
 * leaves when its message has its reply (or its connection closes). One that finds
 * the gate full waits, first come first served, before the MAIL FROM reply: the
 * gateway reads nothing of it meanwhile and Postfix waits for the reply (its
 * smtp_mail_timeout, 300 s by default). If no place frees within `waitMs` the
 * answer is 451 4.3.2: Postfix defers that message and tries it again later, as for
 * any temporary failure. Nothing is read into memory for a transaction before it is
 * admitted, so the messages in memory are bounded by the capacity, not by
 * Postfix's concurrency.
 */
export class AdmissionGate {
  readonly #capacity: () => number;
  #held = 0;
  readonly #waiting: Array<(admitted: boolean) => void> = [];
  #closed = false;

  constructor(capacity: () => number) {
    this.#capacity = capacity;
  }

  /** Transactions admitted now. */
  get held(): number {
    return this.#held;
  }

  /** Transactions waiting for a place. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /** True when enter() would admit at once (nobody waiting, a place free). */
  get open(): boolean {
    return !this.#closed && this.#waiting.length === 0 && this.#held < this.#capacity();
  }

  /** True once admitted (call leave() later); false when no place freed within `waitMs`, or the gate is closed. */
  enter(waitMs: number): Promise<boolean> {
    if (this.#closed) return Promise.resolve(false);
    if (this.open) {
      this.#held++;
      return Promise.resolve(true);
    }
    if (waitMs <= 0) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      const settle = (admitted: boolean) => {
        clearTimeout(timer);
        const i = this.#waiting.indexOf(settle);
        if (i >= 0) this.#waiting.splice(i, 1);
        resolve(admitted);
      };
      const timer = setTimeout(() => settle(false), waitMs);
      this.#waiting.push(settle);
    });
  }

  leave(): void {
    this.#held = Math.max(0, this.#held - 1);
    this.resize();
  }

  /** Admits waiting transactions while there is room (after a leave, or when a policy change raised the capacity). */
  resize(): void {
    while (!this.#closed && this.#waiting.length > 0 && this.#held < this.#capacity()) {
      this.#held++;
      this.#waiting[0]!(true);
    }
  }

  /** Stopping: nobody else is admitted; waiting transactions are answered at once (false). */
  close(): void {
    this.#closed = true;
    while (this.#waiting.length > 0) this.#waiting[0]!(false);
  }
}
