/**
 * Verifies the signature of a signed X.509-family object (CRL, BasicOCSPResponse):
 * SEQUENCE { tbs, AlgorithmIdentifier, BIT STRING }. Certificates themselves are
 * checked with X509Certificate.verify; CRLs and OCSP responses have no Node helper,
 * so the algorithm identifier is mapped to node:crypto here. Unknown algorithms
 * fail with UNSUPPORTED_ALG rather than being skipped.
 */
import { verify as cryptoVerify, constants, type KeyObject } from 'node:crypto';
import { Tag, readOid, readBitString, type Tlv } from '../asn1/ber.ts';
import { OID } from '../asn1/oids.ts';
import { KakitomeError, malformed } from '../errors.ts';
import { hashOfAlgorithm } from './algorithm-policy.ts';

const HASH_NAME: Record<string, string> = {
  [OID.sha1]: 'sha1',
  [OID.sha256]: 'sha256',
  [OID.sha384]: 'sha384',
  [OID.sha512]: 'sha512',
};

/** Returns true only when the signature verifies; false on a wrong signature. */
export function verifySignatureValue(algorithm: Tlv, tbs: Uint8Array, signature: Tlv, key: KeyObject): boolean {
  const parts = algorithm.children();
  const alg = readOid(parts[0] ?? malformed('empty AlgorithmIdentifier'));
  const sig = readBitString(signature, 'signatureValue');
  if (sig.unusedBits !== 0) malformed('signature BIT STRING with unused bits');
  const value = sig.bytes;
  const hash = hashOfAlgorithm(alg);
  try {
    if (hash && (alg.startsWith('1.2.840.113549.1.1.') || alg.startsWith('1.2.840.10045.4.'))) {
      if (hash === 'md5') throw new KakitomeError('WEAK_ALG', 'MD5 signatures are refused.');
      return cryptoVerify(hash, tbs, key, value);
    }
    if (alg === OID.Ed25519 || alg === OID.Ed448 || alg === OID.mlDsa44 || alg === OID.mlDsa65 || alg === OID.mlDsa87) {
      return cryptoVerify(null, tbs, key, value);
    }
    if (alg === OID.rsassaPss) {
      const p = readPssParameters(parts[1]);
      return cryptoVerify(p.hash, tbs, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: p.saltLength }, value);
    }
  } catch (e) {
    if (e instanceof KakitomeError) throw e;
    return false; // wrong key type for the algorithm, bad encoding: not a valid signature
  }
  throw new KakitomeError('UNSUPPORTED_ALG', `Unsupported signature algorithm ${alg}.`);
}

/** RSASSA-PSS-params (RFC 4055 3.1); MGF1 must use the same hash as the message. */
function readPssParameters(t: Tlv | undefined): { hash: string; saltLength: number } {
  let hash = 'sha1';
  let mgfHash = 'sha1';
  let saltLength = 20;
  if (t && t.tag === Tag.SEQUENCE) {
    for (const c of t.children()) {
      const inner = c.children()[0];
      if (!inner) malformed('RSASSA-PSS-params');
      if (c.tag === 0xa0) hash = HASH_NAME[readOid(inner.children()[0] ?? malformed('hashAlgorithm'))] ?? malformed('PSS hash');
      else if (c.tag === 0xa1) {
        const m = inner.children();
        if (readOid(m[0] ?? malformed('mgf')) !== OID.mgf1) throw new KakitomeError('UNSUPPORTED_ALG', 'PSS with a mask generation function other than MGF1.');
        mgfHash = HASH_NAME[readOid(m[1]?.children()[0] ?? malformed('MGF1 hash'))] ?? malformed('MGF1 hash');
      } else if (c.tag === 0xa2) {
        const v = inner.value;
        saltLength = 0;
        for (const b of v) saltLength = saltLength * 256 + b;
        if (v.length > 2) malformed('PSS saltLength');
      } else if (c.tag === 0xa3) {
        // trailerField must be 1 (RFC 4055).
        if (inner.value.length !== 1 || inner.value[0] !== 1) malformed('PSS trailerField');
      }
    }
  }
  if (mgfHash !== hash) throw new KakitomeError('UNSUPPORTED_ALG', 'PSS with MGF1 hash different from the message hash.');
  if (hash === 'sha1') throw new KakitomeError('WEAK_ALG', 'RSASSA-PSS with SHA-1 is refused for CRLs and OCSP responses.');
  return { hash, saltLength };
}
