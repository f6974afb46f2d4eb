/**
 * Opens a message layer by layer and computes its verdict: the shared core of
 * verifyMessage and decryptMessage (brief, "Safe verification").
 *
 * Only the message body is unwrapped: a layer is opened only when it IS the body
 * (or the whole content of the layer above it). Signed parts found anywhere else
 * are verified and reported as covering only themselves (status 'partial', code
 * PARTIAL_SIGNED); encrypted parts found anywhere else are never decrypted, so
 * decrypted text is never shown merged with unencrypted siblings (EFAIL). Attached
 * messages (message/rfc822: forwarded mail) are opened as messages of their own and
 * reported in `attachedMessages`, never in this verdict (open-attached-messages.ts).
 *
 * Content decrypted from CBC is opened only under a trusted signature of the From
 * address made inside the encryption, and every failure past its decryption is the
 * one UnauthenticatedContentError (unauthenticated-content.ts), unless the caller
 * allows unauthenticated content.
 */
import { OID } from '../asn1/oids.ts';
import { DecryptionError, KakitomeError, UnauthenticatedContentError, isKakitomeError, malformed, type ErrorCode } from '../errors.ts';
import { resolveLimits, type Limits } from '../limits.ts';
import { parseContentInfo, readNestedContentInfo, type CmsInput, type ContentInfo } from '../cms/content-info.ts';
import { verifySignedData, type SignedDataVerification } from '../cms/signed-data/verify.ts';
import { decryptData, type DecryptKey, type DecryptResult } from '../cms/enveloped-data/decrypt.ts';
import { decompressData, decompressionBudget } from '../cms/compressed-data.ts';
import { buildEntity, type HeaderInput } from '../mime/build-entity.ts';
import { canonicalizeLfOnly } from '../mime/canonicalize-line-breaks.ts';
import { decodeBody } from '../mime/decode-body.ts';
import { walkEntities, type MimeEntity } from '../mime/entity.ts';
import { readContentEntity } from '../mime/read-content-entity.ts';
import { checkMultipartEncodings } from '../mime/check-multipart-encoding.ts';
import type { SignerValidator } from '../pki/types.ts';
import type { Certificate } from '../x509/certificate.ts';
import { classifyEntity } from './classify-entity.ts';
import { collectProtectedHeaders, headerProtectionMode, isContentField, isProtectedField } from './header-protection.ts';
import { openAttachedMessages, type AttachedMessageContext, type OpenedMessage } from './open-attached-messages.ts';
import { readCertsOnly } from './read-certs-only.ts';
import { splitMessage } from './split-message.ts';
import type { EncryptionReport, LayerReport, MessageVerdict } from './verdict.ts';
import { judgeMessage, type PendingSigner } from './judge-message.ts';
import { signedContentProblem } from './signed-content-problem.ts';
import { IGNORED_PROTECTED_HEADERS, RELEASED_UNAUTHENTICATED, contentAuthentication, unauthenticatedFailure } from './unauthenticated-content.ts';

export interface OpenMessageOptions {
  /** Absent: chain "not checked" and the verdict can never be 'trusted'. */
  validateSigner?: SignerValidator;
  /** Untrusted extra certificates (as openssl -certfile): candidates for the signer certificate a message leaves out, and intermediates; never trust anchors. */
  certificates?: Certificate[];
  now?: Date;
  /** Accepted clock difference for a signing time in the future (default 5 minutes); later is ATTR_INVALID. */
  clockSkewMs?: number;
  limits?: Partial<Limits>;
  /**
   * Accept legacy message forms, flagged in the verdict: a signature without signed
   * attributes (Netscape-era clients, some AS2 receipts), checked over the content
   * itself; read in memory only (the streaming readers refuse it, ATTR_INVALID). The
   * validator's allowLegacy accepts legacy algorithms (SHA-1, short RSA keys); the
   * CLI's --allow-legacy sets both. Default false.
   */
  allowLegacy?: boolean;
  /** Keys for decrypting the message body; absent: encrypted bodies are reported, not opened. */
  keys?: DecryptKey[];
  /**
   * Instead of `keys`: asked once, when the message's first encryption layer is
   * reached, with its ContentInfo, for the keys to try there and in every layer and
   * attached message after it: e.g. a key store's keys for its RecipientInfos
   * (find-envelope-keys.ts), without the caller finding and parsing the envelope
   * first (decrypt-message-stream.ts's findKeys does the same for a stream). Never
   * asked for a message without an encryption layer, nor for one only a message
   * attached to it has. An empty answer is as no keys.
   */
  findKeys?: (envelope: CmsInput) => Promise<DecryptKey[]>;
  /**
   * Open CBC-encrypted (enveloped-data) content that no trusted signature of the From
   * address, made inside the encryption, covers. Default false: such content is
   * refused with UnauthenticatedContentError (UNAUTH_ENC), because anyone on its way
   * could have altered it (EFAIL). When true it is opened and flagged
   * (encryption.authenticatedBy 'none', an UNAUTH_ENC warning), protected header
   * fields inside it are not used, and a failure past its decryption is the one
   * DecryptionError.
   */
  allowUnauthenticated?: boolean;
}

