/**
 * Opens a message layer by layer and computes its verdict: the shared core of
 * verifyMessage and decryptMessage (brief, "Safe verification").
 *
 * Only the message body is unwrapped: a layer is opened only when it IS the body
 * (or the whole content of the layer above it). Signed parts found anywhere else
 * are verified and reported as covering only themselves (status 'partial', code
 * PARTIAL_SIGNED); encrypted parts found anywhere else are never decrypted, so
 * decrypted text is never shown merged with unencrypted siblings (EFAIL).
 */
import { OID } from '../asn1/oids.ts';
import { KakitomeError, isKakitomeError, malformed, type ErrorCode } from '../errors.ts';
import { resolveLimits, type Limits } from '../limits.ts';
import { encodeContentInfo, parseContentInfo } from '../cms/content-info.ts';
import { verifySignedData, type SignedDataVerification } from '../cms/signed-data/verify.ts';
import { decryptData, type DecryptKey } from '../cms/enveloped-data/decrypt.ts';
import { decompressData } from '../cms/compressed-data.ts';
import { buildEntity, type HeaderInput } from '../mime/build-entity.ts';
import { canonicalizeLfOnly } from '../mime/canonicalize-line-breaks.ts';
import { decodeBody } from '../mime/decode-body.ts';
import { getHeaderFields, walkEntities, type MimeEntity } from '../mime/entity.ts';
import { parseAddresses } from '../mime/parse-addresses.ts';
import { parseEntity } from '../mime/parse-entity.ts';
import type { IdentityReport, SignerValidator } from '../pki/types.ts';
import type { Certificate } from '../x509/certificate.ts';
import { classifyEntity } from './classify-entity.ts';
import { PROTECTED_HEADER_NAMES, isContentField, readProtectedHeaders } from './header-protection.ts';
import { readCertsOnly } from './read-certs-only.ts';
import { splitMessage } from './split-message.ts';
import type { EncryptionReport, LayerReport, MessageVerdict, SignerVerdict, VerdictStatus } from './verdict.ts';

export interface OpenMessageOptions {
  /** Absent: chain "not checked" and the verdict can never be 'trusted'. */
  validateSigner?: SignerValidator;
  /** Extra candidates for signer certificates (never anchors). */
  certificates?: Certificate[];
  now?: Date;
  limits?: Partial<Limits>;
  /** Keys for decrypting the message body; absent: encrypted bodies are reported, not opened. */
  keys?: DecryptKey[];
}

const SIGNATURE_TYPES = new Set(['application/pkcs7-signature', 'application/x-pkcs7-signature']);

/** RFC 8551 section 3.2.2 smime-type values (lower-cased), by CMS content type. */
const SMIME_TYPE_OF: Record<string, string> = {
  [OID.signedData]: 'signed-data',
  [OID.envelopedData]: 'enveloped-data',
  [OID.authEnvelopedData]: 'authenveloped-data',
  [OID.compressedData]: 'compressed-data',
};

interface PendingSigner {
  verification: SignedDataVerification;
  index: number;
  scope: 'message' | 'part';
}

/** Parses decrypted or encapsulated content as a MIME entity (canonical line breaks: peers store LF-only content too). */
function parseInner(content: Buffer, limits: Limits, warnings: string[]): MimeEntity {
  const canonical = canonicalizeLfOnly(content);
  if (canonical !== content) warnings.push('The protected content used bare LF line breaks; read as CRLF.');
  return parseEntity(canonical, { limits });
}

function identityWithoutValidator(cert: Certificate | undefined, from: string[]): IdentityReport {
  const certificateAddresses = cert ? cert.emailAddresses.map((a) => a.toLowerCase()) : [];
  if (from.length === 0) return { status: 'unknown', certificateAddresses, message: 'The message has no From address to compare with the signer.' };
  const hit = from.find((f) => certificateAddresses.includes(f));
  if (hit) return { status: 'match', from: hit, certificateAddresses, message: `The signer's certificate is issued to ${hit}, the From address.` };
  return {
    status: 'mismatch',
    from: from[0]!,
    certificateAddresses,
    message: `The From address ${from[0]} is not in the signer's certificate (${certificateAddresses.join(', ') || 'no e-mail address'}).`,
  };
}

