/**
 * Verifying SignedData (RFC 5652 5.4, 5.6; RFC 8551 2.5). Cryptography only: a
 * "valid" signer means the signature verifies with the certificate's key over signed
 * attributes that bind this content. Whether the certificate is trusted is the PKI
 * layer's decision (src/pki), so verdicts say "signature valid", never "trusted".
 *
 * Thrown (the input is not a usable SignedData at all): MALFORMED, LIMIT (also when a
 * signer's attributes exceed a limit), NO_SIGNERS, AMBIGUOUS_CONTENT (eContent and
 * detachedContent both given, or neither). A SignerInfo whose inner fields are
 * malformed (PSS parameters, say) is reported per signer with MALFORMED.
 * Reported per signer (every signer is always reported; one failure fails the whole):
 *   ATTR_INVALID     signed attributes missing (RFC 8551 2.5 requires them), not DER,
 *                    duplicated, multi-valued, wrongly typed, contentType != eContentType,
 *                    ESS signingCertificate(V2) naming another certificate, a signingTime
 *                    later than now plus the clock skew (default 5 minutes)
 *   DIGEST_MISMATCH  messageDigest of the wrong length or not the content's digest
 *   BAD_SIG          signature too long for the key, or not verifying
 *   UNSUPPORTED_ALG  unknown algorithm, or algorithm inconsistent with the key/digest
 *   WEAK_ALG         MD5 (SHA-1 and short RSA keys are accepted here with a warning; the
 *                    algorithm policy in src/pki refuses them by default, given algorithmOids)
 *   CERT_UNTRUSTED   the signer's certificate is neither in the message nor in
 *                    options.certificates, so the signature cannot be checked at all
 *                    (the message says so; no chain was evaluated)
 * Countersignatures (RFC 5652 11.4, unsigned counterSignature attributes) are checked
 * with the same code over the signer's signature value and listed in
 * `countersignatures`, with the same codes; they never change the signer's status.
 *
 * Signed attributes are mandatory: we never verify a signature directly over eContent.
 * That closes the confusion where the bytes of a signed-attribute set are presented
 * as content (or the reverse): content is only ever bound through messageDigest.
 */
import { hash } from 'node:crypto';
import { OID } from '../../asn1/oids.ts';
import { decode, readOctets } from '../../asn1/ber.ts';
import { KakitomeError, isKakitomeError, malformed, type ErrorCode } from '../../errors.ts';
import { resolveLimits, type Limits } from '../../limits.ts';
import { toContentInfo, type CmsInput } from '../content-info.ts';
import { parseAttributes, type Attribute } from '../attributes.ts';
import { identifierMatches, describeIdentifier, type CmsIdentifier } from '../identifier.ts';
import type { SmimeCapability } from '../capabilities.ts';
import type { Certificate } from '../../x509/certificate.ts';
import { parseDigestAlgorithm, computeDigest, type DigestAlgorithm, type DigestName } from '../algorithms/digest.ts';
import { resolveVerificationScheme, signatureAlgorithmName } from '../algorithms/signature.ts';
import { checkSignedAttributes, checkSigningCertificate, digestMatches, type CheckedSignedAttributes } from './signed-attributes.ts';
import { parseSignedData, parseSignerInfo, type ParsedSignedData, type ParsedSignerInfo } from './parse.ts';
import { certificateNames } from '../../x509/certificate-names.ts';

export interface VerifyOptions {
  /** The content of a detached signature. */
  detachedContent?: Uint8Array;
  /** Extra candidates for finding signer certificates (never trust anchors). */
  certificates?: Certificate[];
  limits?: Partial<Limits>;
  /** Clock for the signingTime checks; default now. */
  now?: Date;
  /**
   * How far a signingTime may lie after `now` (clocks differ), default 5 minutes.
   * Later is ATTR_INVALID: a signature cannot have been made in the future, so its
   * signer's clock is wrong or the time is a lie, and either way the time cannot
   * choose the clock for validating the certificate.
   */
  clockSkewMs?: number;
  /**
   * Accept a SignerInfo without signed attributes (Netscape-era clients, some AS2
   * receipts), its signature checked over the content itself, flagged in `legacy`.
   * Default false: ATTR_INVALID (RFC 8551 2.5 requires signed attributes). Only with
   * the content in memory (verifySignedData): a streaming verifier has only digests.
   */
  allowLegacy?: boolean;
}

