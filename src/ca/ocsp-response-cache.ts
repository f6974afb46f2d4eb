/**
 * Signed OCSP responses kept for reuse (RFC 5019 2.2: a responder may pre-produce
 * and reuse responses until their nextUpdate). Signing is the one costly step of an
 * answer; a client polling one certificate, or many clients asking about a popular
 * one, reuse a single signature.
 *
 * An entry is keyed by the exact CertID the client sent (its hash algorithm
 * included) and remembers the status it was signed for: the responder looks the
 * status up for every request and reuses the bytes only when it is unchanged, so a
 * revocation shows at once. Entries are dropped when half their validity has passed
 * (clients always receive at least half the window before nextUpdate), and the
 * number of entries is bounded (oldest first out).
 */
export interface CachedOcspResponse {
  /** What the status lookup returned when the response was signed (good / revoked at... / unknown). */
  status: string;
  response: Buffer;
  /** When it stops being served. */
  expiresAt: number;
}

export class OcspResponseCache {
  readonly #entries = new Map<string, CachedOcspResponse>();
  readonly #maxEntries: number;

  constructor(maxEntries: number) {
    this.#maxEntries = maxEntries;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The cached response for `certId`, if it was signed for `status` and is still fresh at `now`. */
  get(certId: Uint8Array, status: string, now: number): Buffer | undefined {
    const key = Buffer.from(certId).toString('hex');
    const hit = this.#entries.get(key);
    if (!hit) return undefined;
    if (hit.status !== status || now >= hit.expiresAt) {
      this.#entries.delete(key);
      return undefined;
    }
    return hit.response;
  }

  set(certId: Uint8Array, entry: CachedOcspResponse): void {
    if (this.#maxEntries < 1) return;
    const key = Buffer.from(certId).toString('hex');
    this.#entries.delete(key);
    while (this.#entries.size >= this.#maxEntries) this.#entries.delete(this.#entries.keys().next().value!);
    this.#entries.set(key, entry);
  }

  /** Forgets everything (the signer changed). */
  clear(): void {
    this.#entries.clear();
  }
}
