/**
 * Per-key request rate limits (issue 10: set by an administrator, none by
 * default). A token bucket per API key: `rate` requests per minute on average,
 * bursts up to `rate`. The rate is read from the key's record on each request, so
 * a change takes effect at once. Buckets live in one thread of the node (with
 * serving threads, the coordinating one: server/workers, RateGate), so a limit
 * holds for the node whatever thread answers; behind a load balancer each node
 * enforces the limit on what it sees. The console keys buckets
 * by client address and account name, which anyone can vary: past 10,000 buckets
 * the full ones (which say nothing a new bucket would not) are dropped.
 */
/**
 * Where the service takes its decisions: this thread's RateLimiter, or in a serving
 * thread (server/workers) the coordinating thread's, asked over a message, so a
 * limit holds for the whole node whatever thread answers.
 */
export interface RateGate {
  take(key: string, ratePerMinute: number | undefined): RateDecision | Promise<RateDecision>;
}

export interface RateDecision {
  allowed: boolean;
  /** Seconds until one more request is allowed (when refused). */
  retryAfter: number;
}

const PRUNE_ABOVE = 10_000;

export class RateLimiter {
  readonly #buckets = new Map<string, { tokens: number; at: number; rate: number }>();
  readonly #clock: () => number;

  constructor(clock: () => number = () => performance.now()) {
    this.#clock = clock;
  }

  /** Takes one request for `key` at `ratePerMinute` (undefined: unlimited). */
  take(key: string, ratePerMinute: number | undefined): RateDecision {
    if (ratePerMinute === undefined) {
      this.#buckets.delete(key);
      return { allowed: true, retryAfter: 0 };
    }
    const now = this.#clock();
    const perMs = ratePerMinute / 60_000;
    let b = this.#buckets.get(key);
    if (!b || b.rate !== ratePerMinute) {
      if (!b && this.#buckets.size >= PRUNE_ABOVE) this.#prune(now);
      b = { tokens: ratePerMinute, at: now, rate: ratePerMinute };
      this.#buckets.set(key, b);
    }
    b.tokens = Math.min(ratePerMinute, b.tokens + (now - b.at) * perMs);
    b.at = now;
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return { allowed: true, retryAfter: 0 };
    }
    return { allowed: false, retryAfter: Math.max(1, Math.ceil((1 - b.tokens) / perMs / 1000)) };
  }

  /** Drops the buckets that have refilled: taking from one again starts where a new one would. */
  #prune(now: number): void {
    for (const [key, b] of this.#buckets) if (b.tokens + (now - b.at) * (b.rate / 60_000) >= b.rate) this.#buckets.delete(key);
  }

  /** How many buckets are held (for tests and metrics). */
  get size(): number {
    return this.#buckets.size;
  }
}
