/**
 * Signed attributes of a SignerInfo (RFC 5652 5.3, 5.4, 11; RFC 8551 2.5;
 * RFC 5035 5.4 signingCertificateV2; RFC 6211 CMSAlgorithmProtection).
 *
 * Output: every attribute is encoded once per signer and cached by the signer code;
 * only messageDigest and signingTime change per message.
 *
 * Input is held to DER (RFC 5652 5.3: "signedAttrs ... MUST be DER encoded"): the
 * [0] IMPLICIT value is re-tagged as SET (0x31), parsed in DER mode and its SET OF
 * order checked (an unsorted set is a QUIRK with a warning), and those exact bytes
 * are what the signature covers (RFC 5652 5.4).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { decode, Tag, type Tlv, readOid, readOctetString, readTime, readIntegerBytes } from '../../asn1/ber.ts';
import { sequence, oid, octetString, time, retag, compareDer, explicit, tlv } from '../../asn1/der.ts';
import { OID } from '../../asn1/oids.ts';
import { KakitomeError, isKakitomeError } from '../../errors.ts';
import type { Limits } from '../../limits.ts';
import { parseAttributes, singleValue, encodeAttribute, type Attribute } from '../attributes.ts';
import { parseAlgorithmIdentifier, hasNoParameters } from '../algorithm-identifier.ts';
import { parseSmimeCapabilities, parseEncryptionKeyPreference, type SmimeCapability } from '../capabilities.ts';
import type { CmsIdentifier } from '../identifier.ts';
import type { Certificate } from '../../x509/certificate.ts';
import { parseDigestAlgorithm, computeDigest, type DigestAlgorithm } from '../algorithms/digest.ts';

function invalid(msg: string): never {
  throw new KakitomeError('ATTR_INVALID', msg);
}

// ------------------------------------------------------------------ encoding

const contentTypeAttrs = new Map<string, Buffer>();

/** contentType attribute (RFC 5652 11.1), cached per content type. */
export function encodeContentTypeAttribute(eContentType: string): Buffer {
  let a = contentTypeAttrs.get(eContentType);
  if (!a) {
    a = encodeAttribute(OID.contentType, oid(eContentType));
    if (contentTypeAttrs.size < 64) contentTypeAttrs.set(eContentType, a);
  }
  return a;
}

/** messageDigest attribute (RFC 5652 11.2). */
export function encodeMessageDigestAttribute(digest: Uint8Array): Buffer {
  // Everything before the digest depends only on its length: written once per length.
  let prefix = messageDigestPrefixes.get(digest.length);
  if (!prefix) {
    const whole = encodeAttribute(OID.messageDigest, octetString(digest));
    prefix = Buffer.from(whole.subarray(0, whole.length - digest.length));
    messageDigestPrefixes.set(digest.length, prefix);
  }
  const out = Buffer.allocUnsafe(prefix.length + digest.length);
  prefix.copy(out, 0);
  out.set(digest, prefix.length);
  return out;
}

const messageDigestPrefixes = new Map<number, Buffer>();

let lastTimeSecond = -1;
let lastTimeAttr: Buffer = Buffer.alloc(0);

/**
 * signingTime attribute (RFC 5652 11.3: UTCTime 1950-2049, GeneralizedTime otherwise,
 * which is what der.time() does). The last encoding is reused within the same second:
 * bulk signing encodes the same time thousands of times.
 */
export function encodeSigningTimeAttribute(when: Date): Buffer {
  const s = Math.floor(when.getTime() / 1000);
  if (s !== lastTimeSecond) {
    lastTimeAttr = encodeAttribute(OID.signingTime, time(new Date(s * 1000)));
    lastTimeSecond = s;
  }
  return lastTimeAttr;
}

/**
 * ESS signingCertificateV2 (RFC 5035 5.4) with one ESSCertIDv2: SHA-256 hash of the
 * certificate (hashAlgorithm DEFAULT id-sha256, hence omitted in DER) and its
 * IssuerSerial (issuer as a directoryName GeneralName), as OpenSSL checks it.
 */