const SIGNATURE_TYPES = new Set(['application/pkcs7-signature', 'application/x-pkcs7-signature']);

/** RFC 8551 section 3.2.2 smime-type values (lower-cased), by CMS content type. */
const SMIME_TYPE_OF: Record<string, string> = {
  [OID.signedData]: 'signed-data',
  [OID.envelopedData]: 'enveloped-data',
  [OID.authEnvelopedData]: 'authenveloped-data',
  [OID.compressedData]: 'compressed-data',
};

/** Said when decrypted or encapsulated content had no MIME header (read-content-entity.ts); decrypt-message-stream.ts says it too. */
export const HEADERLESS_WARNING = 'The protected content has no MIME header (as `openssl cms` writes it without -text); it was read as text/plain (RFC 2045 section 5.2).';

/** Parses decrypted or encapsulated content as a MIME entity (canonical line breaks: peers store LF-only content too; no header: text/plain). */
function parseInner(content: Buffer, limits: Limits, warnings: string[]): MimeEntity {
  const canonical = canonicalizeLfOnly(content);
  if (canonical !== content) warnings.push('The protected content used bare LF line breaks; read as CRLF.');
  const { entity, headerless } = readContentEntity(canonical, limits);
  if (headerless) warnings.push(HEADERLESS_WARNING);
  return entity;
}

export async function openMessage(message: Uint8Array, options: OpenMessageOptions = {}): Promise<MessageVerdict> {
  return (await openWithin(message, options, { depth: 0, opened: { count: 0 }, budget: decompressionBudget(resolveLimits(options.limits)) })).verdict;
}

/** openMessage for the message given or one attached to it (open-attached-messages.ts). */
async function openWithin(message: Uint8Array, options: OpenMessageOptions, context: AttachedMessageContext): Promise<OpenedMessage> {
  const cbc = { started: false };
  try {
    return await openLayers(message, options, cbc, context);
  } catch (e) {
    // From a CBC content decryption on, one failure for every cause: no padding or format oracle.
    throw cbc.started ? unauthenticatedFailure(e, options.allowUnauthenticated === true) : e;
  }
}

