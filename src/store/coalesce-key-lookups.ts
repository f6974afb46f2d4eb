/**
 * Key lookups that arrive together share their queries (issue 12, item 5), as key
 * uses share their commit (record-key-use.ts). A gateway decrypting many messages at
 * once asks for the keys of each envelope's recipients; every request that arrives in
 * one turn of the event loop is answered by one indexed query per chunk of
 * identifiers instead of one query each. On PostgreSQL that is one round trip (and
 * one server-side plan) for dozens of messages.
 *
 * Each caller gets the shared candidates indexed by serial number and by key
 * identifier and takes only the rows its own identifiers name (find-envelope-keys
 * and Store.findDecryptionKeys match issuer and serial exactly), so a request never
 * sees a key another envelope named unless its own envelope names it too.
 *
 * IN lists are padded to a power of two (the last value repeated), so the engines
 * see ten statement shapes per column instead of one per list length (SQLite keeps
 * them prepared). The columns are named, never `k.*`: a prepared statement whose
 * result shape a later migration changes fails on PostgreSQL ("cached plan must not
 * change result type").
 */
import type { Row, SqlEngine } from './sql-engine.ts';

export interface KeyCandidates {
  /** Rows by lowercase hex serial number (issuerAndSerialNumber; the caller checks the issuer). */
  bySerial: ReadonlyMap<string, readonly Row[]>;
  /** Rows by lowercase hex subject key identifier. */
  bySki: ReadonlyMap<string, readonly Row[]>;
}

interface Pending {
  serials: Set<string>;
  skis: Set<string>;
  waiters: Array<{ resolve: (c: KeyCandidates) => void; reject: (e: unknown) => void }>;
}

/** Identifiers per query: at most 512 (a power of two, see padding). */
const CHUNK = 512;

/**
 * The certificates with a stored private key whose serial number or key identifier
 * is in the list, never one whose key is also a CA's (a CA key never decrypts
 * attacker-chosen input).
 */
const candidateQuery = (column: 'serial_hex' | 'ski_hex', n: number) =>
  `SELECT c.id AS certificate_id, c.der, c.issuer_hex, c.serial_hex, c.ski_hex, k.id, k.sealed, k.master_key_id FROM certificates c JOIN private_keys k ON k.spki_sha256 = c.spki_sha256
   WHERE c.${column} IN (${Array.from({ length: n }, () => '?').join(', ')})
     AND NOT EXISTS (SELECT 1 FROM certificates ca WHERE ca.spki_sha256 = c.spki_sha256 AND ca.is_ca = 1)`;

function padded(values: string[]): string[] {
  let n = 1;
  while (n < values.length) n *= 2;
  return values.concat(Array.from({ length: n - values.length }, () => values[values.length - 1]!));
}

export class KeyLookupCoalescer {
  readonly #engine: SqlEngine;
  #pending: Pending | undefined;

  constructor(engine: SqlEngine) {
    this.#engine = engine;
  }

  /** Candidates for these serial numbers and key identifiers (lowercase hex), shared with the requests of the same turn. */
  find(serials: readonly string[], skis: readonly string[]): Promise<KeyCandidates> {
    if (!this.#pending) {
      const p: Pending = { serials: new Set(), skis: new Set(), waiters: [] };
      this.#pending = p;
      setImmediate(() => {
        this.#pending = undefined;
        this.#query(p).then((c) => p.waiters.forEach((w) => w.resolve(c)), (e) => p.waiters.forEach((w) => w.reject(e)));
      });
    }
    const p = this.#pending;
    for (const s of serials) p.serials.add(s);
    for (const s of skis) p.skis.add(s);
    return new Promise((resolve, reject) => p.waiters.push({ resolve, reject }));
  }

  async #query(p: Pending): Promise<KeyCandidates> {
    const bySerial = new Map<string, Row[]>();
    const bySki = new Map<string, Row[]>();
    for (const [column, values, index] of [['serial_hex', [...p.serials], bySerial], ['ski_hex', [...p.skis], bySki]] as const) {
      for (let i = 0; i < values.length; i += CHUNK) {
        const part = padded(values.slice(i, i + CHUNK));
        for (const r of await this.#engine.all(candidateQuery(column, part.length), part)) {
          const k = String(r[column]);
          const list = index.get(k) ?? [];
          if (!list.some((x) => x.certificate_id === r.certificate_id)) list.push(r);
          index.set(k, list);
        }
      }
    }
    return { bySerial, bySki };
  }
}
