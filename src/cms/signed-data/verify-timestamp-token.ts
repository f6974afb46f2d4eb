/**
 * The cryptographic check of an RFC 3161 signature timestamp token: the value of
 * the unsigned attribute id-aa-signatureTimeStampToken of a SignerInfo (RFC 3161
 * appendix A). The token is a ContentInfo(SignedData) whose eContent is a DER
 * TSTInfo (RFC 3161 2.4.2); it says that the TSA saw the hash of the SignerInfo's
 * signature value at genTime.
 *
 * Checked here: the size (limits.maxTimestampTokenBytes), the SignedData signature
 * (verifySignedData, the same rules as any signature: signed attributes, digest,
 * ESS signingCertificate naming the TSA's certificate), eContentType id-ct-TSTInfo,
 * exactly one signer, the ESS signingCertificate(V2) attribute present (RFC 3161
 * 2.4.1, RFC 5816), TSTInfo DER with version 1, no unknown critical extension, a
 * strict genTime (YYYYMMDDhhmmss[.fff]Z, X.690 11.7), and messageImprint equal to
 * the hash of the signature value under the imprint's own algorithm (MD5 refused;
 * SHA-1 left to the algorithm policy, which refuses it by default).
 *
 * Not checked here (src/pki decides, through the SignerValidator): whether the
 * TSA's certificate is trusted for timestamping (critical, sole id-kp-timeStamping
 * EKU, a path to an anchor, revocation), the algorithm policy, and genTime against
 * the clock. A nonce is not required (RFC 3161 2.4.2: only the requester compares it).
 */
import { timingSafeEqual } from 'node:crypto';
import { Tag, decode, readBigInt, readBoolean, readOctetString, readOid, readSmallInt, type Tlv } from '../../asn1/ber.ts';
import { OID } from '../../asn1/oids.ts';
import { KakitomeError, isKakitomeError, malformed } from '../../errors.ts';
import { resolveLimits, type Limits } from '../../limits.ts';
import type { Certificate } from '../../x509/certificate.ts';
import type { TimestampEvidence } from '../../pki/types.ts';
import { parseAlgorithmIdentifier } from '../algorithm-identifier.ts';
import { computeDigest, parseDigestAlgorithm } from '../algorithms/digest.ts';
import { verifySignedData } from './verify.ts';

/**
 * The contract's TimestampEvidence (src/pki/types.ts, what the validator judges),
 * plus what the TSTInfo says besides. Codes when invalid: MALFORMED, LIMIT, BAD_SIG,
 * DIGEST_MISMATCH, ATTR_INVALID, WEAK_ALG, UNSUPPORTED_ALG, CERT_UNTRUSTED (the TSA's
 * certificate is not found).
 */
export interface TimestampTokenVerification extends TimestampEvidence {
  /** TSTInfo policy (the TSA's policy OID) and serialNumber (hex). */
  policy?: string;
  serial?: string;
  /** TSTInfo accuracy in milliseconds, when given. */
  accuracyMs?: number;
}

export interface TimestampTokenOptions {
  /** Extra candidates for the TSA's certificate (the message's certificates, --certfile); never anchors. */
  certificates?: Certificate[];
  limits?: Partial<Limits>;
}

/**
 * Checks one token against the signature value it claims to timestamp.
 * Never throws for a bad token (every KakitomeError becomes the result's code and
 * message): the result says why it is not usable.
 */
