/**
 * AES Key Wrap (RFC 3394) as used by KeyAgreeRecipientInfo (RFC 5753, RFC 8418)
 * and KEMRecipientInfo (RFC 9629), through node:crypto's id-aesNNN-wrap ciphers.
 * RFC 3565 2.3.2: the AlgorithmIdentifier parameters are absent.
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { secretKey } from './secret-key.ts';
import { OID } from '../../asn1/oids.ts';
import { KakitomeError } from '../../errors.ts';
import { encodeAlgorithmIdentifier, hasNoParameters, type AlgorithmIdentifier } from '../algorithm-identifier.ts';

/** RFC 3394 2.2.3.1 default initial value. */
const DEFAULT_IV = Buffer.from('A6A6A6A6A6A6A6A6', 'hex');

export interface KeyWrapAlgorithm {
  oid: string;
  /** KEK length in bytes. */
  kekLength: number;
  cipher: 'id-aes128-wrap' | 'id-aes192-wrap' | 'id-aes256-wrap';
}

const WRAPS: readonly KeyWrapAlgorithm[] = [
  { oid: OID.aes128_wrap, kekLength: 16, cipher: 'id-aes128-wrap' },
  { oid: OID.aes192_wrap, kekLength: 24, cipher: 'id-aes192-wrap' },
  { oid: OID.aes256_wrap, kekLength: 32, cipher: 'id-aes256-wrap' },
];

/**
 * The wrap algorithm matching a content-encryption key: RFC 5753 7.2 / RFC 8551 2.7
 * want the key-encryption strength at least that of the content key, and OpenSSL
 * pairs them the same way (aes128-wrap for a 16-byte CEK, aes256-wrap for 32).
 */
export function keyWrapForKeyLength(cekLength: number): KeyWrapAlgorithm {
  const w = WRAPS.find((x) => x.kekLength === cekLength);
  if (!w) throw new KakitomeError('UNSUPPORTED_ALG', `No AES key wrap for a ${cekLength}-byte key.`);
  return w;
}

export function keyWrapByOid(oid: string): KeyWrapAlgorithm | undefined {
  return WRAPS.find((x) => x.oid === oid);
}

/** Reads a KeyEncryptionAlgorithmIdentifier naming AES key wrap. */
export function parseKeyWrapAlgorithm(alg: AlgorithmIdentifier): KeyWrapAlgorithm {
  const w = keyWrapByOid(alg.oid);
  if (!w) throw new KakitomeError('UNSUPPORTED_ALG', `Key wrap algorithm ${alg.oid} is not supported (AES key wrap only).`);
  // QUIRK: RFC 3565 says absent; some writers put NULL. Both mean "no parameters".
  if (!hasNoParameters(alg)) throw new KakitomeError('MALFORMED', 'Malformed input: AES key wrap must not carry parameters.');
  return w;
}

export function encodeKeyWrapAlgorithm(w: KeyWrapAlgorithm): Buffer {
  return encodeAlgorithmIdentifier(w.oid);
}

/** RFC 3394 wrap of `key` (a multiple of 8 bytes, at least 16) under `kek`. */
export function wrapKey(w: KeyWrapAlgorithm, kek: Uint8Array, key: Uint8Array): Buffer {
  if (kek.length !== w.kekLength) throw new KakitomeError('INVALID_ARGUMENT', `${w.cipher} needs a ${w.kekLength}-byte KEK.`);
  const c = createCipheriv(w.cipher, secretKey(kek), DEFAULT_IV);
  return Buffer.concat([c.update(key), c.final()]);
}

/**
 * RFC 3394 unwrap. Returns undefined when the integrity check fails or the input
 * has an impossible length: callers turn that into the one DecryptionError (or a
 * random key), never into a distinguishable message.
 */
export function unwrapKey(w: KeyWrapAlgorithm, kek: Uint8Array, wrapped: Uint8Array): Buffer | undefined {
  if (kek.length !== w.kekLength || wrapped.length < 24 || wrapped.length % 8 !== 0 || wrapped.length > 4096) return undefined;
  try {
    const d = createDecipheriv(w.cipher, secretKey(kek), DEFAULT_IV);
    return Buffer.concat([d.update(wrapped), d.final()]);
  } catch {
    return undefined;
  }
}
