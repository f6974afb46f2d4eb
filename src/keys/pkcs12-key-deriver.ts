/**
 * The password-based key derivations of one PKCS#12 file, metered and memoised.
 *
 * A PKCS#12 file names its own cost: every encrypted block and the MAC carry a salt
 * and an iteration count, and nothing in RFC 7292 bounds how many blocks there are.
 * A 4 MiB file can hold thousands of blocks of 2,000,000 iterations each (hours of
 * work for one import), behind a MAC of 1 iteration that passes at once. So each
 * import gets one deriver that
 * - derives each distinct (KDF, PRF, password form, salt, iterations, purpose,
 *   length) once and hands the same bytes to every block that names it again;
 * - refuses (LIMIT) a derivation above maxPkcs12Iterations, and any derivation that
 *   would take the file's total above maxPkcs12TotalIterations, before doing it;
 * - counts encrypted blocks (EncryptedData and shrouded key bags) against
 *   maxPkcs12EncryptedBlocks.
 * Work is counted in iterations times hash-output blocks (a 3DES key from the SHA-1
 * PKCS#12 KDF is 24 bytes: two 20-byte blocks, twice the iterations).
 */
import { pbkdf2Sync } from 'node:crypto';
import { KakitomeError } from '../errors.ts';
import { resolveLimits, type Limits } from '../limits.ts';
import { derivePkcs12Key, pkcs12PasswordBytes, type Pkcs12KdfHash, type Pkcs12KdfPurpose } from './pkcs12-kdf.ts';

/**
 * One derivation a file asks for. `password` says how the password is encoded:
 * UTF-8 octets (PBES2 in PKCS#12), the BMPString of RFC 7292 B.1, or no octets at
 * all (the empty-password QUIRK of older Windows and Java writers).
 */
export type DerivationSpec =
  | { kdf: 'pbkdf2'; hash: Pkcs12KdfHash; salt: Uint8Array; iterations: number; length: number }
  | { kdf: 'pkcs12'; hash: Pkcs12KdfHash; salt: Uint8Array; iterations: number; length: number; purpose: Pkcs12KdfPurpose; password: 'bmp' | 'none' };

/** What one derivation cost (reported to `onKeyDerivation`, for metering and tests). */
export interface KeyDerivation {
  kdf: 'pbkdf2' | 'pkcs12';
  hash: Pkcs12KdfHash;
  iterations: number;
  /** Iterations times hash-output blocks: the unit of maxPkcs12TotalIterations. */
  cost: number;
}

export type Pkcs12WorkLimits = Pick<Limits, 'maxPkcs12Iterations' | 'maxPkcs12TotalIterations' | 'maxPkcs12EncryptedBlocks'>;

const OUTPUT_BYTES: Record<Pkcs12KdfHash, number> = { sha1: 20, sha224: 28, sha256: 32, sha384: 48, sha512: 64 };

/** The work a derivation costs, in iterations times hash-output blocks. */
export function derivationCost(spec: DerivationSpec): number {
  return spec.iterations * Math.ceil(spec.length / OUTPUT_BYTES[spec.hash]);
}

function memoKey(spec: DerivationSpec): string {
  const form = spec.kdf === 'pbkdf2' ? 'utf8' : `${spec.password}/${spec.purpose}`;
  return `${spec.kdf}/${spec.hash}/${form}/${spec.iterations}/${spec.length}/${Buffer.from(spec.salt).toString('hex')}`;
}

function checkIterations(iterations: number, max: number): void {
  if (!Number.isSafeInteger(iterations) || iterations < 1) throw new KakitomeError('MALFORMED', 'Malformed input: PKCS#12 iteration count is not a positive integer.');
  if (iterations > max) throw new KakitomeError('LIMIT', `PKCS#12 iteration count ${iterations} exceeds ${max} (maxPkcs12Iterations).`);
}

export class Pkcs12KeyDeriver {
  readonly #password: string;
  readonly #limits: Pkcs12WorkLimits;
  readonly #onDerivation: ((d: KeyDerivation) => void) | undefined;
  readonly #memo = new Map<string, Buffer>();
  #spent = 0;
  #blocks = 0;
  #derivations = 0;

  constructor(password: string, limits?: Partial<Limits>, onDerivation?: (d: KeyDerivation) => void) {
    this.#password = password;
    this.#limits = resolveLimits(limits);
    this.#onDerivation = onDerivation;
  }

  /** Derivations done and their total cost so far. */
  get work(): { derivations: number; cost: number } {
    return { derivations: this.#derivations, cost: this.#spent };
  }

  /** Counts one encrypted block (EncryptedData or shrouded key bag); LIMIT past the bound. */
  countEncryptedBlock(): void {
    const max = this.#limits.maxPkcs12EncryptedBlocks;
    if (++this.#blocks > max) throw new KakitomeError('LIMIT', `The PKCS#12 file holds more than ${max} encrypted blocks (maxPkcs12EncryptedBlocks).`);
  }

  /**
   * Refuses (LIMIT), before any work, a set of derivations whose distinct members
   * would take the file past its budget: lets a file that announces its cost up
   * front (the MAC and the top-level encrypted blocks) fail without one derivation.
   */
  ensureAffordable(specs: readonly DerivationSpec[]): void {
    const distinct = new Map<string, DerivationSpec>();
    for (const s of specs) {
      checkIterations(s.iterations, this.#limits.maxPkcs12Iterations);
      const k = memoKey(s);
      if (!this.#memo.has(k)) distinct.set(k, s);
    }
    let cost = this.#spent;
    for (const s of distinct.values()) cost += derivationCost(s);
    this.#checkTotal(cost);
  }

  /** The key `spec` names: derived once, then the same bytes (never modify them). */
  derive(spec: DerivationSpec): Buffer {
    const k = memoKey(spec);
    const known = this.#memo.get(k);
    if (known) return known;
    checkIterations(spec.iterations, this.#limits.maxPkcs12Iterations);
    const cost = derivationCost(spec);
    this.#checkTotal(this.#spent + cost);
    this.#spent += cost;
    this.#derivations++;
    this.#onDerivation?.({ kdf: spec.kdf, hash: spec.hash, iterations: spec.iterations, cost });
    const out =
      spec.kdf === 'pbkdf2'
        ? // QUIRK: RFC 8018 leaves the password encoding open; OpenSSL, NSS and Windows use its UTF-8 octets for PBES2 inside PKCS#12.
          pbkdf2Sync(Buffer.from(this.#password, 'utf8'), spec.salt, spec.iterations, spec.length, spec.hash)
        : derivePkcs12Key(spec.hash, spec.password === 'bmp' ? pkcs12PasswordBytes(this.#password) : new Uint8Array(0), spec.salt, spec.purpose, spec.iterations, spec.length);
    this.#memo.set(k, out);
    return out;
  }

  /** Zeroes every derived key; call when the file is done with. */
  wipe(): void {
    for (const b of this.#memo.values()) b.fill(0);
    this.#memo.clear();
  }

  #checkTotal(cost: number): void {
    const max = this.#limits.maxPkcs12TotalIterations;
    if (cost > max) throw new KakitomeError('LIMIT', `The PKCS#12 file asks for ${cost} key-derivation iterations in all; at most ${max} are spent on one file (maxPkcs12TotalIterations).`);
  }
}
