/**
 * A bounded cache of parsed certificates keyed by their exact DER, so that the
 * certificates carried in every message from the same sender are parsed (and their
 * public keys imported into OpenSSL) once, not per message. Performance target:
 * 10,000 verifications/s/core, where parsing a certificate and importing its key
 * would otherwise cost more than the RSA verification itself.
 *
 * Safe to share: Certificate is immutable, and the key is the whole encoding, so a
 * hit is byte-for-byte the same certificate.
 */
import { Certificate } from '../../x509/certificate.ts';

const MAX_ENTRIES = 1024;
const cache = new Map<string, Certificate>();

export function parseCertificateCached(der: Uint8Array): Certificate {
  const key = Buffer.from(der.buffer, der.byteOffset, der.length).toString('latin1');
  const hit = cache.get(key);
  if (hit) return hit;
  const cert = Certificate.fromDer(der);
  if (cache.size >= MAX_ENTRIES) cache.delete(cache.keys().next().value!);
  cache.set(key, cert);
  return cert;
}