export function encodeSigningCertificateV2Attribute(cert: Certificate): Buffer {
  const hash = createHash('sha256').update(cert.der).digest();
  const issuerSerial = sequence(sequence(explicit(4, cert.issuer)), tlv(Tag.INTEGER, cert.serial));
  const essCertIdV2 = sequence(octetString(hash), issuerSerial);
  return encodeAttribute(OID.signingCertificateV2, sequence(sequence(essCertIdV2)));
}

/**
 * CMSAlgorithmProtection (RFC 6211 2): binds the digest and signature algorithm
 * identifiers under the signature, so neither can be swapped afterwards.
 *   SEQUENCE { digestAlgorithm, signatureAlgorithm [1] IMPLICIT AlgorithmIdentifier }
 */
export function encodeAlgorithmProtectionAttribute(digestAlgorithm: Uint8Array, signatureAlgorithm: Uint8Array): Buffer {
  return encodeAttribute(OID.cmsAlgorithmProtect, sequence(digestAlgorithm, retag(signatureAlgorithm, 0xa1)));
}

/**
 * Assembles attributes into the DER SET OF (sorted, X.690 11.6) with the SET tag, ready
 * to sign. Sorted in place by insertion: a message has about six attributes, and
 * Array.prototype.sort allocates a work array for each call (0.9 KB a signed message).
 */
export function encodeSignedAttributes(attrs: Uint8Array[]): Buffer {
  for (let i = 1; i < attrs.length; i++) {
    const a = attrs[i]!;
    let j = i - 1;
    for (; j >= 0 && compareDer(attrs[j]!, a) > 0; j--) attrs[j + 1] = attrs[j]!;
    attrs[j + 1] = a;
  }
  return tlv(Tag.SET, ...attrs);
}

// ------------------------------------------------------------------- checking

export interface CheckedSignedAttributes {
  /** The DER bytes the signature covers (tag 0x31). */
  signedBytes: Buffer;
  attributes: Map<string, Attribute>;
  /** Absent only for a legacy signature without signed attributes (verify.ts), where the signature covers the content itself. */
  messageDigest: Uint8Array | undefined;
  signingTime: Date | undefined;
  capabilities: SmimeCapability[] | undefined;
  encryptionKeyPreference: CmsIdentifier | undefined;
  warnings: string[];
}

/**
 * Structure and content checks that need neither the certificate nor the content:
 * DER, no duplicates, contentType == eContentType, messageDigest present and of the
 * digest's length, typed signingTime, parsable S/MIME attributes, CMSAlgorithmProtection
 * equal to the SignerInfo's identifiers. Throws ATTR_INVALID / DIGEST_MISMATCH / LIMIT.
 */