export async function openMessage(message: Uint8Array, options: OpenMessageOptions = {}): Promise<MessageVerdict> {
  const limits = resolveLimits(options.limits);
  const split = splitMessage(message, limits);
  const root = split.root;
  const warnings = [...split.warnings];
  const layers: LayerReport[] = [];
  const pending: PendingSigner[] = [];
  let encryption: EncryptionReport | undefined;
  let decrypted = false;
  let unauthenticatedLayer = false;
  let certsOnly: Certificate[] | undefined;
  /** A signature over the body that is unusable as a whole (no signer, two readings): the verdict is 'invalid'. */
  let bodyFailure: { code: ErrorCode; message: string } | undefined;
  const verifyOptions = {
    ...(options.certificates ? { certificates: options.certificates } : {}),
    ...(options.now ? { now: options.now } : {}),
    limits,
  };

  let current = root;
  /** CMS content nested directly in CMS (RFC 3274 section 1.1: e.g. SignedData over CompressedData), without a MIME wrapper. */
  let nestedCms: { der: Buffer; mediaType: string } | undefined;
  for (let depth = 0; ; depth++) {
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
      const layerWarnings = [...k.warnings, ...v.warnings];
      for (const e of walkEntities(signedPart)) {
        if (e.transferEncoding === '8bit' || e.transferEncoding === 'binary') {
          layerWarnings.push('The signed content contains 8-bit or binary parts; relays may alter them and break the signature (RFC 8551 section 3.1.2).');
          break;
        }
      }
      layers.push({ kind: 'signed', form: 'detached', mediaType, coversBody: true, warnings: layerWarnings });
      v.signers.forEach((_, i) => pending.push({ verification: v, index: i, scope: 'message' }));
      current = signedPart;
      continue;
    }
    const der = nestedCms ? nestedCms.der : decodeBody(current);
    nestedCms = undefined;
    const ci = parseContentInfo(der, limits);
    /** The next layer: MIME for id-data content, CMS for a nested CMS content type. */
    const next = (contentType: string, content: Buffer): MimeEntity => {
      if (contentType === OID.data) return parseInner(content, limits, warnings);
      if (!SMIME_TYPE_OF[contentType]) throw new KakitomeError('UNSUPPORTED_ALG', `Encapsulated content type ${contentType} is not supported.`);
      nestedCms = { der: encodeContentInfo(contentType, content), mediaType: `${mediaType} (nested CMS)` };
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
        v = verifySignedData(der, verifyOptions);
      } catch (e) {
        if (!isKakitomeError(e, 'NO_SIGNERS')) throw e;
        // RFC 8551 section 3.6: certs-only carries certificates and signs nothing.
        certsOnly = readCertsOnly(der, limits);
        layers.push({ kind: 'certs-only', form: 'opaque', mediaType, coversBody: false, warnings: [...k.warnings] });
        break;
      }
      layers.push({ kind: 'signed', form: 'opaque', mediaType, coversBody: true, warnings: [...k.warnings, ...v.warnings] });
      v.signers.forEach((_, i) => pending.push({ verification: v, index: i, scope: 'message' }));
      current = next(v.contentType, v.content);
    } else if (ci.contentType === OID.envelopedData || ci.contentType === OID.authEnvelopedData) {
      const kind = ci.contentType === OID.envelopedData ? 'enveloped' : 'auth-enveloped';
      if (!options.keys || options.keys.length === 0) {
        layers.push({ kind, form: 'opaque', mediaType, coversBody: true, decrypted: false, warnings: [...k.warnings] });
        warnings.push('The message body is encrypted and was not decrypted (no key given).');
        break;
      }
      const d = decryptData(der, { keys: options.keys, limits });
      decrypted = true;
      if (!d.authenticated) unauthenticatedLayer = true;
      encryption = { contentEncryption: d.contentEncryption, authenticated: d.authenticated, recipients: d.recipients, keyManagement: d.recipient.keyManagement };
      layers.push({ kind, form: 'opaque', mediaType, coversBody: true, decrypted: true, warnings: [...k.warnings, ...d.warnings] });
      current = next(d.contentType, d.content);
    } else if (ci.contentType === OID.compressedData) {
      const c = decompressData(der, { limits });
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
        const v = verifySignedData(decodeBody(signaturePart), { ...verifyOptions, detachedContent: signedPart.raw });
        layers.push({ kind: 'signed', form: 'detached', mediaType: e.contentType.mediaType, coversBody: false, warnings: [...k.warnings] });
        v.signers.forEach((_, i) => pending.push({ verification: v, index: i, scope: 'part' }));
        continue;
      }
      const der = decodeBody(e);
      const ci = parseContentInfo(der, limits);
      if (ci.contentType === OID.signedData) {
        const v = verifySignedData(der, verifyOptions);
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

  const protectedHeaders = payload === root ? undefined : readProtectedHeaders(payload, split.messageHeaders, decrypted);
  if (protectedHeaders) for (const m of protectedHeaders.mismatches) warnings.push(`Protected header mismatch: ${m}`);

  // The sender to compare with signers: the protected From when present (RFC 9788), else the outer one.
  const fromSource = protectedHeaders ? payload.headers : split.messageHeaders;
  const from = getHeaderFields({ headers: fromSource }, 'from').flatMap((f) => parseAddresses(f.value));
  const senderAddr = getHeaderFields({ headers: fromSource }, 'sender').flatMap((f) => parseAddresses(f.value))[0];

  const signers: SignerVerdict[] = [];
  for (const p of pending) {
    const s = p.verification.signers[p.index]!;
    const cert = s.certificate;
    const base = {
      subject: cert ? cert.subjectText : 'unknown signer (certificate not found)',
      ...(cert?.emailAddresses[0] ? { email: cert.emailAddresses[0] } : {}),
      ...(s.signingTime ? { signingTime: s.signingTime } : {}),
      algorithms: { digest: s.digestAlgorithm, signature: s.signatureAlgorithm },
      scope: p.scope,
      ...(cert ? { certificate: cert } : {}),
    };
    if (s.status !== 'valid' || !cert) {
      signers.push({ ...base, status: 'invalid', code: s.code ?? 'BAD_SIG', message: s.message, identity: identityWithoutValidator(cert, from) });
      continue;
    }
    let code: ErrorCode | undefined;
    let message = s.message;
    if (options.validateSigner) {
      const trust = await options.validateSigner({
        certificate: cert,
        carried: p.verification.certificates,
        carriedCrls: p.verification.crls,
        ...(s.signingTime ? { signingTime: s.signingTime } : {}),
        from,
        ...(senderAddr ? { sender: senderAddr } : {}),
        usage: 'signing',
      });
      if (trust.status !== 'trusted') code = trust.code ?? 'CERT_UNTRUSTED';
      else if (trust.identity.status === 'mismatch') code = 'IDENTITY_MISMATCH';
      message = `${s.message} ${trust.message}`;
      signers.push({ ...base, status: 'valid', code, message, trust, identity: trust.identity });
    } else {
      const identity = identityWithoutValidator(cert, from);
      if (identity.status === 'mismatch') code = 'IDENTITY_MISMATCH';
      signers.push({ ...base, status: 'valid', code, message: `${message} The certificate chain was not checked.`, identity });
    }
  }

  const bodySigners = signers.filter((s) => s.scope === 'message');
  const partSigners = signers.filter((s) => s.scope === 'part');
  let status: VerdictStatus;
  let code: ErrorCode | undefined;
  let summary: string;
  const who = (s: SignerVerdict): string => s.email ?? s.subject;
  const failed = bodySigners.find((s) => s.status === 'invalid');
  const flaggedStructure = layers.some((l) => l.coversBody && l.kind === 'signed' && l.warnings.some((w) => /no protocol parameter|does not match its S\/MIME/.test(w)));
  const fromMismatch = protectedHeaders?.mismatches.some((m) => /^Outer (from|sender) /.test(m)) ?? false;
  if (bodyFailure) {
    status = 'invalid';
    code = bodyFailure.code;
    summary = `The message's signature is NOT usable (${bodyFailure.code}): ${bodyFailure.message}`;
  } else if (failed) {
    status = 'invalid';
    code = failed.code;
    summary = `The signature by ${who(failed)} is NOT valid (${failed.code}): the message may have been altered. ${failed.message}`;
  } else if (bodySigners.length === 0) {
    if (partSigners.length > 0) {
      status = 'partial';
      code = 'PARTIAL_SIGNED';
      summary = 'Only part of this message is signed; the rest (including what you see around the signed part) is not covered by any signature.';
    } else {
      status = 'unsigned';
      code = undefined;
      summary = certsOnly ? `The message carries ${certsOnly.length} certificate(s) and no signature.` : layers.some((l) => l.decrypted === false) ? 'The message is encrypted and was not decrypted.' : 'The message is not signed.';
    }
  } else {
    const problem = bodySigners.find((s) => s.code !== undefined);
    const allTrusted = options.validateSigner !== undefined && bodySigners.every((s) => s.trust?.status === 'trusted' && s.identity.status === 'match');
    if (problem) {
      status = 'valid-untrusted';
      code = problem.code;
      summary = code === 'IDENTITY_MISMATCH'
        ? `The signature is valid, but the signer ${who(problem)} is not the sender shown in From.`
        : `The signature by ${who(problem)} is valid, but the certificate is not trusted (${code}).`;
    } else if (allTrusted && !flaggedStructure && !fromMismatch) {
      status = 'trusted';
      code = undefined;
      summary = `Signed by ${bodySigners.map(who).join(', ')}: the signature is valid and the certificate is trusted.`;
    } else {
      status = 'valid-untrusted';
      code = fromMismatch ? 'IDENTITY_MISMATCH' : undefined;
      summary = fromMismatch
        ? 'The signature is valid, but the visible From differs from the signed (protected) From.'
        : options.validateSigner
          ? `The signature by ${bodySigners.map(who).join(', ')} is valid, but the message structure was flagged: see warnings.`
          : `The signature by ${bodySigners.map(who).join(', ')} is valid; the certificate chain was not checked.`;
    }
    if (partSigners.length > 0) warnings.push('Signed parts inside the signed message were verified too; they are covered by the outer signature as well.');
  }
  if (unauthenticatedLayer) {
    // Brief: CBC content is unauthenticated unless a valid signature from the sender covers it.
    const covered = bodySigners.some((s) => s.status === 'valid' && s.identity.status === 'match');
    if (!covered) {
      warnings.push('The content was encrypted with an unauthenticated cipher (CBC) and no valid signature from the sender covers it: it may have been modified in transit (UNAUTH_ENC).');
      if (status === 'unsigned') {
        code = 'UNAUTH_ENC';
        summary = 'The message was decrypted, but it is not signed and its encryption (CBC) does not detect tampering.';
      }
    }
  }
  if (protectedHeaders && protectedHeaders.mismatches.length > 0 && status !== 'invalid') summary += ' Some visible headers differ from the protected ones.';

  // Output: the payload under the message headers; with header protection, the protected fields replace the outer ones.
  let output: Buffer;
  if (payload === root) output = root.raw;
  else {
    const outer: HeaderInput[] = protectedHeaders ? split.messageHeaders.filter((h) => !PROTECTED_HEADER_NAMES.includes(h.name.toLowerCase())) : [...split.messageHeaders];
    const inner: HeaderInput[] = protectedHeaders ? payload.headers.filter((h) => PROTECTED_HEADER_NAMES.includes(h.name.toLowerCase())) : [];
    const content = payload.headers.filter((h) => isContentField(h.name) && h.name.toLowerCase() !== 'mime-version');
    output = buildEntity([...outer, ...inner, ['MIME-Version', '1.0'], ...content], payload.body);
  }
  for (const l of layers) for (const w of l.warnings) if (!warnings.includes(w)) warnings.push(w);
  return {
    status,
    code,
    summary,
    layers,
    signers,
    ...(encryption ? { encryption } : {}),
    ...(protectedHeaders ? { protectedHeaders } : {}),
    warnings,
    output,
  };
}
