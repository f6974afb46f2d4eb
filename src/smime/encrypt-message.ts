/**
 * Encrypts a whole message (RFC 8551 section 3.3): application/pkcs7-mime with
 * smime-type=authEnveloped-data (AES-GCM, ChaCha20-Poly1305; RFC 8551 section
 * 3.4) or enveloped-data (AES-CBC), one envelope for every recipient. Optionally
 * signs first (sign-then-encrypt) and again outside (triple wrap, RFC 2634 section
 * 1.1). With header protection (default), the protected fields travel inside
 * (hp="cipher") and stay readable outside (RFC 9788 hcp_no_confidentiality), as
 * clients without header protection need them; `hideSubject` puts "[...]" in the
 * outer Subject (hcp_baseline) and the real one at the top of the body (the RFC 9788
 * Legacy Display Element, legacy-display.ts).
 *
 * @example
 *   const out = encryptMessage(eml, { recipients: [{ certificate: bob }, { certificate: me }] });
 */
import { encryptData, type ContentEncryptionName, type RecipientOptions } from '../cms/enveloped-data/encrypt.ts';
import { KakitomeError } from '../errors.ts';
import { resolveLimits, type Limits } from '../limits.ts';
import { buildEntity, type HeaderInput } from '../mime/build-entity.ts';
import { applyHeaderConfidentiality, subjectOf } from './header-protection.ts';
import { legacyDisplayLines, withLegacyDisplay } from './legacy-display.ts';
import { prepareContent } from './prepare-content.ts';
import { base64Lines, signEntity, signEntityParts, type EntityParts } from './sign-entity.ts';
import { assembleMessage, type SignMessageOptions } from './sign-message.ts';
import { splitMessage, type SplitMessage } from './split-message.ts';

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
  /**
   * Hide the Subject outside (RFC 9788 hcp_baseline: "[...]", Comments and Keywords
   * dropped) and show it at the top of each main body part (the Legacy Display
   * Element), for clients that do not read protected headers. Default false: the
   * header fields stay readable outside. Needs header protection.
   */
  hideSubject?: boolean;
  /** Appended to: notes such as a main body part that could not carry the legacy display. */
  warnings?: string[];
  now?: Date;
  limits?: Partial<Limits>;
}

export function encryptMessage(message: Uint8Array, options: EncryptMessageOptions): Buffer {
  if (!options.recipients || options.recipients.length === 0) throw new KakitomeError('INVALID_ARGUMENT', 'encryptMessage needs at least one recipient.');
  if (options.tripleWrap && !options.sign) throw new KakitomeError('INVALID_ARGUMENT', 'tripleWrap needs sign options.');
  if (options.hideSubject && options.headerProtection === false) throw new KakitomeError('INVALID_ARGUMENT', 'hideSubject needs header protection: the hidden Subject travels in the protected header fields.');
  const limits = resolveLimits(options.limits);
  let split = splitMessage(message, limits);
  const protect = options.headerProtection !== false;
  let outer: HeaderInput[] = split.messageHeaders;
  let payload: Buffer;
  if (protect) {
    if (options.hideSubject) split = withLegacyDisplayMessage(split, limits, options.warnings ?? []);
    const c = applyHeaderConfidentiality(split.messageHeaders, options.hideSubject ? 'baseline' : 'none');
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

/** The message with the Subject's legacy display in its main body parts (split again), or as it was when none could take it. */
function withLegacyDisplayMessage(split: SplitMessage, limits: Limits, warnings: string[]): SplitMessage {
  const lines = legacyDisplayLines(subjectOf(split.messageHeaders));
  if (lines.length === 0) return split;
  const r = withLegacyDisplay(split.root, split.contentHeaders, lines, warnings);
  return r ? splitMessage(buildEntity([...split.messageHeaders, ...r.headers], r.body), limits) : split;
}
