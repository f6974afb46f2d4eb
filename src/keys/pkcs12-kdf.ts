/**
 * The PKCS#12 key derivation function (RFC 7292 appendix B.2), used for the MAC of
 * every PFX that OpenSSL 3.0, Windows, iOS and gpgsm write, and for the legacy
 * pbeWithSHAAnd3-KeyTripleDES-CBC scheme (appendix C).
 *
 * Hand-written because node:crypto does not expose it. It is a construction over
 * a hash (node's createHash); no primitive is implemented here.
 */
import { createHash, hash as digest } from 'node:crypto';
import { KakitomeError } from '../errors.ts';
import { DEFAULT_LIMITS } from '../limits.ts';

export type Pkcs12KdfHash = 'sha1' | 'sha224' | 'sha256' | 'sha384' | 'sha512';

/** Diversifier ID (B.3): 1 key material, 2 IV, 3 MAC key. */
export type Pkcs12KdfPurpose = 1 | 2 | 3;

const SIZES: Record<Pkcs12KdfHash, { u: number; v: number }> = {
  sha1: { u: 20, v: 64 },
  sha224: { u: 28, v: 64 },
  sha256: { u: 32, v: 64 },
  sha384: { u: 48, v: 128 },
  sha512: { u: 64, v: 128 },
};

/**
 * Above this the KDF is a denial-of-service lever (hostile files: ~2.5 s of SHA-1 in
 * the JS loop at 2M); OpenSSL writes 2048, Windows 2000, our modern export 600,000.
 * A last guard: imports are bounded per file, and tighter, by pkcs12-key-deriver.ts.
 */
export const MAX_PKCS12_ITERATIONS = DEFAULT_LIMITS.maxPkcs12Iterations;

/**
 * B.1: the password as a BMPString, big-endian, with two trailing zero octets.
 * An empty password is the two zero octets alone (what OpenSSL, NSS and Windows do).
 */
export function pkcs12PasswordBytes(password: string): Buffer {
  const le = Buffer.from(`${password}\0`, 'utf16le');
  return le.swap16();
}

function repeatTo(src: Uint8Array, v: number): Buffer {
  if (src.length === 0) return Buffer.alloc(0);
  const len = v * Math.ceil(src.length / v);
  const out = Buffer.alloc(len);
  for (let i = 0; i < len; i++) out[i] = src[i % src.length]!;
  return out;
}

export function derivePkcs12Key(hash: Pkcs12KdfHash, password: Uint8Array, salt: Uint8Array, purpose: Pkcs12KdfPurpose, iterations: number, n: number): Buffer {
  if (!Number.isInteger(iterations) || iterations < 1) throw new KakitomeError('MALFORMED', 'PKCS#12 iteration count must be a positive integer.');
  if (iterations > MAX_PKCS12_ITERATIONS) throw new KakitomeError('LIMIT', `PKCS#12 iteration count ${iterations} exceeds ${MAX_PKCS12_ITERATIONS}.`);
  const { u, v } = SIZES[hash];
  // Steps 1-4: D = ID repeated v times; I = S || P, each padded by repetition to a multiple of v.
  const D = Buffer.alloc(v, purpose);
  const I = Buffer.concat([repeatTo(salt, v), repeatTo(password, v)]);
  const c = Math.ceil(n / u);
  const out: Buffer[] = [];
  for (let i = 0; i < c; i++) {
    // Step 6a: A_i = H^r(D || I).
    let A = createHash(hash).update(D).update(I).digest();
    // crypto.hash, one call per iteration: 1.4-2x faster than createHash here (NSS writes 600,000 iterations).
    for (let r = 1; r < iterations; r++) A = digest(hash, A, 'buffer');
    out.push(A);
    if (i === c - 1) break;
    // Steps 6b-6c: B = A_i repeated to v octets; each v-octet block I_j = (I_j + B + 1) mod 2^(8v).
    const B = repeatTo(A, v);
    for (let j = 0; j < I.length; j += v) {
      let carry = 1;
      for (let k = v - 1; k >= 0; k--) {
        const sum = I[j + k]! + B[k]! + carry;
        I[j + k] = sum & 0xff;
        carry = sum >> 8;
      }
    }
  }
  return Buffer.concat(out).subarray(0, n);
}