export interface SignerVerification {
  /** Position of the SignerInfo in the SignedData (0-based). */
  index: number;
  identifier: CmsIdentifier;
  certificate: Certificate | undefined;
  /** Readable names, e.g. 'sha256', 'rsassa-pss', 'ecdsa-with-sha256', 'ed25519', 'ml-dsa-65' (the OID when unknown). */
  digestAlgorithm: string;
  signatureAlgorithm: string;
  /** The digestAlgorithm and signatureAlgorithm OIDs as the SignerInfo writes them, for the algorithm policy. */
  algorithmOids: { digest: string; signature: string };
  signingTime: Date | undefined;
  capabilities: SmimeCapability[] | undefined;
  encryptionKeyPreference: CmsIdentifier | undefined;
  /** The signed attributes as parsed (empty when they could not be). */
  signedAttributes: Map<string, Attribute>;
  /** The unsigned attributes as parsed (empty when there are none): not covered by the signature, e.g. an RFC 3161 signature timestamp token. */
  unsignedAttributes: Map<string, Attribute>;
  /** The SignerInfo's signature value, which a signature timestamp token (RFC 3161 appendix A) hashes. */
  signatureValue: Uint8Array;
  status: 'valid' | 'invalid';
  code: ErrorCode | undefined;
  /** The outcome in plain words. */
  message: string;
  warnings: string[];
  /**
   * The warnings (also in `warnings`) on algorithm strength: a SHA-1 or SHA-224
   * digest, an RSA key under 2048 bits. A SignerValidator's algorithm policy decides
   * on these and says so in its own words, so a verdict shows them only without one.
   */
  weakAlgorithms: string[];
  /** Legacy forms accepted under allowLegacy (a signature without signed attributes), one sentence each; absent when none. */
  legacy?: string[];
  /**
   * The signer's countersignatures (RFC 5652 11.4: unsigned counterSignature
   * attributes, each a SignerInfo over this signer's signature value), checked
   * cryptographically like a signer (`index` is the position among them). Reported
   * only: they never change this signer's status. The first level only, at most
   * limits.maxSigners; absent when there are none.
   */
  countersignatures?: SignerVerification[];
}

export interface SignedDataVerification {
  /** 'valid' only if every signer is valid. */
  status: 'valid' | 'invalid';
  code: ErrorCode | undefined;
  message: string;
  contentType: string;
  content: Buffer;
  detached: boolean;
  signers: SignerVerification[];
  /** The X.509 certificates carried in the message (candidates, never anchors). */
  certificates: Certificate[];
  /** The CRLs carried in the message, DER. */
  crls: Uint8Array[];
  /** The OCSP responses carried in the message (RFC 5940), DER; evidence for this message only. */
  ocspResponses: Uint8Array[];
  /** Structure-level notes (skipped attribute certificates, ...). */
  warnings: string[];
}

/** Context for verifyParsedSignedData. */
export interface ParsedVerificationContext {
  /** Returned as `content` in the result (a streaming verifier may pass an empty Buffer). */
  content?: Buffer;
  detached: boolean;
  certificates?: Certificate[];
  limits?: Partial<Limits>;
  now?: Date;
  clockSkewMs?: number;
  /** VerifyOptions.allowLegacy; used only when `content` is given. */
  allowLegacy?: boolean;
}

/**
 * Verifies a DER/BER ContentInfo(SignedData) held in memory, or one already read.
 *
 * @example
 * const v = verifySignedData(der);
 * if (v.status !== 'valid') console.log(v.code, v.message);
 * for (const s of v.signers) console.log(s.certificate?.subjectText, s.status, s.message);
 */
