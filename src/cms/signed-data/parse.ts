/**
 * SignedData structure (RFC 5652 5.1-5.3), read from BER, without any digest or
 * signature work:
 *
 *   SignedData ::= SEQUENCE { version, digestAlgorithms SET OF AlgorithmIdentifier,
 *     encapContentInfo EncapsulatedContentInfo, certificates [0] IMPLICIT OPTIONAL,
 *     crls [1] IMPLICIT OPTIONAL, signerInfos SET OF SignerInfo }
 *   SignerInfo ::= SEQUENCE { version, sid, digestAlgorithm, signedAttrs [0] IMPLICIT OPTIONAL,
 *     signatureAlgorithm, signature OCTET STRING, unsignedAttrs [1] IMPLICIT OPTIONAL }
 *
 * Strictness: unknown or surplus fields, a SignerInfo version that contradicts its
 * sid (RFC 5652 5.3), and the same signer identifier twice (our choice: MALFORMED,
 * since two SignerInfos naming one signer is ambiguity an attacker can use to show
 * one verdict and hide another) all fail the whole object.
 */
import { Tag, type Tlv, readOid, readSmallInt, readOctets, readOctetString } from '../../asn1/ber.ts';
import { KakitomeError, malformed } from '../../errors.ts';
import { resolveLimits, type Limits } from '../../limits.ts';
import { parseAlgorithmIdentifier, type AlgorithmIdentifier } from '../algorithm-identifier.ts';
import { parseIdentifier, type CmsIdentifier } from '../identifier.ts';
import { parseCertificateCached } from './certificate-cache.ts';
import type { Certificate } from '../../x509/certificate.ts';

/** id-ri-ocsp-response (RFC 5940 2.2): an OCSPResponse carried in RevocationInfoChoices. */
const ID_RI_OCSP_RESPONSE = '1.3.6.1.5.5.7.16.2';

export interface ParsedSignerInfo {
  index: number;
  version: number;
  identifier: CmsIdentifier;
  digestAlgorithm: AlgorithmIdentifier;
  /** The digestAlgorithm TLV, for CMSAlgorithmProtection comparison. */
  digestAlgorithmTlv: Tlv;
  /** The [0] IMPLICIT signedAttrs TLV as received, when present. */
  signedAttrs: Tlv | undefined;
  signatureAlgorithm: AlgorithmIdentifier;
  signatureAlgorithmTlv: Tlv;
  signature: Uint8Array;
  unsignedAttrs: Tlv | undefined;
  /** The whole SignerInfo encoding. */
  der: Uint8Array;
}

export interface ParsedSignedData {
  version: number;
  /** SignedData.digestAlgorithms as listed. */
  digestAlgorithms: AlgorithmIdentifier[];
  /** DigestAlgorithm OIDs a streaming verifier must compute over the content: the listed ones plus every signer's. */
  digestOids: string[];
  contentType: string;
  /** The eContent OCTET STRING TLV (primitive or constructed), absent when detached. */
  eContent: Tlv | undefined;
  certificates: Certificate[];
  crls: Uint8Array[];
  /** OCSPResponses carried as RevocationInfoChoice other, id-ri-ocsp-response (RFC 5940 2.2), DER. */
  ocspResponses: Uint8Array[];
  signerInfos: ParsedSignerInfo[];
  /** Things skipped or tolerated while parsing (attribute certificates, ...). */
  warnings: string[];
}

/**
 * Parses the SignedData SEQUENCE (the value inside ContentInfo [0]). Throws
 * KakitomeError MALFORMED / LIMIT / NO_SIGNERS.
 */
