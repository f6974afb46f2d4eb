/**
 * Key-derivation functions for key agreement and KEM recipients:
 * - the ANSI X9.63 KDF of RFC 5753 7.2 (ECDH on P-curves), over ECC-CMS-SharedInfo;
 * - HKDF (RFC 5869) for X25519/X448 (RFC 8418 2.2) and for KEMRecipientInfo
 *   (RFC 9629 5, RFC 9936 2.2.1: salt unused, i.e. the empty string).
 * The hash and HMAC come from node:crypto; the X9.63 counter loop is the few lines
 * of glue node:crypto lacks (it is a concatenation of hashes, not a primitive).
 */
import { createHash, hkdfSync } from 'node:crypto';
import { sequence, explicit, octetString } from '../../asn1/der.ts';
import { KakitomeError } from '../../errors.ts';

export type KdfHash = 'sha1' | 'sha224' | 'sha256' | 'sha384' | 'sha512';

/**
 * ECC-CMS-SharedInfo (RFC 5753 7.2, reused by RFC 8418 2.1):
 *   SEQUENCE { keyInfo AlgorithmIdentifier, entityUInfo [0] EXPLICIT OCTET STRING OPTIONAL,
 *              suppPubInfo [2] EXPLICIT OCTET STRING }
 * keyInfo is the key-wrap algorithm; suppPubInfo the KEK length in bits, 32-bit big-endian.
 */
export function encodeEccCmsSharedInfo(keyWrapAlgorithm: Uint8Array, kekLength: number, ukm?: Uint8Array): Buffer {
  const bits = Buffer.alloc(4);
  bits.writeUInt32BE(kekLength * 8);
  return ukm ? sequence(keyWrapAlgorithm, explicit(0, octetString(ukm)), explicit(2, octetString(bits))) : sequence(keyWrapAlgorithm, explicit(2, octetString(bits)));
}

/** ANSI X9.63 KDF (SEC 1 3.6.1): Hash(Z || counter32 || SharedInfo) for counter = 1, 2, ... */
export function deriveX963(hash: KdfHash, z: Uint8Array, sharedInfo: Uint8Array, length: number): Buffer {
  if (length <= 0 || length > 64) throw new KakitomeError('INVALID_ARGUMENT', 'X9.63 KDF output length out of range.');
  const out: Buffer[] = [];
  let have = 0;
  const counter = Buffer.alloc(4);
  for (let i = 1; have < length; i++) {
    counter.writeUInt32BE(i);
    const block = createHash(hash).update(z).update(counter).update(sharedInfo).digest();
    out.push(block);
    have += block.length;
  }
  return Buffer.concat(out).subarray(0, length);
}

/** HKDF-Extract-then-Expand with an empty salt unless one is given. */
export function deriveHkdf(hash: 'sha256' | 'sha384' | 'sha512', ikm: Uint8Array, info: Uint8Array, length: number, salt: Uint8Array = Buffer.alloc(0)): Buffer {
  if (length <= 0 || length > 255 * 32) throw new KakitomeError('INVALID_ARGUMENT', 'HKDF output length out of range.');
  return Buffer.from(hkdfSync(hash, ikm, salt, info, length));
}
