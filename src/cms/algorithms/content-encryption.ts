/**
 * Content-encryption algorithms of EnvelopedData (RFC 5652 6.3, RFC 3565 AES-CBC,
 * RFC 8018 B.2.2 des-ede3-cbc) and AuthEnvelopedData (RFC 5083, RFC 5084 AES-GCM,
 * RFC 8103 ChaCha20-Poly1305): their AlgorithmIdentifiers and one-shot
 * encryption/decryption through node:crypto.
 *
 * Which algorithms appear where is fixed: AEAD algorithms only in
 * AuthEnvelopedData, CBC only in EnvelopedData. The envelope parser enforces it
 * so that one input never has two readings (an AEAD cipher in EnvelopedData would
 * be decrypted without checking its tag).
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { Tag, readOctetString, readSmallInt } from '../../asn1/ber.ts';
import { sequence, octetString, integer } from '../../asn1/der.ts';
import { OID } from '../../asn1/oids.ts';
import { DecryptionError, KakitomeError, malformed } from '../../errors.ts';
import { secretKey } from './secret-key.ts';
import { encodeAlgorithmIdentifier, type AlgorithmIdentifier } from '../algorithm-identifier.ts';

/** Names used in DecryptResult.contentEncryption; the first seven may be sent. */
export type ContentCipherName =
  | 'aes-128-gcm' | 'aes-192-gcm' | 'aes-256-gcm' | 'chacha20-poly1305'
  | 'aes-128-cbc' | 'aes-192-cbc' | 'aes-256-cbc' | 'des-ede3-cbc';

export interface ContentCipher {
  name: ContentCipherName;
  oid: string;
  keyLength: number;
  /** IV or nonce length we send and accept. */
  ivLength: number;
  aead: boolean;
  /** Decrypt only: never offered for sending (RFC 8551 2.7: 3DES is MUST- for receiving). */
  legacy: boolean;
}

const CIPHERS: readonly ContentCipher[] = [
  { name: 'aes-128-gcm', oid: OID.aes128_GCM, keyLength: 16, ivLength: 12, aead: true, legacy: false },
  { name: 'aes-192-gcm', oid: OID.aes192_GCM, keyLength: 24, ivLength: 12, aead: true, legacy: false },
  { name: 'aes-256-gcm', oid: OID.aes256_GCM, keyLength: 32, ivLength: 12, aead: true, legacy: false },
  { name: 'chacha20-poly1305', oid: OID.chacha20Poly1305, keyLength: 32, ivLength: 12, aead: true, legacy: false },
  { name: 'aes-128-cbc', oid: OID.aes128_CBC, keyLength: 16, ivLength: 16, aead: false, legacy: false },
  { name: 'aes-192-cbc', oid: OID.aes192_CBC, keyLength: 24, ivLength: 16, aead: false, legacy: false },
  { name: 'aes-256-cbc', oid: OID.aes256_CBC, keyLength: 32, ivLength: 16, aead: false, legacy: false },
  { name: 'des-ede3-cbc', oid: OID.des_ede3_cbc, keyLength: 24, ivLength: 8, aead: false, legacy: true },
];

const BY_NAME = new Map(CIPHERS.map((c) => [c.name, c]));
const BY_OID = new Map(CIPHERS.map((c) => [c.oid, c]));

/** The tag length we write: the full 16 bytes (RFC 5084 3.2 allows 12..16; OpenSSL writes 16). */
export const SENT_TAG_LENGTH = 16;

export function contentCipher(name: string): ContentCipher {
  const c = BY_NAME.get(name as ContentCipherName);
  if (!c) throw new KakitomeError('UNSUPPORTED_ALG', `Unknown content-encryption algorithm "${name}".`);
  return c;
}

/** A content cipher as read from an EncryptedContentInfo, with its IV/nonce and tag length. */
export interface ContentEncryptionParameters {
  cipher: ContentCipher;
  iv: Uint8Array;
  /** AEAD tag length (ICV length); 0 for CBC. */
  tagLength: number;
}

/**
 * contentEncryptionAlgorithm for `name` with the given IV/nonce:
 * - AES-CBC, 3DES: parameters are the IV as an OCTET STRING (RFC 3565 4.1, RFC 8018 B.2.2).
 * - AES-GCM: GCMParameters { aes-nonce OCTET STRING, aes-ICVlen INTEGER DEFAULT 12 } (RFC 5084 3.2);
 *   we write ICVlen 16 explicitly.
 * - ChaCha20-Poly1305: AEADChaCha20Poly1305Nonce OCTET STRING (SIZE(12)) (RFC 8103 3).
 */
export function encodeContentEncryptionAlgorithm(name: ContentCipherName, iv: Uint8Array): Buffer {
  const c = contentCipher(name);
  if (iv.length !== c.ivLength) throw new KakitomeError('INVALID_ARGUMENT', `${name} needs a ${c.ivLength}-byte IV/nonce.`);
  if (name.endsWith('-gcm')) return encodeAlgorithmIdentifier(c.oid, sequence(octetString(iv), integer(SENT_TAG_LENGTH)));
  return encodeAlgorithmIdentifier(c.oid, octetString(iv));
}

/** A fresh random IV/nonce of the right length for the cipher. */
export function generateContentIv(name: ContentCipherName): Buffer {
  return randomBytes(contentCipher(name).ivLength);
}

/**
 * Reads a contentEncryptionAlgorithm. Unknown or retired algorithms (RC2, single
 * DES) fail with UNSUPPORTED_ALG; impossible parameters with MALFORMED.
 */
