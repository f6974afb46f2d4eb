/**
 * Signs a whole RFC 5322 message (RFC 8551 section 3.5). The message header
 * fields stay outside; the content (Content-* fields and body) is made 7-bit and
 * canonical, optionally given RFC 9788 header protection (hp="clear"), and signed
 * as multipart/signed (default) or opaque application/pkcs7-mime.
 *
 * @example
 *   const signed = signMessage(eml, { signers: [{ certificate, key }] });
 */
import { KakitomeError } from '../errors.ts';
import { resolveLimits, type Limits } from '../limits.ts';
import { buildEntity, buildEntityFromChunks, entityChunks, joinChunks, type HeaderInput } from '../mime/build-entity.ts';
import type { SignerOptions } from '../cms/signed-data/sign.ts';
import type { Certificate } from '../x509/certificate.ts';
import { prepareContent } from './prepare-content.ts';
import { signEntityChunks, type EntityChunks, type EntityParts } from './sign-entity.ts';
import { splitMessage, type SplitMessage } from './split-message.ts';

export interface SignMessageOptions {
  signers: SignerOptions[];
  /** Extra certificates to carry (intermediates). */
  certificates?: Certificate[];
  /** Default false: multipart/signed, readable without S/MIME support. */
  opaque?: boolean;
  /** RFC 9788 header protection; default true. */
  headerProtection?: boolean;
  now?: Date;
  limits?: Partial<Limits>;
}

/** Message header fields with the MIME entity's own header fields joined underneath (MIME-Version first). */
export function assembleMessage(messageHeaders: readonly HeaderInput[], entity: EntityParts | EntityChunks): Buffer {
  const headers = messageHeadersOver(messageHeaders, entity);
  return Array.isArray(entity.body) ? buildEntityFromChunks(headers, entity.body) : buildEntity(headers, entity.body);
}

function messageHeadersOver(messageHeaders: readonly HeaderInput[], entity: EntityParts | EntityChunks): HeaderInput[] {
  return [...messageHeaders, ['MIME-Version', '1.0'], ...entity.headers];
}

export function signMessage(message: Uint8Array, options: SignMessageOptions): Buffer {
  if (!options.signers || options.signers.length === 0) throw new KakitomeError('INVALID_ARGUMENT', 'signMessage needs at least one signer.');
  return signSplitMessage(splitMessage(message, resolveLimits(options.limits)), options);
}

/**
 * signMessage for a message its caller already split (splitMessage, with the same
 * limits): the signing service reads the From address from the same parse
 * (readSigningAddressOf) instead of reading the header section a second time.
 */
export function signSplitMessage(split: SplitMessage, options: SignMessageOptions): Buffer {
  return joinChunks(signSplitMessageChunks(split, options));
}

/**
 * signSplitMessage's message in pieces (ASCII strings and bytes, see joinChunks), for a
 * caller that writes it into a buffer of its own: a batch chunk's mbox output, so the
 * signed message is not first assembled in a buffer of its own and copied.
 */
export function signSplitMessageChunks(split: SplitMessage, options: SignMessageOptions): Array<Uint8Array | string> {
  if (!options.signers || options.signers.length === 0) throw new KakitomeError('INVALID_ARGUMENT', 'signMessage needs at least one signer.');
  const limits = resolveLimits(options.limits);
  const content = prepareContent(split, options.headerProtection === false ? {} : { headerProtection: 'clear' }, limits);
  // Absent options stay undefined (no spread of a conditional object per message).
  const signed = signEntityChunks(content, { signers: options.signers, now: options.now, certificates: options.certificates, opaque: options.opaque });
  return entityChunks(messageHeadersOver(split.messageHeaders, signed), signed.body);
}