export function verifySignedData(input: CmsInput, options: VerifyOptions = {}): SignedDataVerification {
  // The caller's partial limits are passed on as given: resolving a resolved object copies it again.
  const limits = resolveLimits(options.limits);
  const ci = toContentInfo(input, options.limits);
  if (ci.contentType !== OID.signedData) malformed(`expected SignedData, found content type ${ci.contentType}`);
  const parsed = parseSignedData(ci.content, options.limits);
  let content: Buffer;
  let detached: boolean;
  if (parsed.eContent) {
    // RFC 5652 5.2: eContent present means the content is encapsulated; a second,
    // detached content is a second reading of the same signature.
    if (options.detachedContent !== undefined) {
      throw new KakitomeError('AMBIGUOUS_CONTENT', 'The signature encapsulates its content, but detached content was also given: two readings of one message.');
    }
    const bytes = readOctets(parsed.eContent, limits.maxSegments);
    content = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
    detached = false;
  } else {
    if (options.detachedContent === undefined) {
      throw new KakitomeError('AMBIGUOUS_CONTENT', 'The signature is detached and no content was given to check it against.');
    }
    const d = options.detachedContent;
    content = Buffer.from(d.buffer, d.byteOffset, d.length);
    detached = true;
  }
  const cache = new Map<DigestName, Buffer>();
  const digests = (d: DigestAlgorithm): Uint8Array => {
    let v = cache.get(d.name);
    // crypto.hash is node:crypto's one-shot digest (no Hash object); SHAKE needs an output length, so it takes createHash.
    if (!v) cache.set(d.name, (v = d.name === 'shake256' ? computeDigest(d, content) : hash(d.name, content, 'buffer')));
    return v;
  };
  return verifyParsedSignedData(parsed, digests, { content, detached, certificates: options.certificates, limits: options.limits, now: options.now, clockSkewMs: options.clockSkewMs, allowLegacy: options.allowLegacy });
}

/**
 * Verifies every signer of a parsed SignedData given the content digests. A
 * streaming verifier hashes the content with each of `parsed.digestOids` (see
 * createDigest) while it flows and passes a lookup here.
 *
 * @param digests  returns the content digest for a digest algorithm
 */
export function verifyParsedSignedData(parsed: ParsedSignedData, digests: (digest: DigestAlgorithm) => Uint8Array, ctx: ParsedVerificationContext): SignedDataVerification {
  const limits = resolveLimits(ctx.limits);
  const candidates = ctx.certificates?.length ? [...parsed.certificates, ...ctx.certificates] : parsed.certificates;
  const listed = new Set(parsed.digestAlgorithms.map((d) => d.oid));
  const now = ctx.now ?? new Date();
  const latest = now.getTime() + (ctx.clockSkewMs ?? DEFAULT_CLOCK_SKEW_MS);
  // Without signed attributes the signature covers the content itself: only with allowLegacy, and the content at hand.
  const unsignedForm = { allowed: ctx.allowLegacy === true, content: ctx.content };
  const signers = parsed.signerInfos.map((si) => verifySignerInfo(si, parsed.contentType, digests, candidates, limits, latest, listed, unsignedForm));
  const failed = signers.find((s) => s.status !== 'valid');
  const n = signers.length;
  const message = failed
    ? `Signature ${failed.index + 1} of ${n} is not valid: ${failed.message}`
    : n === 1
      ? 'The signature is valid (cryptographic check only; certificate trust is checked separately).'
      : `All ${n} signatures are valid (cryptographic check only; certificate trust is checked separately).`;
  return {
    status: failed ? 'invalid' : 'valid',
    code: failed?.code,
    message,
    contentType: parsed.contentType,
    content: ctx.content ?? Buffer.alloc(0),
    detached: ctx.detached,
    signers,
    certificates: parsed.certificates,
    crls: parsed.crls,
    ocspResponses: parsed.ocspResponses,
    warnings: parsed.warnings,
  };
}

