/**
 * A bounded cache of parsed certificates keyed by their exact DER, so that the
 * certificates carried in every message from the same sender are parsed (and their
 * public keys imported into OpenSSL) once, not per message. Performance target:
 * 10,000 verifications/s/core, where parsing a certificate and importing its key
 * would otherwise cost more than the RSA verification itself.
 *
 * Safe to share: Certificate is immutable, and a hit is byte-for-byte the same
 * certificate: the look-up key is the length and the last 48 bytes (inside the
 * signature value, so distinct certificates differ there), and a hit is confirmed
 * by comparing the whole encoding. Turning the whole DER into a string key on every
 * look-up cost more than the comparison.
 */
import { Certificate } from '../../x509/certificate.ts';

const MAX_ENTRIES = 1024;
const TAIL = 48;
const cache = new Map<string, Certificate>();

export function parseCertificateCached(der: Uint8Array): Certificate {
  const bytes = Buffer.from(der.buffer, der.byteOffset, der.length);
  const key = `${bytes.length}:${bytes.toString('latin1', Math.max(0, bytes.length - TAIL))}`;
  const hit = cache.get(key);
  if (hit && hit.der.equals(bytes)) return hit;
  const cert = Certificate.fromDer(der);
  if (hit) cache.delete(key); // a different certificate with the same tail: the newer one takes the slot
  else if (cache.size >= MAX_ENTRIES) cache.delete(cache.keys().next().value!);
  cache.set(key, cert);
  return cert;
}
