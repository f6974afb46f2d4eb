/**
 * Decrypts a whole message (application/pkcs7-mime enveloped-data or
 * authEnveloped-data, also inside an outer signature) and verifies any signature
 * inside. Only the message body is decrypted; encrypted parts elsewhere are
 * reported and left closed. Any decryption problem throws the one DecryptionError
 * (DECRYPT_FAILED); a key that matches no recipient throws NOT_RECIPIENT.
 *
 * @example
 *   const { message, verdict } = await decryptMessage(eml, { keys: [{ key, certificate }] });
 */
import type { DecryptKey } from '../cms/enveloped-data/decrypt.ts';
import { KakitomeError } from '../errors.ts';
import { openMessage } from './open-message.ts';
import type { MessageVerdict } from './verdict.ts';
import type { VerifyMessageOptions } from './verify-message.ts';

export interface DecryptMessageOptions extends VerifyMessageOptions {
  keys: DecryptKey[];
}

export async function decryptMessage(message: Uint8Array, options: DecryptMessageOptions): Promise<{ message: Buffer; verdict: MessageVerdict }> {
  if (!options.keys || options.keys.length === 0) throw new KakitomeError('INVALID_ARGUMENT', 'decryptMessage needs at least one key.');
  const verdict = await openMessage(message, options);
  if (!verdict.layers.some((l) => l.decrypted === true)) verdict.warnings.push('The message body was not encrypted; nothing was decrypted.');
  return { message: verdict.output, verdict };
}
