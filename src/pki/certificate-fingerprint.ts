/**
 * The SHA-256 fingerprint of a certificate, computed once per Certificate object.
 * Certificate.fingerprint256 hashes the DER on every access; the validator keys
 * all its caches by fingerprint, several times per validation, so it memoises here
 * (a WeakMap: nothing is kept alive for the cache's sake).
 */
import type { Certificate } from '../x509/certificate.ts';

const memo = new WeakMap<Certificate, string>();

export function fingerprintOf(cert: Certificate): string {
  let fp = memo.get(cert);
  if (fp === undefined) {
    fp = cert.fingerprint256;
    memo.set(cert, fp);
  }
  return fp;
}