export function parseContentEncryptionAlgorithm(alg: AlgorithmIdentifier): ContentEncryptionParameters {
  const c = BY_OID.get(alg.oid);
  if (!c) {
    if (alg.oid === OID.rc2_cbc) throw new KakitomeError('UNSUPPORTED_ALG', 'RC2 content encryption is not supported: RC2 is broken (RFC 8551 drops it); ask the sender to use AES.');
    if (alg.oid === '1.3.14.3.2.7') throw new KakitomeError('UNSUPPORTED_ALG', 'Single-DES content encryption is not supported: 56-bit DES is broken; ask the sender to use AES.');
    throw new KakitomeError('UNSUPPORTED_ALG', `Unknown content-encryption algorithm ${alg.oid}.`);
  }
  const p = alg.parameters;
  if (!p) malformed(`${c.name} parameters are missing`);
  if (c.name.endsWith('-gcm')) {
    if (p.tag !== Tag.SEQUENCE) malformed('GCMParameters is not a SEQUENCE');
    const f = p.fields('GCMParameters');
    const nonce = readOctetString(f.expect(Tag.OCTET_STRING, 'aes-nonce'), 'aes-nonce');
    const icv = f.optional(Tag.INTEGER);
    f.end();
    const tagLength = icv ? readSmallInt(icv, 'aes-ICVlen') : 12;
    // RFC 5084 3.2 allows any nonce length but recommends 12, and every peer sends 12:
    // other lengths would go through GHASH-derived IVs nobody tests, so we refuse them.
    if (nonce.length !== 12) throw new KakitomeError('UNSUPPORTED_ALG', `AES-GCM nonce of ${nonce.length} bytes: only 12-byte nonces are accepted.`);
    // RFC 5084 3.2: AES-GCM-ICVlen ::= INTEGER (12 | 13 | 14 | 15 | 16).
    if (tagLength < 12 || tagLength > 16) malformed(`AES-GCM ICV length ${tagLength} is outside 12..16`);
    return { cipher: c, iv: nonce, tagLength };
  }
  if (p.tag !== Tag.OCTET_STRING) malformed(`${c.name} IV is not an OCTET STRING`);
  const iv = p.value;
  if (iv.length !== c.ivLength) malformed(`${c.name} IV/nonce must be ${c.ivLength} bytes, found ${iv.length}`);
  return { cipher: c, iv, tagLength: c.aead ? 16 : 0 };
}

export interface SealedContent {
  ciphertext: Buffer;
  /** The AEAD tag (mac of AuthEnvelopedData); empty for CBC. */
  tag: Buffer;
}

/** Encrypts the whole content (non-streaming path). `aad` is used by AEAD ciphers only. */
export function encryptContent(p: ContentEncryptionParameters, key: Uint8Array, plaintext: Uint8Array, aad?: Uint8Array): SealedContent {
  if (p.cipher.legacy) throw new KakitomeError('UNSUPPORTED_ALG', `${p.cipher.name} is accepted for decryption only.`);
  if (key.length !== p.cipher.keyLength) throw new KakitomeError('INVALID_ARGUMENT', `${p.cipher.name} needs a ${p.cipher.keyLength}-byte key.`);
  if (p.cipher.aead) {
    const cipher = createCipheriv(p.cipher.name as 'aes-256-gcm', secretKey(key), p.iv, { authTagLength: p.tagLength });
    if (aad && aad.length) cipher.setAAD(aad);
    const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return { ciphertext, tag: cipher.getAuthTag() };
  }
  const cipher = createCipheriv(p.cipher.name, secretKey(key), p.iv);
  return { ciphertext: Buffer.concat([cipher.update(plaintext), cipher.final()]), tag: Buffer.alloc(0) };
}

/**
 * Decrypts the whole content. Every failure (wrong key length, tag mismatch, bad
 * CBC padding, truncated ciphertext) throws the one DecryptionError. For AEAD
 * ciphers nothing is returned before final() has checked the tag (the brief:
 * no plaintext before the tag verifies).
 */
export function decryptContent(p: ContentEncryptionParameters, key: Uint8Array, ciphertext: Uint8Array, tag?: Uint8Array, aad?: Uint8Array): Buffer {
  if (key.length !== p.cipher.keyLength) throw new DecryptionError();
  try {
    if (p.cipher.aead) {
      if (!tag || tag.length !== p.tagLength) throw new DecryptionError();
      const d = createDecipheriv(p.cipher.name as 'aes-256-gcm', secretKey(key), p.iv, { authTagLength: p.tagLength });
      d.setAuthTag(tag);
      if (aad && aad.length) d.setAAD(aad);
      const head = d.update(ciphertext);
      const tail = d.final(); // throws on a bad tag: `head` is dropped unseen
      return tail.length ? Buffer.concat([head, tail]) : head;
    }
    // X.690/RFC 5652 6.3: CBC ciphertext is a whole number of blocks and never empty (padding adds 1..block bytes).
    const block = p.cipher.ivLength;
    if (ciphertext.length === 0 || ciphertext.length % block !== 0) throw new DecryptionError();
    const d = createDecipheriv(p.cipher.name, secretKey(key), p.iv);
    const head = d.update(ciphertext);
    const tail = d.final(); // checks the PKCS#7 padding
    return tail.length ? Buffer.concat([head, tail]) : head;
  } catch {
    throw new DecryptionError();
  }
}