export function checkSignedAttributes(
  signedAttrs: Tlv,
  /** eContentType undefined: a countersignature (RFC 5652 11.4), whose signed attributes must have no contentType. */
  ctx: { eContentType: string | undefined; digest: DigestAlgorithm; digestAlgorithm: Tlv; signatureAlgorithm: Tlv; limits: Limits },
): CheckedSignedAttributes {
  if (signedAttrs.indefinite) invalid('Signed attributes are not DER encoded (indefinite length).');
  const signedBytes = retag(signedAttrs.bytes, Tag.SET);
  let set: Tlv;
  try {
    set = decode(signedBytes, { der: true, maxDepth: ctx.limits.maxAsn1Depth });
  } catch (e) {
    if (isKakitomeError(e, 'LIMIT')) throw e;
    throw new KakitomeError('ATTR_INVALID', 'Signed attributes are not DER encoded.', { cause: e });
  }
  const warnings: string[] = [];
  // QUIRK: Outlook for Mac 2011 wrote its signed attributes unsorted (not DER SET OF order,
  // X.690 11.6). The signature covers the bytes as received, which are what is checked
  // (a verifier that re-sorts them, as Bouncy Castle does, fails); each attribute is
  // still DER and no type may repeat, so the set has one reading. Accepted with a warning.
  if (!inSetOrder(set)) warnings.push('The signed attributes are not in DER SET OF order (as Outlook for Mac 2011 wrote them); the signature was checked over the bytes as received.');
  const attributes = parseAttributes(set, 'Signed attributes', ctx.limits.maxAttributes);
  for (const a of attributes.values()) if (a.values.length > 1) checkValuesOrder(a);

  // RFC 5652 5.3 / 11.1: contentType MUST be present, single-valued, equal to eContentType.
  const ct = singleValue(attributes, OID.contentType, 'The contentType attribute');
  if (ctx.eContentType === undefined) {
    // RFC 5652 11.4: a countersignature has no content type, so no contentType attribute.
    if (ct) invalid('A countersignature carries a contentType signed attribute (RFC 5652 11.4 forbids it).');
  } else {
    if (!ct) invalid('The contentType signed attribute is missing (RFC 5652 5.3).');
    if (ct.tag !== Tag.OID) invalid('The contentType attribute is not an OBJECT IDENTIFIER.');
    const ctValue = readOid(ct);
    if (ctValue !== ctx.eContentType) invalid(`The contentType attribute (${ctValue}) differs from the signed content's type (${ctx.eContentType}).`);
  }

  // RFC 5652 11.2: messageDigest MUST be present, single-valued OCTET STRING.
  const mdAttr = attributes.get(OID.messageDigest);
  if (!mdAttr) invalid('The messageDigest signed attribute is missing (RFC 5652 5.3).');
  if (mdAttr.values.length !== 1) invalid(`The messageDigest attribute must have exactly one value, found ${mdAttr.values.length}.`);
  const md = mdAttr.values[0]!;
  if (md.tag !== Tag.OCTET_STRING) invalid('The messageDigest attribute is not an OCTET STRING.');
  const messageDigest = md.value;
  if (messageDigest.length !== ctx.digest.length) {
    throw new KakitomeError('DIGEST_MISMATCH', `The messageDigest attribute has ${messageDigest.length} bytes; a ${ctx.digest.name} digest has ${ctx.digest.length}.`);
  }

  // RFC 5652 11.3: single-valued Time; UTCTime for 1950-2049.
  let signingTime: Date | undefined;
  const st = singleValue(attributes, OID.signingTime, 'The signingTime attribute');
  if (st) {
    if (st.tag !== Tag.UTC_TIME && st.tag !== Tag.GENERALIZED_TIME) invalid('The signingTime attribute is not a UTCTime or GeneralizedTime.');
    try {
      signingTime = readTime(st, 'signingTime');
    } catch (e) {
      throw new KakitomeError('ATTR_INVALID', 'The signingTime attribute is not a valid time.', { cause: e });
    }
    const y = signingTime.getUTCFullYear();
    if (st.tag === Tag.GENERALIZED_TIME && y >= 1950 && y < 2050) invalid('The signingTime attribute uses GeneralizedTime for a year that requires UTCTime (RFC 5652 11.3).');
  }

  const capsT = singleValue(attributes, OID.smimeCapabilities, 'The SMIMECapabilities attribute');
  const capabilities = capsT ? readCapabilitiesMemo(capsT) : undefined;
  const ekpT = singleValue(attributes, OID.smimeEncryptionKeyPreference, 'The SMIMEEncryptionKeyPreference attribute');
  const encryptionKeyPreference = ekpT ? parseEncryptionKeyPreference(ekpT) : undefined;

  // RFC 6211 2: when present it MUST match the SignerInfo's algorithm identifiers.
  const ap = singleValue(attributes, OID.cmsAlgorithmProtect, 'The CMSAlgorithmProtection attribute');
  if (ap) checkAlgorithmProtection(ap, ctx.digestAlgorithm, ctx.signatureAlgorithm);

  // RFC 5652 11.4: countersignature is an unsigned attribute only.
  if (attributes.has(OID.counterSignature)) invalid('A countersignature appears among the signed attributes (RFC 5652 11.4 forbids it).');

  return { signedBytes, attributes, messageDigest, signingTime, capabilities, encryptionKeyPreference, warnings };
}

/** A value's exact encoding as a string, for memo keys. */
function bytesKey(t: Tlv): string {
  const b = t.bytes;
  return Buffer.from(b.buffer, b.byteOffset, b.length).toString('latin1');
}

// A sender writes the same SMIMECapabilities bytes in every message: parsed results are
// kept by their exact encoding (bounded), and each caller gets fresh objects and copies.
const capabilitiesByBytes = new Map<string, SmimeCapability[]>();
const MAX_MEMO = 256;

