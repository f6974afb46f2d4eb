/**
 * Decrypting EnvelopedData and AuthEnvelopedData held in memory.
 *
 * Every cryptographic failure ends in the same DecryptionError (code
 * DECRYPT_FAILED, one message): wrong key, bad RSA padding, OAEP decoding,
 * key-wrap integrity, CBC padding, AEAD tag, wrong key length, truncated
 * ciphertext. Only public facts are reported distinctly: malformed structure
 * (MALFORMED), refused algorithms (UNSUPPORTED_ALG), no matching recipient
 * (NOT_RECIPIENT), limits (LIMIT).
 */
import { collectSegments } from '../../asn1/ber.ts';
import { DecryptionError } from '../../errors.ts';
import { resolveLimits, type Limits } from '../../limits.ts';
import { decryptContent } from '../algorithms/content-encryption.ts';
import type { CmsIdentifier } from '../identifier.ts';
import type { DecryptKey, KeyManagement } from '../recipients/recipient-options.ts';
import type { CmsInput } from '../content-info.ts';
import { parseEnvelopeFromContentInfo, type ParsedEnvelope } from './parse.ts';
import { contentKeyCandidates } from './recover-content-key.ts';

export type { DecryptKey, KeyManagement } from '../recipients/recipient-options.ts';
export { parseEnvelope, type ParsedEnvelope } from './parse.ts';
export { recoverContentKey, recoverContentKeyDetailed, matchRecipients, type RecoveredContentKey } from './recover-content-key.ts';

export interface DecryptOptions {
  keys: DecryptKey[];
  limits?: Partial<Limits>;
}

export interface DecryptResult {
  content: Buffer;
  contentType: string;
  /** 'aes-256-gcm', 'aes-128-cbc', 'des-ede3-cbc', ... */
  contentEncryption: string;
  /** True for AuthEnvelopedData (AEAD); false for EnvelopedData (CBC: unauthenticated). */
  authenticated: boolean;
  recipient: { index: number; identifier: CmsIdentifier | undefined; keyManagement: KeyManagement };
  warnings: string[];
  /** How many RecipientInfos the envelope had. */
  recipients: number;
}

/** The encrypted content octets, joining BER segments. */
export function readEncryptedContent(parsed: ParsedEnvelope, limits?: Partial<Limits>): Uint8Array {
  const t = parsed.encryptedContent;
  // A detached encryptedContent cannot be decrypted from this input alone.
  if (!t) throw new DecryptionError();
  if (!t.constructed) return t.value;
  const parts: Uint8Array[] = [];
  collectSegments(t, parts, resolveLimits(limits).maxSegments);
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

/**
 * Decrypts a DER/BER ContentInfo (EnvelopedData or AuthEnvelopedData), or one already read.
 * CBC content (EnvelopedData, `authenticated: false`) is returned as decrypted: nothing
 * vouches for it, so mail goes through decryptMessage, which opens it only under a
 * trusted signature of its sender (EFAIL, docs/security.md section 3).
 *
 * @example
 *   const { content, authenticated } = decryptData(der, { keys: [{ key, certificate }] });
 */
export function decryptData(input: CmsInput, options: DecryptOptions): DecryptResult {
  const parsed = parseEnvelopeFromContentInfo(input, options.limits);
  const p = parsed.contentEncryption;
  let ciphertext: Uint8Array | undefined; // read after matching, so NOT_RECIPIENT comes first
  const warnings: string[] = [];
  if (p.cipher.legacy) warnings.push('legacy 3DES content encryption: ask the sender to use AES');
  for (const k of contentKeyCandidates(parsed, options.keys, p.cipher.keyLength)) {
    try {
      ciphertext ??= readEncryptedContent(parsed, options.limits);
      const content = decryptContent(p, k.cek, ciphertext, parsed.mac, parsed.aad);
      return {
        content,
        contentType: parsed.contentType,
        contentEncryption: p.cipher.name,
        authenticated: parsed.type === 'authEnvelopedData',
        recipient: k.recipient,
        warnings: [...warnings, ...k.warnings],
        recipients: parsed.recipients.length,
      };
    } catch (e) {
      // Try the next candidate; the caller learns only the final DecryptionError.
      if (!(e instanceof DecryptionError)) throw e;
    } finally {
      k.cek.fill(0);
    }
  }
  throw new DecryptionError();
}
