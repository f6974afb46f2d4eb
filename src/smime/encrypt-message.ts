/**
 * Encrypts a whole message (RFC 8551 section 3.3): application/pkcs7-mime with
 * smime-type=authEnveloped-data (AES-GCM, ChaCha20-Poly1305; RFC 8551 section
 * 3.4) or enveloped-data (AES-CBC), one envelope for every recipient. Optionally
 * signs first (sign-then-encrypt) and again outside (triple wrap, RFC 2634 section
 * 1.1). With header protection (default), the protected fields travel inside
 * (hp="cipher") and the outer Subject becomes "[...]" (RFC 9788 hcp_baseline).
 *
 * @example
 *   const out = encryptMessage(eml, { recipients: [{ certificate: bob }, { certificate: me }] });
 */
import { encryptData, type ContentEncryptionName, type RecipientOptions } from '../cms/enveloped-data/encrypt.ts';
import { KakitomeError } from '../errors.ts';
import { resolveLimits, type Limits } from '../limits.ts';
import { buildEntity, type HeaderInput } from '../mime/build-entity.ts';
import { applyHeaderConfidentiality } from './header-protection.ts';
import { prepareContent } from './prepare-content.ts';
import { base64Lines, signEntity, signEntityParts, type EntityParts } from './sign-entity.ts';
import { assembleMessage, type SignMessageOptions } from './sign-message.ts';
import { splitMessage } from './split-message.ts';

export interface EncryptMessageOptions {
  recipients: RecipientOptions[];
  /** Default aes-256-gcm (authEnveloped-data). */
  contentEncryption?: ContentEncryptionName;
  /** Sign the content before encrypting it. */
  sign?: SignMessageOptions;
  /** With `sign`: also sign the encrypted entity (RFC 2634 triple wrap). */
  tripleWrap?: boolean;
  /** RFC 9788 header protection; default true. */
  headerProtection?: boolean;
  now?: Date;
  limits?: Partial<Limits>;
}

export function encryptMessage(message: Uint8Array, options: EncryptMessageOptions): Buffer {
  if (!options.recipients || options.recipients.length === 0) throw new KakitomeError('INVALID_ARGUMENT', 'encryptMessage needs at least one recipient.');
  if (options.tripleWrap && !options.sign) throw new KakitomeError('INVALID_ARGUMENT', 'tripleWrap needs sign options.');
  const limits = resolveLimits(options.limits);
  const split = splitMessage(message, limits);
  const protect = options.headerProtection !== false;
  let outer: HeaderInput[] = split.messageHeaders;
  let payload: Buffer;
  if (protect) {
    const c = applyHeaderConfidentiality(split.messageHeaders);
    outer = c.outer;
    payload = prepareContent(split, { headerProtection: 'cipher', hpOuter: c.hpOuter }, limits);
  } else {
    payload = prepareContent(split, {}, limits);
  }
  const now = options.now ?? options.sign?.now;
  const signOptions = (s: SignMessageOptions) => ({
    signers: s.signers,
    ...(s.certificates ? { certificates: s.certificates } : {}),
    ...(s.opaque ? { opaque: true } : {}),
    ...(now ? { now } : {}),
  });
  if (options.sign) payload = signEntity(payload, signOptions(options.sign));
  const name = options.contentEncryption ?? 'aes-256-gcm';
  const der = encryptData(payload, { recipients: options.recipients, contentEncryption: name });
  const smimeType = name.endsWith('-cbc') ? 'enveloped-data' : 'authEnveloped-data';
  let entity: EntityParts = {
    headers: [
      ['Content-Type', `application/pkcs7-mime; smime-type=${smimeType}; name=smime.p7m`],
      ['Content-Transfer-Encoding', 'base64'],
      ['Content-Disposition', 'attachment; filename=smime.p7m'],
    ],
    body: base64Lines(der),
  };
  if (options.tripleWrap && options.sign) entity = signEntityParts(buildEntity(entity.headers, entity.body), signOptions(options.sign));
  return assembleMessage(outer, entity);
}