/** How far a signingTime may lie in the future by default (clocks differ). */
export const DEFAULT_CLOCK_SKEW_MS = 5 * 60 * 1000;

function verifySignerInfo(
  si: ParsedSignerInfo,
  /** Undefined for a countersignature (no content type, RFC 5652 11.4). */
  eContentType: string | undefined,
  digests: (digest: DigestAlgorithm) => Uint8Array,
  candidates: Certificate[],
  limits: Limits,
  /** The latest acceptable signingTime (ms): now plus the clock skew. */
  latest: number,
  listed: Set<string>,
  unsignedForm: { allowed: boolean; content: Buffer | undefined },
  /** Set when `si` is a countersignature: the index of the signer it countersigns. */
  countersigned?: number,
): SignerVerification {
  const r: SignerVerification = {
    index: si.index,
    identifier: si.identifier,
    certificate: undefined,
    digestAlgorithm: si.digestAlgorithm.oid,
    signatureAlgorithm: signatureAlgorithmName(si.signatureAlgorithm),
    algorithmOids: { digest: si.digestAlgorithm.oid, signature: si.signatureAlgorithm.oid },
    signingTime: undefined,
    capabilities: undefined,
    encryptionKeyPreference: undefined,
    signedAttributes: new Map(),
    unsignedAttributes: new Map(),
    signatureValue: si.signature,
    status: 'invalid',
    code: undefined,
    message: '',
    warnings: [],
    weakAlgorithms: [],
  };
  try {
    const digest = parseDigestAlgorithm(si.digestAlgorithm);
    r.digestAlgorithm = digest.name;
    if (digest.weakness === 'refused') throw new KakitomeError('WEAK_ALG', `The ${digest.name} digest is refused: it is broken.`);
    if (!listed.has(si.digestAlgorithm.oid)) r.warnings.push(`The signer's digest algorithm ${digest.name} is not listed in SignedData.digestAlgorithms.`);
    // RFC 8551 2.5: signed attributes are required. Without them the signature is over
    // eContent itself, and content and attributes could be confused for each other.
    const attrs = si.signedAttrs
      ? checkSignedAttributes(si.signedAttrs, {
        eContentType,
        digest,
        digestAlgorithm: si.digestAlgorithmTlv,
        signatureAlgorithm: si.signatureAlgorithmTlv,
        limits,
      })
      : unsignedLegacyForm(eContentType, unsignedForm, limits);
    if (!si.signedAttrs) r.legacy = [...attrs.warnings];
    r.signedAttributes = attrs.attributes;
    r.signingTime = attrs.signingTime;
    r.capabilities = attrs.capabilities;
    r.encryptionKeyPreference = attrs.encryptionKeyPreference;
    r.warnings.push(...attrs.warnings);
    if (si.unsignedAttrs) r.unsignedAttributes = parseUnsigned(si.unsignedAttrs, limits);

    const cert = selectSignerCertificate(si.identifier, candidates, attrs.attributes);
    if (!cert) {
      throw new KakitomeError('CERT_UNTRUSTED', `The signer's certificate (${describeIdentifier(si.identifier)}) is neither in the message nor among the certificates given, so the signature cannot be checked.`);
    }
    r.certificate = cert;
    let publicKey;
    try {
      publicKey = cert.publicKey;
    } catch (e) {
      throw new KakitomeError('UNSUPPORTED_ALG', 'The signer certificate\'s public key is of a kind node:crypto cannot use.', { cause: e });
    }
    const scheme = resolveVerificationScheme(si.signatureAlgorithm, digest, publicKey);
    r.signatureAlgorithm = scheme.name;
    r.warnings.push(...scheme.warnings, ...scheme.weaknesses);
    r.weakAlgorithms.push(...scheme.weaknesses);
    // Bound the input before OpenSSL sees it (a huge "signature" is never valid).
    if (si.signature.length > scheme.maxSignatureLength) {
      throw new KakitomeError('BAD_SIG', `The signature value has ${si.signature.length} bytes, more than a ${scheme.name} signature with this key can have (${scheme.maxSignatureLength}).`);
    }
    // RFC 5652 5.4: the content is bound only through messageDigest (or, without signed attributes, by the signature itself).
    if (attrs.messageDigest && !digestMatches(attrs.messageDigest, digests(digest))) {
      throw new KakitomeError('DIGEST_MISMATCH', 'The content does not match the digest the signer signed: it was changed after signing.');
    }
    let ok: boolean;
    try {
      ok = scheme.check(attrs.signedBytes, si.signature);
    } catch (e) {
      throw new KakitomeError('BAD_SIG', 'The signature value could not be checked: it is damaged.', { cause: e });
    }
    if (!ok) throw new KakitomeError('BAD_SIG', `The ${scheme.name} signature does not verify with the signer's public key: it is forged or damaged.`);
    checkSigningCertificate(attrs.attributes, cert, r.warnings);
    if (r.signingTime) {
      if (r.signingTime.getTime() > latest) {
        throw new KakitomeError('ATTR_INVALID', `The signing time ${r.signingTime.toISOString()} is after ${new Date(latest).toISOString()}, the latest time the verifier's clock accepts: a signature cannot be made in the future, so the time is wrong or forged and the signature is not accepted.`);
      }
      if (r.signingTime < cert.notBefore || r.signingTime > cert.notAfter) r.warnings.push('The signing time is outside the certificate\'s validity period.');
    } else r.warnings.push('The signer gave no signing time.');
    r.status = 'valid';
    r.message = countersigned === undefined
      ? `Signature cryptographically valid: made by ${certificateNames(cert).subjectText} with ${scheme.name} over ${digest.name}; whether this signer is trusted is for path validation to decide.`
      : `Countersignature cryptographically valid over signature ${countersigned + 1}'s value: made by ${certificateNames(cert).subjectText} with ${scheme.name} over ${digest.name}; whether the countersigner is trusted is for path validation to decide.`;
  } catch (e) {
    // LIMIT means hostile input, not a bad signer: the whole object is refused.
    if (!(e instanceof KakitomeError) || e.code === 'LIMIT') throw e;
    r.status = 'invalid';
    r.code = e.code;
    r.message = e.message;
  }
  const counter = r.unsignedAttributes.get(OID.counterSignature);
  if (counter && countersigned !== undefined) {
    r.warnings.push('This countersignature is itself countersigned; only the first level of countersignatures is checked and reported.');
  } else if (counter) {
    r.countersignatures = verifyCountersignatures(counter, si, candidates, limits, latest, r.warnings);
  }
  return r;
}