export function verifyTimestampToken(token: Uint8Array, signatureValue: Uint8Array, options: TimestampTokenOptions = {}): TimestampTokenVerification {
  const result: TimestampTokenVerification = { status: 'invalid', message: '', certificates: [], crls: [], ocspResponses: [] };
  try {
    const limits = resolveLimits(options.limits);
    if (token.length > limits.maxTimestampTokenBytes) {
      throw new KakitomeError('LIMIT', `the token has ${token.length} bytes, more than the ${limits.maxTimestampTokenBytes} a timestamp token may have`);
    }
    const v = verifySignedData(token, { ...(options.certificates ? { certificates: options.certificates } : {}), limits: { ...options.limits, maxSigners: 1 } });
    result.certificates = v.certificates;
    result.crls = v.crls;
    result.ocspResponses = v.ocspResponses;
    if (v.contentType !== OID.tstInfo) throw new KakitomeError('MALFORMED', `its content is ${v.contentType}, not a TSTInfo (id-ct-TSTInfo)`);
    const signer = v.signers[0]!;
    result.certificate = signer.certificate;
    result.algorithmOids = signer.algorithmOids;
    if (signer.status !== 'valid') throw new KakitomeError(signer.code ?? 'BAD_SIG', `the TSA's signature on it is not valid: ${lowerFirst(signer.message)}`);
    if (!signer.signedAttributes.has(OID.signingCertificate) && !signer.signedAttributes.has(OID.signingCertificateV2)) {
      throw new KakitomeError('ATTR_INVALID', 'the TSA\'s signature lacks the ESS signingCertificate attribute that RFC 3161 2.4.1 requires');
    }
    const info = readTstInfo(v.content, limits);
    Object.assign(result, { genTime: info.genTime, imprintAlgorithm: info.imprintAlgorithm, policy: info.policy, serial: info.serial }, info.accuracyMs !== undefined ? { accuracyMs: info.accuracyMs } : {});
    const digest = parseDigestAlgorithm(info.imprintAlgorithmIdentifier);
    if (digest.weakness === 'refused') throw new KakitomeError('WEAK_ALG', `its message imprint uses ${digest.name}, which is broken`);
    const expected = computeDigest(digest, signatureValue);
    if (info.hashedMessage.length !== expected.length || !timingSafeEqual(info.hashedMessage, expected)) {
      throw new KakitomeError('DIGEST_MISMATCH', 'its message imprint is not the hash of this signature: the token was made for another signature');
    }
    result.status = 'valid';
    result.message = `A signature timestamp by "${signer.certificate!.subjectText}" says this signature existed at ${info.genTime.toISOString()} (${digest.name} imprint).`;
  } catch (e) {
    // Anything but a typed refusal is a bug, not a verdict on the token.
    if (!isKakitomeError(e)) throw e;
    result.code = e.code;
    result.message = `The signature timestamp is not usable: ${lowerFirst(e.message).replace(/\.$/, '')}.`;
  }
  return result;
}

interface TstInfo {
  policy: string;
  imprintAlgorithm: string;
  imprintAlgorithmIdentifier: ReturnType<typeof parseAlgorithmIdentifier>;
  hashedMessage: Uint8Array;
  serial: string;
  genTime: Date;
  accuracyMs?: number;
}

/**
 * TSTInfo ::= SEQUENCE { version INTEGER { v1(1) }, policy TSAPolicyId,
 *   messageImprint MessageImprint, serialNumber INTEGER, genTime GeneralizedTime,
 *   accuracy Accuracy OPTIONAL, ordering BOOLEAN DEFAULT FALSE, nonce INTEGER OPTIONAL,
 *   tsa [0] GeneralName OPTIONAL, extensions [1] IMPLICIT Extensions OPTIONAL }
 * DER (RFC 3161 2.4.2: the TSTInfo is DER encoded).
 */
