/**
 * One-time downloads (a PKCS#12 file made for its owner): held in this process's
 * memory for 10 minutes at most, bound to the person it was made for, and
 * forgotten at the first download. Never written to the store or to disk. Behind
 * a load balancer the download must reach the node that made it (sticky
 * sessions), or the person makes a new certificate.
 */
import { randomBytes } from 'node:crypto';

export interface Handover {
  personId: string;
  fileName: string;
  contentType: string;
  bytes: Buffer;
  expiresAt: number;
}

/**
 * Where downloads are held: this thread's Handovers, or in a serving thread
 * (server/workers) the coordinating thread's, so the download works whichever
 * thread of the node answers it.
 */
export interface HandoverStore {
  hold(personId: string, fileName: string, contentType: string, bytes: Buffer): string | Promise<string>;
  take(id: string, personId: string): Handover | undefined | Promise<Handover | undefined>;
}

const TTL_MS = 10 * 60_000;
const MAX_HELD = 1000;

export class Handovers implements HandoverStore {
  readonly #held = new Map<string, Handover>();
  readonly #clock: () => number;

  constructor(clock: () => number = () => Date.now()) {
    this.#clock = clock;
  }

  #sweep(now: number): void {
    for (const [id, h] of this.#held) if (h.expiresAt <= now) this.#forget(id, h);
  }

  #forget(id: string, h: Handover): void {
    h.bytes.fill(0);
    this.#held.delete(id);
  }

  /** Holds `bytes` for its owner; returns the id of the download link. */
  hold(personId: string, fileName: string, contentType: string, bytes: Buffer): string {
    const now = this.#clock();
    this.#sweep(now);
    // A flood of certificate requests must not fill memory: the oldest goes first.
    if (this.#held.size >= MAX_HELD) {
      const [oldest, h] = this.#held.entries().next().value!;
      this.#forget(oldest, h);
    }
    const id = randomBytes(18).toString('base64url');
    this.#held.set(id, { personId, fileName, contentType, bytes, expiresAt: now + TTL_MS });
    return id;
  }

  /** The download for its owner, once; undefined for anyone else, a second time, or after it expired. */
  take(id: string, personId: string): Handover | undefined {
    this.#sweep(this.#clock());
    const h = this.#held.get(id);
    if (!h || h.personId !== personId) return undefined;
    this.#held.delete(id);
    return h;
  }
}
