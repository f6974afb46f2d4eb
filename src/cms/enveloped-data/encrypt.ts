/**
 * Encrypting content for a set of recipients (RFC 5652 6, RFC 5083, RFC 5084, RFC 8103).
 * AEAD ciphers produce AuthEnvelopedData, CBC ciphers EnvelopedData; the output is
 * a DER ContentInfo. One random content-encryption key per message, wrapped once
 * per recipient.
 */
import { randomBytes } from 'node:crypto';
import { sequence, integer, oid, setOf, octetString, implicit, retag } from '../../asn1/der.ts';
import { OID } from '../../asn1/oids.ts';
import { KakitomeError } from '../../errors.ts';
import { DEFAULT_LIMITS } from '../../limits.ts';
import { encodeAttribute } from '../attributes.ts';
import { encodeContentInfo } from '../content-info.ts';
import { contentCipher, encodeContentEncryptionAlgorithm, encryptContent, generateContentIv, SENT_TAG_LENGTH } from '../algorithms/content-encryption.ts';
import { buildRecipientInfos, envelopedDataVersion } from '../recipients/recipient-info.ts';
import type { RecipientOptions } from '../recipients/recipient-options.ts';

export type { RecipientOptions } from '../recipients/recipient-options.ts';
export { buildRecipientInfos } from '../recipients/recipient-info.ts';
export { encodeContentEncryptionAlgorithm, generateContentIv } from '../algorithms/content-encryption.ts';

export type ContentEncryptionName = 'aes-128-gcm' | 'aes-192-gcm' | 'aes-256-gcm' | 'chacha20-poly1305' | 'aes-128-cbc' | 'aes-192-cbc' | 'aes-256-cbc';

export interface EncryptOptions {
  /** One envelope for all (up to limits.maxRecipients). */
  recipients: RecipientOptions[];
  /** Default 'aes-256-gcm'. */
  contentEncryption?: ContentEncryptionName;
  /** Default id-data. */
  contentType?: string;
}

const SENDABLE = new Set<string>(['aes-128-gcm', 'aes-192-gcm', 'aes-256-gcm', 'chacha20-poly1305', 'aes-128-cbc', 'aes-192-cbc', 'aes-256-cbc']);

/** Checks the options shared by the in-memory and streaming encryptors. */
export function checkEncryptOptions(options: EncryptOptions): { name: ContentEncryptionName; contentType: string } {
  const name = options.contentEncryption ?? 'aes-256-gcm';
  if (!SENDABLE.has(name)) throw new KakitomeError('UNSUPPORTED_ALG', `Content encryption "${name}" cannot be used for sending.`);
  const n = options.recipients.length;
  if (n === 0) throw new KakitomeError('INVALID_ARGUMENT', 'At least one recipient is needed.');
  if (n > DEFAULT_LIMITS.maxRecipients) throw new KakitomeError('LIMIT', `${n} recipients exceed the limit of ${DEFAULT_LIMITS.maxRecipients}.`);
  return { name, contentType: options.contentType ?? OID.data };
}

/**
 * RFC 5083 2.1: authAttrs MUST be present when the content type is not id-data.
 * We then carry just the content-type attribute (RFC 5652 11.1), whose DER SET is the AAD.
 */
export function buildAuthAttributes(contentType: string): Buffer | undefined {
  return contentType === OID.data ? undefined : setOf([encodeAttribute(OID.contentType, oid(contentType))]);
}

/**
 * Encrypts `content` for every recipient. Returns a DER ContentInfo holding
 * AuthEnvelopedData (AES-GCM, ChaCha20-Poly1305) or EnvelopedData (AES-CBC).
 *
 * @example
 *   const der = encryptData(Buffer.from('hello'), { recipients: [{ certificate: bob }] });
 */
export function encryptData(content: Uint8Array, options: EncryptOptions): Buffer {
  const { name, contentType } = checkEncryptOptions(options);
  const cipher = contentCipher(name);
  const cek = randomBytes(cipher.keyLength);
  const iv = generateContentIv(name);
  try {
    const recipientInfos = buildRecipientInfos(cek, options.recipients);
    // RFC 5652 6.1: RecipientInfos is a SET OF; DER sorts it.
    const ris = setOf(recipientInfos);
    const algId = encodeContentEncryptionAlgorithm(name, iv);
    const params = { cipher, iv, tagLength: cipher.aead ? SENT_TAG_LENGTH : 0 };
    if (cipher.aead) {
      const authAttrs = buildAuthAttributes(contentType);
      const sealed = encryptContent(params, cek, content, authAttrs);
      const eci = sequence(oid(contentType), algId, implicit(0, false, sealed.ciphertext));
      const body = authAttrs
        ? sequence(integer(0), ris, eci, retag(authAttrs, 0xa1), octetString(sealed.tag))
        : sequence(integer(0), ris, eci, octetString(sealed.tag));
      return encodeContentInfo(OID.authEnvelopedData, body);
    }
    const sealed = encryptContent(params, cek, content);
    const eci = sequence(oid(contentType), algId, implicit(0, false, sealed.ciphertext));
    return encodeContentInfo(OID.envelopedData, sequence(integer(envelopedDataVersion(recipientInfos)), ris, eci));
  } finally {
    cek.fill(0);
  }
}