function readTstInfo(der: Uint8Array, limits: Limits): TstInfo {
  const top = decode(der, { der: true, maxDepth: limits.maxAsn1Depth });
  if (top.tag !== Tag.SEQUENCE) malformed('TSTInfo is not a SEQUENCE');
  const f = top.fields('TSTInfo');
  const version = readSmallInt(f.expect(Tag.INTEGER, 'version'), 'TSTInfo.version');
  if (version !== 1) malformed(`TSTInfo version ${version}, not 1`);
  const policy = readOid(f.expect(Tag.OID, 'policy'), 'TSTInfo.policy');
  const imprint = f.expect(Tag.SEQUENCE, 'messageImprint').fields('MessageImprint');
  const imprintAlgorithmIdentifier = parseAlgorithmIdentifier(imprint.expect(Tag.SEQUENCE, 'hashAlgorithm'), 'MessageImprint.hashAlgorithm');
  const hashedMessage = readOctetString(imprint.expect(Tag.OCTET_STRING, 'hashedMessage'), 'hashedMessage');
  imprint.end();
  const serialTlv = f.expect(Tag.INTEGER, 'serialNumber');
  if (readBigInt(serialTlv, 'TSTInfo.serialNumber') < 0n) malformed('TSTInfo serialNumber is negative');
  const genTime = readGenTime(f.expect(Tag.GENERALIZED_TIME, 'genTime'));
  const accuracy = f.optional(Tag.SEQUENCE);
  const ordering = f.optional(Tag.BOOLEAN);
  if (ordering) readBoolean(ordering, 'TSTInfo.ordering');
  f.optional(Tag.INTEGER); // nonce: for the requester only
  const tsa = f.optional(0xa0);
  if (tsa && tsa.children().length !== 1) malformed('TSTInfo tsa is not one GeneralName');
  const extensions = f.optional(0xa1);
  f.end();
  for (const ext of extensions?.children() ?? []) {
    const e = ext.fields('Extension');
    const id = readOid(e.expect(Tag.OID, 'extnID'), 'extnID');
    const critical = e.optional(Tag.BOOLEAN);
    if (critical && readBoolean(critical, 'critical')) throw new KakitomeError('MALFORMED', `its TSTInfo has an unknown critical extension ${id}`);
    e.expect(Tag.OCTET_STRING, 'extnValue');
    e.end();
  }
  const out: TstInfo = { policy, imprintAlgorithm: imprintAlgorithmIdentifier.oid, imprintAlgorithmIdentifier, hashedMessage, serial: Buffer.from(serialTlv.value).toString('hex'), genTime };
  if (accuracy) out.accuracyMs = readAccuracy(accuracy);
  return out;
}

/**
 * genTime (RFC 3161 2.4.2, X.690 11.7): YYYYMMDDhhmmss[.f+]Z, UTC, the fraction
 * without trailing zeros and no lone dot; a real calendar date. Sub-millisecond
 * digits are dropped (the Date cannot hold them).
 */
function readGenTime(t: Tlv): Date {
  const s = Buffer.from(t.value).toString('latin1');
  const m = /^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(?:\.(\d*[1-9]))?Z$/.exec(s);
  if (!m) malformed(`TSTInfo genTime "${s.slice(0, 40)}" is not a GeneralizedTime of the form YYYYMMDDhhmmss[.fff]Z`);
  const [y, mo, d, h, mi, se] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const ms = m[7] ? Number(m[7].slice(0, 3).padEnd(3, '0')) : 0;
  const date = new Date(0);
  date.setUTCFullYear(y, mo - 1, d);
  date.setUTCHours(h, mi, se, ms);
  if (date.getUTCMonth() !== mo - 1 || date.getUTCDate() !== d || h > 23 || mi > 59 || se > 59) malformed('TSTInfo genTime is not a valid date');
  return date;
}

/** Accuracy ::= SEQUENCE { seconds INTEGER OPTIONAL, millis [0] INTEGER (1..999) OPTIONAL, micros [1] INTEGER (1..999) OPTIONAL }, in ms. */
function readAccuracy(t: Tlv): number {
  const f = t.fields('Accuracy');
  const seconds = f.optional(Tag.INTEGER);
  const millis = f.optional(0x80);
  const micros = f.optional(0x81);
  f.end();
  const small = (x: Tlv | undefined, max: number, what: string): number => {
    if (!x) return 0;
    const v = x.value;
    if (v.length === 0 || v.length > 4 || (v[0]! & 0x80) !== 0) malformed(`Accuracy ${what} is out of range`);
    const n = v.reduce((a, b) => a * 256 + b, 0);
    if (n > max || (what !== 'seconds' && n < 1)) malformed(`Accuracy ${what} is out of range`);
    return n;
  };
  return small(seconds, 86_400 * 365, 'seconds') * 1000 + small(millis, 999, 'millis') + Math.ceil(small(micros, 999, 'micros') / 1000);
}

function lowerFirst(s: string): string {
  return /^[A-Z][a-z]/.test(s) ? s.charAt(0).toLowerCase() + s.slice(1) : s;
}