/**
 * Countersignatures (RFC 5652 11.4): each value a SignerInfo whose messageDigest is
 * the digest of the countersigned signature value, with no contentType attribute.
 * Checked by verifySignerInfo over that value; a countersignature that cannot be
 * read, or exceeds a limit, is reported (a warning, or an invalid entry), never thrown:
 * it must not change the countersigned signer's verdict.
 */
function verifyCountersignatures(attr: Attribute, countersigned: ParsedSignerInfo, candidates: Certificate[], limits: Limits, latest: number, warnings: string[]): SignerVerification[] {
  const values = attr.values.slice(0, limits.maxSigners);
  if (attr.values.length > values.length) warnings.push(`The signer has ${attr.values.length} countersignatures; only the first ${values.length} were checked.`);
  const value = countersigned.signature;
  const digests = (d: DigestAlgorithm): Uint8Array => computeDigest(d, value);
  const out: SignerVerification[] = [];
  values.forEach((t, i) => {
    let cs: ParsedSignerInfo;
    try {
      cs = parseSignerInfo(t, i);
    } catch (e) {
      if (!(e instanceof KakitomeError)) throw e;
      warnings.push(`Countersignature ${i + 1} is not a readable SignerInfo and was not checked (${e.message}).`);
      return;
    }
    try {
      out.push(verifySignerInfo(cs, undefined, digests, candidates, limits, latest, new Set([cs.digestAlgorithm.oid]), { allowed: false, content: undefined }, countersigned.index));
    } catch (e) {
      if (!isKakitomeError(e, 'LIMIT')) throw e;
      warnings.push(`Countersignature ${i + 1} exceeds a limit and was not checked (${e.message}).`);
    }
  });
  return out;
}

