/**
 * EFAIL (issue 9, item 3; Poddebniak et al., USENIX Security 2018): what the
 * message readers (openMessage, decryptMessageStream) do with content decrypted
 * from CBC (EnvelopedData). CBC has no integrity check: whoever knows one plaintext
 * block (every S/MIME entity starts "Content-Type: ") can splice ciphertext blocks
 * so that the recipient decrypts bytes of the attacker's choice into the message.
 *
 * - Such content is released only when a trusted signature of the From address,
 *   made inside the (last) CBC layer, covers all of it (judgeMessage decides:
 *   Judgement.unauthenticatedContent). Otherwise it is refused with
 *   UnauthenticatedContentError (UNAUTH_ENC), unless the caller allows
 *   unauthenticated content; the verdict then says so.
 * - No oracle: from the content decryption on, every failure (bad padding, a
 *   damaged key surfacing as bad padding or garbage, unreadable MIME or ASN.1, a
 *   failing inner signature, no signature at all) is that same error, so a gateway
 *   answering for it tells whoever altered the ciphertext nothing about the
 *   plaintext. With allowUnauthenticated each is the one DecryptionError instead.
 * - Protected header fields (RFC 9788) are taken from CBC plaintext only under a
 *   signature made inside the CBC layer, and dropped again when the content is
 *   released unauthenticated.
 *
 * Public facts keep their own codes: no recipient matching our keys (NOT_RECIPIENT),
 * a refused algorithm or a malformed envelope (the ciphertext's wrapper), limits
 * on the envelope itself.
 */
import { DecryptionError, KakitomeError, UnauthenticatedContentError } from '../errors.ts';
import type { EncryptionReport } from './verdict.ts';

/** The error to throw for `e`, raised while CBC content was being decrypted or read. */
export function unauthenticatedFailure(e: unknown, allow: boolean): unknown {
  // A bug or an I/O error is no verdict about the content: it passes unchanged.
  if (!(e instanceof KakitomeError)) return e;
  return allow ? new DecryptionError() : new UnauthenticatedContentError();
}

/** What vouches for decrypted content, given whether a CBC layer was decrypted and whether it stayed unauthenticated. */
export function contentAuthentication(cbc: boolean, unauthenticated: boolean): EncryptionReport['authenticatedBy'] {
  return !cbc ? 'aead' : unauthenticated ? 'none' : 'signature';
}

export const IGNORED_PROTECTED_HEADERS =
  'Protected header fields (RFC 9788) inside the CBC-encrypted content were not used: no trusted signature covers them, so the outer header fields are shown (UNAUTH_ENC).';

/** Added to the summary of a verdict whose unauthenticated content was released. */
export const RELEASED_UNAUTHENTICATED = ' It was opened only because unauthenticated content was allowed: what it shows may have been altered.';

/** Withheld content: a signature covering the decrypted message fails. */
export const WITHHELD_INVALID = 'The decrypted message was withheld: a signature covering it is not valid.';