export function parseSignedData(content: Tlv, limits?: Partial<Limits>): ParsedSignedData {
  const l = resolveLimits(limits);
  if (content.tag !== Tag.SEQUENCE) malformed('SignedData is not a SEQUENCE');
  const f = content.fields('SignedData');
  const version = readSmallInt(f.expect(Tag.INTEGER, 'version'), 'SignedData.version');
  // RFC 5652 5.1: 1, 3, 4 or 5. QUIRK: we do not insist on the exact value the rules
  // compute (peers disagree about attribute certificates); the signers' versions are checked.
  if (![1, 3, 4, 5].includes(version)) malformed(`SignedData version ${version}`);
  const digestSet = f.expect(Tag.SET, 'digestAlgorithms').children(l.maxSigners * 2 + 1);
  if (digestSet.length > l.maxSigners * 2) throw new KakitomeError('LIMIT', `More than ${l.maxSigners * 2} digest algorithms.`);
  const digestAlgorithms = digestSet.map((t) => parseAlgorithmIdentifier(t, 'digestAlgorithm'));
  const encap = f.expect(Tag.SEQUENCE, 'encapContentInfo').fields('EncapsulatedContentInfo');
  const contentType = readOid(encap.expect(Tag.OID, 'eContentType'), 'eContentType');
  const wrapped = encap.optional(0xa0);
  encap.end();
  let eContent: Tlv | undefined;
  if (wrapped) {
    const inner = wrapped.children();
    if (inner.length !== 1) malformed('eContent [0] must hold exactly one OCTET STRING');
    eContent = inner[0]!;
    if (eContent.baseTag !== Tag.OCTET_STRING) malformed('eContent is not an OCTET STRING');
    // Validates segment structure and the segment limit now, not later.
    readOctets(eContent, l.maxSegments);
  }
  const warnings: string[] = [];
  const certs = f.optional(0xa0);
  const crlSet = f.optional(0xa1);
  const signerSet = f.expect(Tag.SET, 'signerInfos');
  f.end();

  const certificates: Certificate[] = [];
  const crls: Uint8Array[] = [];
  const certItems = certs ? certs.children(l.maxCertificates + 1) : [];
  const crlItems = crlSet ? crlSet.children(l.maxCertificates + 1) : [];
  if (certItems.length + crlItems.length > l.maxCertificates) {
    throw new KakitomeError('LIMIT', `More than ${l.maxCertificates} certificates and CRLs in one SignedData.`);
  }
  for (const c of certItems) {
    if (c.tag !== Tag.SEQUENCE) {
      // CertificateChoices: [0] extendedCertificate, [1]/[2] attribute certificates, [3] other.
      warnings.push(`A certificate of a kind other than X.509 (tag 0x${c.tag.toString(16)}) was skipped.`);
      continue;
    }
    try {
      certificates.push(parseCertificateCached(c.bytes));
    } catch (e) {
      // QUIRK: a carried certificate we cannot read (often not strictly DER) is
      // skipped, not fatal: it is only a candidate, and a missing signer certificate is reported per signer.
      warnings.push(`A carried certificate could not be read and was skipped (${(e as Error).message}).`);
    }
  }
  const ocspResponses: Uint8Array[] = [];
  for (const c of crlItems) {
    if (c.tag === Tag.SEQUENCE) {
      crls.push(c.bytes);
      continue;
    }
    // other [1] IMPLICIT OtherRevocationInfoFormat { otherRevInfoFormat OID, otherRevInfo ANY } (RFC 5652 10.2.1).
    const other = c.tag === 0xa1 ? c.children() : [];
    if (other.length === 2 && other[0]!.tag === Tag.OID && readOid(other[0]!) === ID_RI_OCSP_RESPONSE && other[1]!.tag === Tag.SEQUENCE) {
      ocspResponses.push(other[1]!.bytes);
      continue;
    }
    warnings.push(`Revocation information of a kind other than a CRL or an OCSP response (tag 0x${c.tag.toString(16)}) was skipped.`);
  }

  const signerTlvs = signerSet.children(l.maxSigners + 1);
  // Brief: "a signature with no signer is no signature".
  if (signerTlvs.length === 0) throw new KakitomeError('NO_SIGNERS', 'The SignedData has no signers: it is not a signature.');
  if (signerTlvs.length > l.maxSigners) throw new KakitomeError('LIMIT', `More than ${l.maxSigners} signers.`);
  const signerInfos = signerTlvs.map((t, i) => parseSignerInfo(t, i));
  rejectDuplicateSigners(signerInfos);

  const digestOids = [...new Set([...digestAlgorithms.map((d) => d.oid), ...signerInfos.map((s) => s.digestAlgorithm.oid)])];
  return { version, digestAlgorithms, digestOids, contentType, eContent, certificates, crls, ocspResponses, signerInfos, warnings };
}

/** One SignerInfo (RFC 5652 5.3). */
export function parseSignerInfo(t: Tlv, index: number): ParsedSignerInfo {
  if (t.tag !== Tag.SEQUENCE) malformed(`SignerInfo ${index + 1} is not a SEQUENCE`);
  const f = t.fields('SignerInfo');
  const version = readSmallInt(f.expect(Tag.INTEGER, 'version'), 'SignerInfo.version');
  const identifier = parseIdentifier(f.next('sid'));
  // RFC 5652 5.3: version 1 with issuerAndSerialNumber, 3 with subjectKeyIdentifier.
  const expected = identifier.kind === 'issuerAndSerialNumber' ? 1 : 3;
  if (version !== expected) malformed(`SignerInfo ${index + 1} has version ${version} but its sid requires ${expected}`);
  const digestAlgorithmTlv = f.expect(Tag.SEQUENCE, 'digestAlgorithm');
  const signedAttrs = f.optional(0xa0);
  const signatureAlgorithmTlv = f.expect(Tag.SEQUENCE, 'signatureAlgorithm');
  const signature = readOctetString(f.next('signature'), 'signature');
  const unsignedAttrs = f.optional(0xa1);
  f.end();
  if (signature.length === 0) malformed(`SignerInfo ${index + 1} has an empty signature`);
  return {
    index,
    version,
    identifier,
    digestAlgorithm: parseAlgorithmIdentifier(digestAlgorithmTlv, 'digestAlgorithm'),
    digestAlgorithmTlv,
    signedAttrs,
    signatureAlgorithm: parseAlgorithmIdentifier(signatureAlgorithmTlv, 'signatureAlgorithm'),
    signatureAlgorithmTlv,
    signature,
    unsignedAttrs,
    der: t.bytes,
  };
}

function identifierKey(id: CmsIdentifier): string {
  return id.kind === 'issuerAndSerialNumber'
    ? `i:${Buffer.from(id.issuer).toString('hex')}:${Buffer.from(id.serial).toString('hex')}`
    : `k:${Buffer.from(id.keyId).toString('hex')}`;
}

function rejectDuplicateSigners(signers: ParsedSignerInfo[]): void {
  if (signers.length < 2) return;
  const seen = new Set<string>();
  for (const s of signers) {
    const k = identifierKey(s.identifier);
    if (seen.has(k)) malformed(`two SignerInfos name the same signer (SignerInfo ${s.index + 1})`);
    seen.add(k);
  }
}
