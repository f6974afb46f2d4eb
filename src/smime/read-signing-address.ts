/**
 * The address a service may sign a message as: the one From mailbox a reader
 * sees. A front end that signs for others (the signing service, the gateway)
 * chooses the identity by it, so a message a careful verifier would refuse must
 * not get a signature at all (issue 10): it would lend a real signature to a
 * sender the reader does not see.
 *
 * The rules are the reader's (read-displayed-sender.ts, judge-message.ts), applied
 * before signing:
 * - two From (or Sender) fields: MALFORMED;
 * - a From field naming no mailbox, or several: IDENTITY_MISMATCH (the signer's
 *   certificate names one address; RFC 5322 3.6.2 would need a Sender, and
 *   readers show the first or all);
 * - anything that can show another address than the mailbox (a display name or
 *   comment carrying an address, look-alike or invisible characters, bidi
 *   controls, an encoded-word in the address): IDENTITY_MISMATCH, with the
 *   reader's sentence.
 */
import { KakitomeError } from '../errors.ts';
import { resolveLimits, type Limits } from '../limits.ts';
import type { HeaderField } from '../mime/entity.ts';
import { parseHeaderSection } from '../mime/parse-header-section.ts';
import { readDisplayedSender } from './read-displayed-sender.ts';

export function readSigningAddress(message: Uint8Array, limits?: Partial<Limits>): string {
  const buf = Buffer.isBuffer(message) ? message : Buffer.from(message.buffer, message.byteOffset, message.byteLength);
  return readSigningAddressOf(parseHeaderSection(buf, 0, buf.length, resolveLimits(limits), true).fields);
}

/** The same rules over the message's header fields as parsed already (splitMessage's root.headers). */
export function readSigningAddressOf(fields: readonly HeaderField[]): string {
  const shown = readDisplayedSender(fields);
  if (shown.from.length !== 1) {
    throw new KakitomeError('IDENTITY_MISMATCH', shown.from.length === 0
      ? 'The message has no From address to sign as: it is not signed.'
      : `The From field names ${shown.from.length} mailboxes (${shown.from.join(', ')}); a signature vouches for one sender, so it is not signed.`);
  }
  if (shown.misleading.length) {
    throw new KakitomeError('IDENTITY_MISMATCH', `${shown.misleading.map((m) => m.message).join(' ')} A verifier would refuse it, so it is not signed.`);
  }
  return shown.from[0]!;
}
