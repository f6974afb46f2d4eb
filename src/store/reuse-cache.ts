/**
 * What the store derived from bytes it read (a private key opened from its sealed
 * bytes, a certificate parsed from its DER), kept for reuse by record id (issue 12,
 * item 5). Opening a sealed key costs two AES-GCM decryptions and a PKCS#8 import,
 * and the import dominates: about 3,200/s for RSA-2048 and 1,800/s for P-256 on the
 * reference machine; parsing a certificate and importing its public key costs about
 * as much again. A gateway needs 10,000 lookups and uses per second.
 *
 * The cache never decides anything: every lookup still reads the row from the
 * database (a purged key has no row; status, filing and revocation are in the
 * query) and every key use is audited. An entry is reused only when the row still
 * holds the very bytes (and, for a key, the same master key id) it was made from,
 * so a key re-wrapped by a master-key rotation, or a row changed behind our back,
 * is made again from its new bytes (and fails there if they are bad). Bounded: the
 * least recently used entry goes first.
 */
export class ReuseCache<T> {
  readonly #max: number;
  readonly #entries = new Map<string, { bytes: Buffer; tag: string; value: T }>();

  /** `max`: entries kept; 0 makes every value afresh. */
  constructor(max: number) {
    this.#max = Math.max(0, Math.floor(max));
  }

  /** The value made earlier from exactly these bytes and tag for `id`, or `make()`'s result (then kept). */
  get(id: string, bytes: Uint8Array, tag: string, make: () => T): T {
    const hit = this.#entries.get(id);
    if (hit && hit.tag === tag && hit.bytes.equals(bytes)) {
      this.#entries.delete(id); // least recently used order: move to the end
      this.#entries.set(id, hit);
      return hit.value;
    }
    const value = make();
    if (this.#max === 0) return value;
    this.#entries.delete(id);
    if (this.#entries.size >= this.#max) this.#entries.delete(this.#entries.keys().next().value!);
    this.#entries.set(id, { bytes: Buffer.from(bytes), tag, value });
    return value;
  }

  delete(id: string): void {
    this.#entries.delete(id);
  }

  clear(): void {
    this.#entries.clear();
  }
}
