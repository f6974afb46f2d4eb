/**
 * Decrypts a whole message (application/pkcs7-mime enveloped-data or
 * authEnveloped-data, also inside an outer signature) and verifies any signature
 * inside. Only the message body is decrypted; encrypted parts elsewhere are
 * reported and left closed. Any decryption problem throws the one DecryptionError
 * (DECRYPT_FAILED); a key that matches no recipient throws NOT_RECIPIENT.
 *
 * CBC-encrypted (enveloped-data) content is opened only under a trusted signature
 * of the From address made inside the encryption (a validator is needed for that);
 * otherwise, and for every failure past its decryption, the one
 * UnauthenticatedContentError (UNAUTH_ENC) is thrown, unless `allowUnauthenticated`
 * (see unauthenticated-content.ts). When a signature covering the decrypted message
 * fails (verdict 'invalid'), the message is withheld: `message` is empty.
 *
 * Forwarded encrypted mail (an encrypted message/rfc822 part of the decrypted
 * message) is decrypted with the same keys only to be judged on its own, by the same
 * rules (the EFAIL rule included): its verdict is in `verdict.attachedMessages`, and
 * its decrypted form, when that may be released, is that entry's `decrypted` (only
 * the encryption removed, signatures inside kept). `message` keeps the attachment
 * exactly as received, still encrypted: the outer message is never changed. A
 * gateway that re-encrypts forwarded mail uses decryptAttachedMessages, which puts
 * the decrypted forms in place, and passes only the keys of the person forwarding
 * (who could read it anyway): with an organisation's every key, re-encrypting
 * attachments for outside recipients would decrypt any intercepted message someone
 * is tricked into forwarding.
 *
 * @example
 *   const { message, verdict } = await decryptMessage(eml, { keys: [{ key, certificate }], validateSigner });
 */
import type { DecryptKey } from '../cms/enveloped-data/decrypt.ts';
import type { CmsInput } from '../cms/content-info.ts';
import { KakitomeError } from '../errors.ts';
import { openMessage } from './open-message.ts';
import { WITHHELD_INVALID } from './unauthenticated-content.ts';
import type { MessageVerdict } from './verdict.ts';
import type { VerifyMessageOptions } from './verify-message.ts';

export interface DecryptMessageOptions extends VerifyMessageOptions {
  /** The keys to try. Either these or `findKeys`. */
  keys?: DecryptKey[];
  /**
   * Instead of `keys`: asked for the keys once the message's first encryption layer
   * is reached, with its ContentInfo (open-message.ts). A message without an
   * encryption layer is then opened and judged as verifyMessage would (with a
   * warning that nothing was decrypted), and with no keys found its body stays
   * encrypted: a caller that must tell these apart watches what it was asked.
   */
  findKeys?: (envelope: CmsInput) => Promise<DecryptKey[]>;
  /**
   * Open CBC content that no trusted signature of the sender covers (EFAIL: it may
   * have been altered on the way). Default false: refused with UNAUTH_ENC. The verdict
   * flags what was opened so (encryption.authenticatedBy 'none', UNAUTH_ENC).
   */
  allowUnauthenticated?: boolean;
}

export async function decryptMessage(message: Uint8Array, options: DecryptMessageOptions): Promise<{ message: Buffer; verdict: MessageVerdict }> {
  if ((!options.keys || options.keys.length === 0) && !options.findKeys) throw new KakitomeError('INVALID_ARGUMENT', 'decryptMessage needs at least one key, or findKeys.');
  const verdict = await openMessage(message, options);
  if (!verdict.layers.some((l) => l.decrypted === true)) verdict.warnings.push('The message body was not encrypted; nothing was decrypted.');
  if (verdict.status === 'invalid') {
    verdict.warnings.push(WITHHELD_INVALID);
    return { message: Buffer.alloc(0), verdict: { ...verdict, output: Buffer.alloc(0) } };
  }
  return { message: verdict.output, verdict };
}