function readCapabilitiesMemo(t: Tlv): SmimeCapability[] {
  // Large values are parsed every time (a key would cost what the parse does).
  if (t.end - t.start > 1024) return parseSmimeCapabilities(t);
  const key = bytesKey(t);
  let caps = capabilitiesByBytes.get(key);
  if (!caps) {
    caps = parseSmimeCapabilities(t).map((c) => (c.parameters ? { capabilityId: c.capabilityId, parameters: Buffer.from(c.parameters) } : { capabilityId: c.capabilityId }));
    if (capabilitiesByBytes.size >= MAX_MEMO) capabilitiesByBytes.clear();
    capabilitiesByBytes.set(key, caps);
  }
  return caps.map((c) => (c.parameters ? { capabilityId: c.capabilityId, parameters: Buffer.from(c.parameters) } : { capabilityId: c.capabilityId }));
}

function inSetOrder(set: Tlv): boolean {
  const c = set.children();
  for (let i = 1; i < c.length; i++) if (compareDer(c[i - 1]!.bytes, c[i]!.bytes) > 0) return false;
  return true;
}

function checkValuesOrder(a: Attribute): void {
  for (let i = 1; i < a.values.length; i++) {
    if (compareDer(a.values[i - 1]!.bytes, a.values[i]!.bytes) > 0) invalid(`Values of attribute ${a.type} are not in DER SET OF order.`);
  }
}

function sameAlgorithm(a: Tlv, b: Tlv, what: string): void {
  const x = parseAlgorithmIdentifier(a, what);
  const y = parseAlgorithmIdentifier(b, what);
  if (x.oid !== y.oid) invalid(`CMSAlgorithmProtection names ${what} ${x.oid} but the SignerInfo uses ${y.oid} (RFC 6211).`);
  const same = (hasNoParameters(x) && hasNoParameters(y)) || (x.parameters !== undefined && y.parameters !== undefined && Buffer.compare(x.parameters.bytes, y.parameters.bytes) === 0);
  if (!same) invalid(`CMSAlgorithmProtection ${what} parameters differ from the SignerInfo's (RFC 6211).`);
}

function checkAlgorithmProtection(ap: Tlv, digestAlgorithm: Tlv, signatureAlgorithm: Tlv): void {
  try {
    if (ap.tag !== Tag.SEQUENCE) invalid('CMSAlgorithmProtection is not a SEQUENCE.');
    const f = ap.fields('CMSAlgorithmProtection');
    const d = f.expect(Tag.SEQUENCE, 'digestAlgorithm');
    const s = f.optional(0xa1);
    const mac = f.optional(0xa2);
    f.end();
    // RFC 6211 2: exactly one of signatureAlgorithm and macAlgorithm; SignedData uses the former.
    if (!s || mac) invalid('CMSAlgorithmProtection must carry a signatureAlgorithm and no macAlgorithm in SignedData (RFC 6211 2).');
    // Fast path: byte-identical identifiers (what every signer writes) need no parsing.
    if (Buffer.compare(d.bytes, digestAlgorithm.bytes) === 0 && Buffer.compare(s.value, signatureAlgorithm.value) === 0 && !signatureAlgorithm.indefinite) return;
    sameAlgorithm(d, digestAlgorithm, 'digestAlgorithm');
    sameAlgorithm(retagTlv(s), signatureAlgorithm, 'signatureAlgorithm');
  } catch (e) {
    if (isKakitomeError(e, 'ATTR_INVALID')) throw e;
    throw new KakitomeError('ATTR_INVALID', 'CMSAlgorithmProtection is malformed.', { cause: e });
  }
}

function retagTlv(t: Tlv): Tlv {
  return decode(retag(t.bytes, Tag.SEQUENCE), { der: true });
}

/**
 * Checks the ESS signing-certificate attributes against the signer's certificate
 * (RFC 5035 5.4: the first ESSCertID(v2) identifies the signing certificate). A
 * mismatch is ATTR_INVALID (a certificate substitution). Absence is not reported:
 * RFC 8551 does not require the attribute and no peer writes it (OpenSSL, NSS,
 * gpgsm, Bouncy Castle; docs/interop.md), so a warning would appear on nearly every
 * signature and teach people to ignore warnings. Substituting another certificate
 * for the same key still has to pass path validation.
 */
