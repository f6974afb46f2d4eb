/**
 * A bounded cache with per-entry expiry, used for chains, revocation answers,
 * CRLs and caIssuers downloads. Bounded so that a flood of distinct senders cannot
 * grow memory; the oldest entries go first (Map keeps insertion order; hits are
 * not re-ordered, which keeps a hit to one look-up on the hot path, and every
 * entry expires anyway). Time comes from the injected clock, never Date.now().
 */
export class TtlCache<V> {
  readonly #max: number;
  readonly #now: () => number;
  readonly #map = new Map<string, { value: V; expires: number }>();

  constructor(maxEntries: number, now: () => number) {
    this.#max = Math.max(1, maxEntries);
    this.#now = now;
  }

  get(key: string): V | undefined {
    const e = this.#map.get(key);
    if (!e) return undefined;
    if (e.expires <= this.#now()) {
      this.#map.delete(key);
      return undefined;
    }
    return e.value;
  }

  /** Stores `value` until `expires` (ms since epoch); an already expired entry is not stored. */
  set(key: string, value: V, expires: number): void {
    if (expires <= this.#now()) return;
    this.#map.delete(key);
    this.#map.set(key, { value, expires });
    while (this.#map.size > this.#max) {
      const oldest = this.#map.keys().next().value as string;
      this.#map.delete(oldest);
    }
  }

  clear(): void {
    this.#map.clear();
  }

  get size(): number {
    return this.#map.size;
  }
}
