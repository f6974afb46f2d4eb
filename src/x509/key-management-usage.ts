/**
 * Whether a certificate's key may receive content-encryption keys (key
 * management), by the rules a sender applies before encrypting to it (RFC 8550
 * 4.4.2 and 4.4.4; RFC 5280 4.2.1.3 and 4.2.1.12): an RSA or ML-KEM key needs
 * keyEncipherment, an EC, X25519 or X448 key needs keyAgreement, extKeyUsage must
 * name emailProtection or anyExtendedKeyUsage, and an absent extension restricts
 * nothing. Other key types (Ed25519, ML-DSA...) never receive a key.
 *
 * The store uses it for the keys it decrypts with and the certificates it files
 * for encryption; the path validator for usage "encryption".
 */
import { OID } from '../asn1/oids.ts';
import type { Certificate } from './certificate.ts';

/** The keyUsage bit a key of this type needs to receive a content key; undefined when it cannot receive one. */
export function keyManagementBit(cert: Certificate): 'keyEncipherment' | 'keyAgreement' | undefined {
  const t = cert.publicKey.asymmetricKeyType;
  if (t === 'rsa' || t === 'ml-kem-512' || t === 'ml-kem-768' || t === 'ml-kem-1024') return 'keyEncipherment';
  if (t === 'ec' || t === 'x25519' || t === 'x448') return 'keyAgreement';
  return undefined;
}

/** True when the certificate's key type, keyUsage and extKeyUsage all allow e-mail key management. */
export function allowsKeyManagement(cert: Certificate): boolean {
  const bit = keyManagementBit(cert);
  if (bit === undefined) return false;
  const ku = cert.keyUsage;
  if (ku && !ku.has(bit)) return false;
  const eku = cert.extendedKeyUsage;
  return !eku || eku.includes(OID.emailProtection) || eku.includes(OID.anyExtendedKeyUsage);
}