/**
 * A SignerInfo without signed attributes, as Netscape-era clients and some AS2
 * servers write it (RFC 5652 5.4: the signature is then over the content itself).
 * ATTR_INVALID unless allowLegacy, and with the content in memory. Even then the
 * content must not be a DER SET, the form signed attributes take: a signature over
 * someone's signed attributes would otherwise pass as one over such "content".
 */
function unsignedLegacyForm(eContentType: string | undefined, form: { allowed: boolean; content: Buffer | undefined }, limits: Limits): CheckedSignedAttributes {
  if (!form.allowed) throw new KakitomeError('ATTR_INVALID', 'The signer has no signed attributes; S/MIME requires them (RFC 8551 2.5), so the signature is not accepted. Old mail signed so (Netscape-era clients, some AS2 receipts) can be read with legacy forms allowed (allowLegacy).');
  if (!form.content) throw new KakitomeError('ATTR_INVALID', 'The signer has no signed attributes; a streaming verifier cannot check such a signature (it covers the content itself): verify the message held in memory, with legacy forms allowed (allowLegacy).');
  // RFC 5652 5.4: without signed attributes, eContentType must be id-data.
  if (eContentType !== OID.data) throw new KakitomeError('ATTR_INVALID', 'A signer without signed attributes may sign only id-data content (RFC 5652 5.4).');
  if (isDerSet(form.content, limits)) throw new KakitomeError('ATTR_INVALID', 'The content of a signature without signed attributes is a DER SET, the form signed attributes take: it could be another signature\'s attributes presented as content, so it is not accepted.');
  return {
    signedBytes: form.content,
    attributes: new Map(),
    messageDigest: undefined,
    signingTime: undefined,
    capabilities: undefined,
    encryptionKeyPreference: undefined,
    warnings: ['The signer has no signed attributes (a Netscape-era or AS2 form): the signature covers the content alone, with no signing time and no content type bound to it. Accepted only because legacy forms are allowed.'],
  };
}

function isDerSet(content: Buffer, limits: Limits): boolean {
  if (content[0] !== 0x31) return false;
  try {
    decode(content, { der: true, maxDepth: limits.maxAsn1Depth });
    return true;
  } catch {
    return false;
  }
}

/**
 * The certificate a SignerInfo names. Several can match (a renewed certificate keeps
 * its key, hence its subjectKeyIdentifier): the ESS signingCertificate(V2) attribute,
 * when present, says which one the signer meant (RFC 5035 5.4); otherwise the first.
 */
function selectSignerCertificate(id: CmsIdentifier, candidates: Certificate[], attributes: Map<string, Attribute>): Certificate | undefined {
  let first: Certificate | undefined;
  let count = 0;
  for (const c of candidates) {
    if (!identifierMatches(id, c)) continue;
    first ??= c;
    count++;
  }
  if (count < 2) return first;
  for (const c of candidates) {
    if (!identifierMatches(id, c)) continue;
    try {
      checkSigningCertificate(attributes, c, []);
      return c;
    } catch {
      // not this one
    }
  }
  return first;
}

function parseUnsigned(t: ParsedSignerInfo['unsignedAttrs'] & object, limits: Limits): Map<string, Attribute> {
  try {
    return parseAttributes(t, 'Unsigned attributes', limits.maxAttributes);
  } catch (e) {
    if (isKakitomeError(e, 'LIMIT') || isKakitomeError(e, 'ATTR_INVALID')) throw e;
    throw new KakitomeError('ATTR_INVALID', 'Unsigned attributes are malformed.', { cause: e });
  }
}