/** openMessage; sets `cbc.started` once CBC content is being decrypted. */
async function openLayers(message: Uint8Array, options: OpenMessageOptions, cbc: { started: boolean }, context: AttachedMessageContext): Promise<OpenedMessage> {
  const limits = resolveLimits(options.limits);
  const split = splitMessage(message, limits);
  const root = split.root;
  const warnings = [...split.warnings];
  const layers: LayerReport[] = [];
  const pending: PendingSigner[] = [];
  let encryption: EncryptionReport | undefined;
  let decrypted = false;
  /** The entity an encryption layer decrypted to, last one (with the signatures inside it): for an attached message's decrypted form. */
  let decryptedEntity: MimeEntity | undefined;
  /** Index in `pending` of the first signer inside the last CBC layer decrypted (judgeMessage's rule). */
  let unauthenticatedFrom: number | undefined;
  /** A body-covering signed layer was entered inside the last CBC layer. */
  let signedSinceCbc = false;
  let certsOnly: Certificate[] | undefined;
  /** A signature over the body that is unusable as a whole (no signer, two readings): the verdict is 'invalid'. */
  let bodyFailure: { code: ErrorCode; message: string } | undefined;
  const verifyOptions = {
    ...(options.certificates ? { certificates: options.certificates } : {}),
    ...(options.now ? { now: options.now } : {}),
    ...(options.clockSkewMs !== undefined ? { clockSkewMs: options.clockSkewMs } : {}),
    ...(options.allowLegacy ? { allowLegacy: true } : {}),
    // The caller's own partial limits (resolved again inside; passing the resolved object would copy it per call).
    ...(options.limits ? { limits: options.limits } : {}),
  };

  let current = root;
  /** CMS content nested directly in CMS (RFC 3274 section 1.1: e.g. SignedData over CompressedData), without a MIME wrapper, read in place. */
  let nestedCms: { ci: ContentInfo; mediaType: string } | undefined;
  /** One decompression budget for the whole message (and the messages attached to it), every CompressedData layer drawing on it. */
  const budget = context.budget;
  /**
   * Every entity carrying an hp parameter on the way in, with whether an encryption
   * layer had been removed above it. Each one is compared with the headers the layer
   * outside it establishes: a message signed with hp="clear" and then encrypted with
   * hp="cipher" legitimately shows "[...]" outside and the real Subject inside.
   * `signed`: a signature over the body lies outside it, so it covers its header fields.
   * Inside CBC content, only those under a signature made inside it can be used (EFAIL).
   */
  const hpLayers: Array<{ entity: MimeEntity; encrypted: boolean; signed: boolean; insideCbc: boolean; signedInsideCbc: boolean }> = [];
  for (let depth = 0; ; depth++) {
    if (!nestedCms && current !== root && headerProtectionMode(current) && hpLayers.at(-1)?.entity !== current) {
      hpLayers.push({ entity: current, encrypted: decrypted, signed: layers.some((l) => l.kind === 'signed' && l.coversBody), insideCbc: unauthenticatedFrom !== undefined, signedInsideCbc: signedSinceCbc });
    }
    const k: ReturnType<typeof classifyEntity> = nestedCms ? { kind: 'pkcs7-mime', smimeType: undefined, warnings: [] } : classifyEntity(current);
    if (k.kind === 'none') break;
    if (k.kind === 'foreign-signed') {
      warnings.push(`The message is signed with ${k.protocol}, which is not S/MIME; that signature was not checked.`);
      break;
    }
    if (depth >= limits.maxLayers) throw new KakitomeError('LIMIT', `More than ${limits.maxLayers} nested S/MIME layers.`);
    const mediaType = nestedCms ? nestedCms.mediaType : current.contentType.mediaType;
    if (k.kind === 'multipart-signed') {
      // RFC 1847 section 2.1: exactly two body parts, the content and the signature.
      if (current.children.length !== 2) malformed(`multipart/signed with ${current.children.length} parts (exactly 2 required)`);
      const [signedPart, signaturePart] = current.children as [MimeEntity, MimeEntity];
      if (!SIGNATURE_TYPES.has(signaturePart.contentType.mediaType)) malformed(`multipart/signed second part is ${signaturePart.contentType.mediaType}, not a PKCS #7 signature`);
      // Two readings of the multipart/signed or of a multipart in its content (RFC 2045 section 6.4).
      checkMultipartEncodings(current);
      let v: SignedDataVerification;
      try {
        v = verifySignedData(decodeBody(signaturePart), { ...verifyOptions, detachedContent: signedPart.raw });
      } catch (e) {
        // Brief: "a signature with no signer is no signature"; encapsulated content in a detached
        // signature is two readings of one message. Both make the message's signature invalid.
        if (!isKakitomeError(e, 'NO_SIGNERS') && !isKakitomeError(e, 'AMBIGUOUS_CONTENT')) throw e;
        bodyFailure = { code: e.code, message: e.message };
        layers.push({ kind: 'signed', form: 'detached', mediaType, coversBody: true, warnings: [...k.warnings, e.message] });
        current = signedPart;
        break;
      }
      const notMessage = signedContentProblem(v.contentType, 'detached');
      if (notMessage) {
        bodyFailure = notMessage;
        layers.push({ kind: 'signed', form: 'detached', mediaType, coversBody: true, warnings: [...k.warnings, notMessage.message] });
        current = signedPart;
        break;
      }
      const layerWarnings = [...k.warnings, ...v.warnings];
      for (const e of walkEntities(signedPart)) {
        if (e.transferEncoding === '8bit' || e.transferEncoding === 'binary') {
          layerWarnings.push('The signed content contains 8-bit or binary parts; relays may alter them and break the signature (RFC 8551 section 3.1.2).');
          break;
        }
      }
      layers.push({ kind: 'signed', form: 'detached', mediaType, coversBody: true, warnings: layerWarnings });
      v.signers.forEach((_, i) => pending.push({ verification: v, index: i, scope: 'message' }));
      signedSinceCbc = unauthenticatedFrom !== undefined;
      current = signedPart;
      continue;
    }
    const ci = nestedCms ? nestedCms.ci : parseContentInfo(decodeBody(current), limits);
    nestedCms = undefined;
    /** The next layer: MIME for id-data content, CMS for a nested CMS content type. */
    const next = (contentType: string, content: Buffer): MimeEntity => {
      if (contentType === OID.data) {
        // Signed, decrypted or decompressed content: a multipart in it with two readings is refused.
        const inner = parseInner(content, limits, warnings);
        checkMultipartEncodings(inner);
        return inner;
      }
      if (!SMIME_TYPE_OF[contentType]) throw new KakitomeError('UNSUPPORTED_ALG', `Encapsulated content type ${contentType} is not supported.`);
      nestedCms = { ci: readNestedContentInfo(contentType, content, limits), mediaType: `${mediaType} (nested CMS)` };
      return current;
    };
    const declared = k.smimeType;
    const actual = SMIME_TYPE_OF[ci.contentType];
    // RFC 8551 section 3.2.2: smime-type names the CMS type; the CMS content decides, a disagreement is reported.
    if (declared && actual && declared !== actual && !(declared === 'certs-only' && actual === 'signed-data')) {
      k.warnings.push(`smime-type=${declared} but the content is ${actual}; read as ${actual}.`);
    }
    if (ci.contentType === OID.signedData) {
      let v: SignedDataVerification;
      try {
        v = verifySignedData(ci, verifyOptions);
      } catch (e) {
        if (!isKakitomeError(e, 'NO_SIGNERS')) throw e;
        // RFC 8551 section 3.6: certs-only carries certificates and signs nothing.
        certsOnly = readCertsOnly(ci, limits);
        layers.push({ kind: 'certs-only', form: 'opaque', mediaType, coversBody: false, warnings: [...k.warnings] });
        break;
      }
      const notMessage = signedContentProblem(v.contentType, 'opaque');
      if (notMessage) {
        bodyFailure = notMessage;
        layers.push({ kind: 'signed', form: 'opaque', mediaType, coversBody: true, warnings: [...k.warnings, notMessage.message] });
        break;
      }
      layers.push({ kind: 'signed', form: 'opaque', mediaType, coversBody: true, warnings: [...k.warnings, ...v.warnings] });
      v.signers.forEach((_, i) => pending.push({ verification: v, index: i, scope: 'message' }));
      signedSinceCbc = unauthenticatedFrom !== undefined;
      current = next(v.contentType, v.content);
    } else if (ci.contentType === OID.envelopedData || ci.contentType === OID.authEnvelopedData) {
      const kind = ci.contentType === OID.envelopedData ? 'enveloped' : 'auth-enveloped';
      if (!options.keys?.length && options.findKeys && context.depth === 0) {
        // Asked once: the keys found serve the layers and attached messages after this one.
        const { findKeys, ...rest } = options;
        options = { ...rest, keys: await findKeys(ci) };
      }
      if (!options.keys || options.keys.length === 0) {
        layers.push({ kind, form: 'opaque', mediaType, coversBody: true, decrypted: false, warnings: [...k.warnings] });
        warnings.push('The message body is encrypted and was not decrypted (no key given).');
        break;
      }
      let d: DecryptResult;
      try {
        d = decryptData(ci, { keys: options.keys, limits });
      } catch (e) {
        // EnvelopedData is CBC (parse.ts refuses AEAD in it): its decryption failure is no different from a refusal.
        if (kind === 'enveloped' && e instanceof DecryptionError) cbc.started = true;
        throw e;
      }
      decrypted = true;
      if (!d.authenticated) {
        cbc.started = true;
        unauthenticatedFrom = pending.length;
        signedSinceCbc = false;
      }
      encryption = { contentEncryption: d.contentEncryption, authenticated: d.authenticated, authenticatedBy: d.authenticated ? 'aead' : 'none', recipients: d.recipients, keyManagement: d.recipient.keyManagement };
      layers.push({ kind, form: 'opaque', mediaType, coversBody: true, decrypted: true, warnings: [...k.warnings, ...d.warnings] });
      current = next(d.contentType, d.content);
      decryptedEntity = nestedCms ? undefined : current;
    } else if (ci.contentType === OID.compressedData) {
      const c = decompressData(ci, { limits, budget });
      layers.push({ kind: 'compressed', form: 'opaque', mediaType, coversBody: true, warnings: [...k.warnings] });
      current = next(c.contentType, c.content);
    } else {
      throw new KakitomeError('UNSUPPORTED_ALG', `S/MIME body of CMS content type ${ci.contentType} is not supported.`);
    }
  }
  const payload = current;

  // Parts inside the payload: signed ones vouch only for themselves; encrypted ones stay closed.
  let nested = 0;
  for (const e of walkEntities(payload)) {
    if (e === payload) continue;
    const k = classifyEntity(e);
    if (k.kind === 'none' || k.kind === 'foreign-signed') continue;
    if (++nested > limits.maxLayers * 4) throw new KakitomeError('LIMIT', 'Too many S/MIME parts inside the message.');
    try {
      if (k.kind === 'multipart-signed') {
        const [signedPart, signaturePart] = e.children;
        if (e.children.length !== 2 || !signedPart || !signaturePart) malformed('multipart/signed part without exactly two parts');
        checkMultipartEncodings(e);
        const v = verifySignedData(decodeBody(signaturePart), { ...verifyOptions, detachedContent: signedPart.raw });
        refuseNonMessage(v, 'detached');
        layers.push({ kind: 'signed', form: 'detached', mediaType: e.contentType.mediaType, coversBody: false, warnings: [...k.warnings] });
        v.signers.forEach((_, i) => pending.push({ verification: v, index: i, scope: 'part' }));
        continue;
      }
      const der = decodeBody(e);
      const ci = parseContentInfo(der, limits);
      if (ci.contentType === OID.signedData) {
        const v = verifySignedData(der, verifyOptions);
        refuseNonMessage(v, 'opaque');
        layers.push({ kind: 'signed', form: 'opaque', mediaType: e.contentType.mediaType, coversBody: false, warnings: [...k.warnings] });
        v.signers.forEach((_, i) => pending.push({ verification: v, index: i, scope: 'part' }));
      } else if (ci.contentType === OID.envelopedData || ci.contentType === OID.authEnvelopedData) {
        layers.push({ kind: ci.contentType === OID.envelopedData ? 'enveloped' : 'auth-enveloped', form: 'opaque', mediaType: e.contentType.mediaType, coversBody: false, decrypted: false, warnings: [] });
        warnings.push('An encrypted part inside the message was not decrypted: only an encrypted message body is opened, so decrypted text is never mixed with unencrypted parts.');
      }
    } catch (err) {
      if (!(err instanceof KakitomeError)) throw err;
      warnings.push(`An S/MIME part inside the message could not be read (${err.code}): ${err.message}`);
    }
  }

  // RFC 9788 protected header fields; inside CBC content, only under a signature made in there (EFAIL).
  const usableHp = hpLayers.filter((h) => !h.insideCbc || h.signedInsideCbc);
  let found = payload !== root ? collectProtectedHeaders(usableHp, split.messageHeaders) : undefined;
  let ignoredHp = usableHp.length < hpLayers.length;
  const protectedHeadersSigned = found?.layer.signed ?? false;

  const fromHeaders = found ? found.layer.entity.headers : split.messageHeaders;
  const judgement = await judgeMessage({
    layers,
    pending,
    fromHeaders,
    outerHeaders: split.messageHeaders,
    ...(found ? { protectedHeaders: found.report, protectedHeadersSigned } : {}),
    ...(certsOnly ? { certsOnly } : {}),
    ...(bodyFailure ? { bodyFailure } : {}),
    ...(unauthenticatedFrom !== undefined ? { unauthenticatedFrom } : {}),
    ...(options.validateSigner ? { validateSigner: options.validateSigner } : {}),
    ...(options.certificates?.length ? { certificates: options.certificates } : {}),
    warnings,
  });
  const { status, code, signers, unsignedHeaders } = judgement;
  let summary = judgement.summary;
  if (judgement.unauthenticatedContent) {
    if (!options.allowUnauthenticated) throw new UnauthenticatedContentError();
    // Released as asked: flagged, and no header field taken from inside the CBC content.
    summary += RELEASED_UNAUTHENTICATED;
    if (hpLayers.some((h) => h.insideCbc)) {
      found = payload !== root ? collectProtectedHeaders(hpLayers.filter((h) => !h.insideCbc), split.messageHeaders) : undefined;
      ignoredHp = true;
    }
  }
  if (encryption) encryption.authenticatedBy = contentAuthentication(unauthenticatedFrom !== undefined, judgement.unauthenticatedContent);
  if (ignoredHp) warnings.push(IGNORED_PROTECTED_HEADERS);
  const protectedHeaders = found?.report;
  if (protectedHeaders) for (const m of protectedHeaders.mismatches) warnings.push(`Protected header mismatch: ${m}`);

  // Forwarded mail: each attached message judged on its own, only inside content that is released
  // (decryptMessage withholds decrypted content under a failing signature; refused CBC content threw above).
  const attachedMessages = decrypted && status === 'invalid' ? [] : await openAttachedMessages(payload, limits, context, (bytes, inner) => openWithin(bytes, options, inner), warnings);

  // Output: the payload under the message headers; with header protection, the protected fields replace the outer ones.
  const underMessageHeaders = (entity: MimeEntity): Buffer => {
    const outer: HeaderInput[] = protectedHeaders ? split.messageHeaders.filter((h) => !isProtectedField(h.name)) : [...split.messageHeaders];
    const inner: HeaderInput[] = found ? found.layer.entity.headers.filter((h) => isProtectedField(h.name)) : [];
    const content = entity.headers.filter((h) => isContentField(h.name) && h.name.toLowerCase() !== 'mime-version');
    return buildEntity([...outer, ...inner, ['MIME-Version', '1.0'], ...content], entity.body);
  };
  const output = payload === root ? root.raw : underMessageHeaders(payload);
  // An attached message's decrypted form keeps the signatures made inside the encryption, for a new recipient to verify.
  const decryptedForm = context.depth > 0 && decryptedEntity && status !== 'invalid' ? (decryptedEntity === payload ? output : underMessageHeaders(decryptedEntity)) : undefined;
  for (const l of layers) for (const w of l.warnings) if (!warnings.includes(w)) warnings.push(w);
  const verdict: MessageVerdict = {
    status,
    code,
    summary,
    layers,
    signers,
    ...(encryption ? { encryption } : {}),
    ...(protectedHeaders ? { protectedHeaders } : {}),
    ...(unsignedHeaders ? { unsignedHeaders } : {}),
    warnings,
    ...(attachedMessages.length > 0 ? { attachedMessages } : {}),
    output,
  };
  return { verdict, ...(decryptedForm ? { decryptedForm } : {}) };
}

/** A signed part whose content is not a message is unreadable as a part (the caller reports it). */
function refuseNonMessage(v: SignedDataVerification, form: 'detached' | 'opaque'): void {
  const problem = signedContentProblem(v.contentType, form);
  if (problem) throw new KakitomeError(problem.code, problem.message);
}