export function checkSigningCertificate(attributes: Map<string, Attribute>, cert: Certificate, warnings: string[]): void {
  const v2 = singleValue(attributes, OID.signingCertificateV2, 'The signingCertificateV2 attribute');
  const v1 = singleValue(attributes, OID.signingCertificate, 'The signingCertificate attribute');
  if (!v2 && !v1) return;
  // The check is a function of the certificate and the attribute values' bytes; a
  // signer sends the same bytes in every message, so a pair that passed is remembered.
  const key = `${v2 ? bytesKey(v2) : ''}|${v1 ? bytesKey(v1) : ''}`;
  const passed = essPassed.get(cert);
  if (passed?.has(key)) return;
  try {
    if (v2) checkEssCertId(v2, cert, true);
    if (v1) checkEssCertId(v1, cert, false);
    let set = passed;
    if (!set) essPassed.set(cert, (set = new Set()));
    if (set.size >= 16) set.clear();
    set.add(key);
  } catch (e) {
    if (isKakitomeError(e, 'ATTR_INVALID') || isKakitomeError(e, 'UNSUPPORTED_ALG')) throw e;
    throw new KakitomeError('ATTR_INVALID', 'The ESS signing certificate attribute is malformed.', { cause: e });
  }
}

const essPassed = new WeakMap<Certificate, Set<string>>();

function checkEssCertId(value: Tlv, cert: Certificate, v2: boolean): void {
  const what = v2 ? 'signingCertificateV2' : 'signingCertificate';
  if (value.tag !== Tag.SEQUENCE) invalid(`${what} is not a SEQUENCE.`);
  const certs = value.children()[0];
  if (!certs || certs.tag !== Tag.SEQUENCE) invalid(`${what} has no certs.`);
  const first = certs.children()[0];
  if (!first || first.tag !== Tag.SEQUENCE) invalid(`${what} lists no certificate.`);
  const f = first.fields(v2 ? 'ESSCertIDv2' : 'ESSCertID');
  let digest: DigestAlgorithm | undefined;
  let hashName = 'sha1';
  if (v2) {
    const alg = f.optional(Tag.SEQUENCE);
    digest = parseDigestAlgorithm(alg ? parseAlgorithmIdentifier(alg) : { oid: OID.sha256, parameters: undefined, der: new Uint8Array() });
    hashName = digest.name;
  }
  const certHash = readOctetString(f.expect(Tag.OCTET_STRING, 'certHash'), 'certHash');
  const issuerSerial = f.optional(Tag.SEQUENCE);
  f.end();
  const actual = certificateHash(cert, digest);
  if (certHash.length !== actual.length || !timingSafeEqual(certHash, actual)) {
    invalid(`The ${what} attribute names a different certificate than the one that verifies the signature (${hashName} hash mismatch).`);
  }
  if (issuerSerial) {
    const isf = issuerSerial.fields('IssuerSerial');
    const names = isf.expect(Tag.SEQUENCE, 'issuer').children();
    const serial = readIntegerBytes(isf.expect(Tag.INTEGER, 'serialNumber'));
    isf.end();
    const dirNames = names.filter((n) => n.tag === 0xa4).map((n) => n.children()[0]?.bytes);
    const issuerOk = dirNames.some((n) => n !== undefined && Buffer.compare(n, cert.issuer) === 0);
    if (!issuerOk || Buffer.compare(serial, cert.serial) !== 0) invalid(`The ${what} attribute's issuer and serial do not match the signer certificate.`);
  }
}

// Certificate hashes for the ESS check, computed once per certificate and digest:
// hashing the signer certificate on every verification costs as much as the parsing.
const certHashes = new WeakMap<Certificate, Map<string, Buffer>>();

function certificateHash(cert: Certificate, digest: DigestAlgorithm | undefined): Buffer {
  let m = certHashes.get(cert);
  if (!m) certHashes.set(cert, (m = new Map()));
  const name = digest?.name ?? 'sha1';
  let h = m.get(name);
  if (!h) m.set(name, (h = digest ? computeDigest(digest, cert.der) : createHash('sha1').update(cert.der).digest()));
  return h;
}

/** Compares the messageDigest attribute with the content digest (RFC 5652 5.4). */
export function digestMatches(messageDigest: Uint8Array, contentDigest: Uint8Array): boolean {
  return messageDigest.length === contentDigest.length && timingSafeEqual(messageDigest, contentDigest);
}
