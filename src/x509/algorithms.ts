/**
 * Which signature algorithm a key signs with in X.509 and how to call node:crypto
 * for it. Shared by certificate issuing; CMS has its own table because CMS names
 * RSA signatures differently (rsaEncryption) and adds PSS parameters.
 */
import { sign as cryptoSign, type KeyObject } from 'node:crypto';
import { OID } from '../asn1/oids.ts';
import { sequence, oid, NULL } from '../asn1/der.ts';
import { KakitomeError } from '../errors.ts';

export type HashName = 'sha256' | 'sha384' | 'sha512';

/** The default digest for a key: matched to the curve size for ECDSA. */
export function defaultHashFor(key: KeyObject): HashName {
  if (key.asymmetricKeyType === 'ec') {
    const c = key.asymmetricKeyDetails?.namedCurve;
    if (c === 'secp384r1') return 'sha384';
    if (c === 'secp521r1') return 'sha512';
  }
  return 'sha256';
}

/** AlgorithmIdentifier for an X.509 signature by `key` with `hash`. */
export function x509SignatureAlgorithm(key: KeyObject, hash: HashName = defaultHashFor(key)): Buffer {
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return sequence(oid({ sha256: OID.sha256WithRSAEncryption, sha384: OID.sha384WithRSAEncryption, sha512: OID.sha512WithRSAEncryption }[hash]), NULL);
    case 'ec':
      return sequence(oid({ sha256: OID.ecdsaWithSHA256, sha384: OID.ecdsaWithSHA384, sha512: OID.ecdsaWithSHA512 }[hash]));
    case 'ed25519':
      return sequence(oid(OID.Ed25519));
    case 'ed448':
      return sequence(oid(OID.Ed448));
    case 'ml-dsa-44':
      return sequence(oid(OID.mlDsa44));
    case 'ml-dsa-65':
      return sequence(oid(OID.mlDsa65));
    case 'ml-dsa-87':
      return sequence(oid(OID.mlDsa87));
    default:
      throw new KakitomeError('UNSUPPORTED_ALG', `Cannot sign certificates with a ${key.asymmetricKeyType} key.`);
  }
}

/** Signs `data` as X.509 does for the key type (PKCS#1 v1.5 for RSA, DER ECDSA, pure EdDSA/ML-DSA). */
export function x509Sign(key: KeyObject, data: Uint8Array, hash: HashName = defaultHashFor(key)): Buffer {
  const t = key.asymmetricKeyType;
  const algo = t === 'rsa' || t === 'ec' ? hash : null;
  return cryptoSign(algo, data, key);
}
