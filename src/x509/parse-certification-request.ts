/**
 * PKCS#10 certification requests (RFC 2986), read strictly: DER only (the request
 * is signed over its exact encoding), one request per input, no trailing data,
 * bounded size, version v1(0) only, at most one extensionRequest attribute
 * (RFC 2985 5.4.2) with no repeated extension. PEM ("CERTIFICATE REQUEST", or the
 * "NEW CERTIFICATE REQUEST" label older tools write) or DER.
 *
 *   CertificationRequest ::= SEQUENCE {
 *     certificationRequestInfo SEQUENCE {
 *       version INTEGER { v1(0) }, subject Name, subjectPKInfo SubjectPublicKeyInfo,
 *       attributes [0] IMPLICIT SET OF Attribute },
 *     signatureAlgorithm AlgorithmIdentifier, signature BIT STRING }
 *
 * Parsing decides nothing about what to certify: the CA's profile does
 * (src/ca/issue-from-certification-request.ts). verifyProofOfPossession checks the
 * self-signature, which proves the requester holds the private key.
 */
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { Tag, decode, readBitString, readBoolean, readOctetString, readOid, readSmallInt, readString, type Tlv } from '../asn1/ber.ts';
import { decodePem, isPem } from '../asn1/pem.ts';
import { OID } from '../asn1/oids.ts';
import { KakitomeError, malformed } from '../errors.ts';
import { verifySignatureValue } from '../pki/verify-signed-object.ts';
import { hashOfAlgorithm } from '../pki/algorithm-policy.ts';

/** A request is a key, a name and a few extensions: 64 KiB is far above any real one (RSA-16384 fits in 5 KiB). */
export const MAX_REQUEST_BYTES = 64 * 1024;

export interface RequestedExtension {
  critical: boolean;
  /** extnValue contents (DER). */
  value: Uint8Array;
}

export interface CertificationRequest {
  der: Buffer;
  /** SHA-256 of the DER, lowercase hex: names the request in the audit log. */
  sha256: string;
  /** certificationRequestInfo, exactly as signed. */
  info: Uint8Array;
  /** The subject Name (DER). */
  subject: Uint8Array;
  /** commonName values in the subject. */
  commonNames: string[];
  /**
   * Every e-mail address the request names: subject emailAddress, then subjectAltName
   * rfc822Name and SmtpUTF8Mailbox (RFC 9598: an internationalised address, UTF-8) in order.
   */
  emails: string[];
  /** Requested subjectAltName entries that are not e-mail addresses (their GeneralName tags). */
  otherNames: number[];
  /** Subject attributes other than commonName and emailAddress, by OID. */
  otherSubjectAttributes: string[];
  spki: Uint8Array;
  publicKey: KeyObject;
  /** Extensions asked for in an extensionRequest attribute, by OID. */
  extensions: ReadonlyMap<string, RequestedExtension>;
  signatureAlgorithm: string;
  /** Internal: what verifyProofOfPossession checks. */
  signature: { algorithm: Tlv; value: Tlv };
}

/** Reads one request (PEM or DER). MALFORMED for anything else; LIMIT when it is too large. */
export function parseCertificationRequest(input: Uint8Array): CertificationRequest {
  if (input.length > MAX_REQUEST_BYTES) throw new KakitomeError('LIMIT', `The certification request is ${input.length} bytes; at most ${MAX_REQUEST_BYTES} are read.`);
  const der = isPem(input) ? fromPem(input) : Buffer.from(input);
  const f = decode(der, { der: true }).fields('CertificationRequest');
  const infoT = f.expect(Tag.SEQUENCE, 'certificationRequestInfo');
  const algorithm = f.expect(Tag.SEQUENCE, 'signatureAlgorithm');
  const value = f.expect(Tag.BIT_STRING, 'signature');
  f.end();
  const info = infoT.fields('CertificationRequestInfo');
  if (readSmallInt(info.expect(Tag.INTEGER, 'version'), 'version') !== 0) malformed('certification request version is not v1(0)');
  const subjectT = info.expect(Tag.SEQUENCE, 'subject');
  const spkiT = info.expect(Tag.SEQUENCE, 'subjectPKInfo');
  const attributes = info.expect(0xa0, 'attributes');
  info.end();

  const names = readSubject(subjectT);
  const extensions = readExtensionRequest(attributes);
  const san = extensions.get(OID.subjectAltName);
  const alt = san ? readAltNames(san.value) : { emails: [], other: [] };
  const sigAlg = readOid(algorithm.children()[0] ?? malformed('empty AlgorithmIdentifier'));
  return {
    der,
    sha256: createHash('sha256').update(der).digest('hex'),
    info: infoT.bytes,
    subject: subjectT.bytes,
    commonNames: names.commonNames,
    emails: [...names.emails, ...alt.emails],
    otherNames: alt.other,
    otherSubjectAttributes: names.other,
    spki: spkiT.bytes,
    publicKey: readPublicKey(spkiT),
    extensions,
    signatureAlgorithm: sigAlg,
    signature: { algorithm, value },
  };
}

/**
 * Proof of possession (RFC 2986 3, RFC 4211 4): the request's signature verifies
 * with the public key it carries. BAD_SIG otherwise; WEAK_ALG for MD5 and SHA-1
 * (a request signed with them proves little and S/MIME BR 7.1.3.2 refuses them).
 */
export function verifyProofOfPossession(r: CertificationRequest): void {
  const hash = hashOfAlgorithm(r.signatureAlgorithm);
  if (hash === 'md5' || hash === 'sha1') throw new KakitomeError('WEAK_ALG', `The certification request is signed with ${hash.toUpperCase()}; sign it with SHA-256 or better (openssl req -sha256).`);
  if (!verifySignatureValue(r.signature.algorithm, r.info, r.signature.value, r.publicKey)) {
    throw new KakitomeError('BAD_SIG', 'The certification request\'s signature does not verify with the public key it carries: it does not prove possession of the private key (altered, or signed with another key).');
  }
}

function fromPem(input: Uint8Array): Buffer {
  const blocks = decodePem(Buffer.from(input).toString('latin1')).filter((b) => b.label === 'CERTIFICATE REQUEST' || b.label === 'NEW CERTIFICATE REQUEST');
  if (blocks.length !== 1) malformed(blocks.length ? 'more than one certification request in the file' : 'no CERTIFICATE REQUEST PEM block');
  return blocks[0]!.der;
}

function readSubject(name: Tlv): { commonNames: string[]; emails: string[]; other: string[] } {
  const out = { commonNames: [] as string[], emails: [] as string[], other: [] as string[] };
  for (const rdn of name.children()) {
    if (rdn.tag !== Tag.SET) malformed('subject: RelativeDistinguishedName is not a SET');
    for (const atv of rdn.children()) {
      const f = atv.fields('AttributeTypeAndValue');
      const type = readOid(f.expect(Tag.OID, 'type'));
      const v = f.next('value');
      f.end();
      if (type === OID.commonName) out.commonNames.push(readString(v, 'commonName'));
      else if (type === OID.emailAddress) {
        if (v.tag !== Tag.IA5_STRING) malformed('subject emailAddress is not an IA5String (RFC 5280 4.1.2.6)');
        out.emails.push(readAsciiAddress(v.value, 'subject emailAddress'));
      } else out.other.push(type);
    }
  }
  return out;
}

/** The extensions of the one extensionRequest attribute; other attributes (challengePassword...) are not read. */
function readExtensionRequest(attributes: Tlv): Map<string, RequestedExtension> {
  const exts = new Map<string, RequestedExtension>();
  let seen = false;
  for (const attr of attributes.children()) {
    const f = attr.fields('Attribute');
    const type = readOid(f.expect(Tag.OID, 'type'));
    const values = f.expect(Tag.SET, 'values').children();
    f.end();
    if (type !== OID.extensionRequest) continue;
    if (seen || values.length !== 1) malformed('a certification request must carry one extensionRequest with one value');
    seen = true;
    for (const e of values[0]!.children()) {
      const ef = e.fields('Extension');
      const id = readOid(ef.expect(Tag.OID, 'extnID'));
      const crit = ef.optional(Tag.BOOLEAN);
      const value = readOctetString(ef.expect(Tag.OCTET_STRING, 'extnValue'), 'extnValue');
      ef.end();
      if (exts.has(id)) malformed(`extension ${id} requested twice`);
      exts.set(id, { critical: crit ? readBoolean(crit) : false, value });
    }
  }
  return exts;
}

/**
 * An IA5String address: ASCII only. Its bytes were read one character each, so
 * UTF-8 "bób" became "bÃ³b" and was certified under that name; an internationalised
 * address has its own form (SmtpUTF8Mailbox, RFC 9598: readSmtpUtf8Mailbox).
 */
function readAsciiAddress(bytes: Uint8Array, what: string): string {
  if (bytes.some((b) => b > 0x7f)) malformed(`${what} is not ASCII (an IA5String, RFC 5280 4.2.1.6; an internationalised address is an SmtpUTF8Mailbox, RFC 9598)`);
  return Buffer.from(bytes).toString('latin1');
}

function readAltNames(value: Uint8Array): { emails: string[]; other: number[] } {
  const out = { emails: [] as string[], other: [] as number[] };
  const seq = decode(value, { der: true });
  if (seq.tag !== Tag.SEQUENCE) malformed('subjectAltName is not a SEQUENCE');
  for (const gn of seq.children()) {
    const mailbox = gn.tag === 0x81 ? readAsciiAddress(gn.value, 'subjectAltName rfc822Name') : gn.tag === 0xa0 ? readSmtpUtf8Mailbox(gn) : undefined;
    if (mailbox !== undefined) out.emails.push(mailbox);
    else out.other.push(gn.tag);
  }
  return out;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * An otherName (RFC 5280 4.2.1.6): the address of an SmtpUTF8Mailbox (RFC 9598 3,
 * id-on-SmtpUTF8Mailbox: a UTF8String, read strictly: bytes that are no UTF-8 are
 * MALFORMED, never replaced), else undefined (another otherName type). What it holds
 * is only asked for: the CA's profile certifies the address in its own form
 * (issue-mailbox-certificate.ts, certifiedMailbox: NFC, 64 octets, U-label domain,
 * an rfc822Name when the local part is ASCII) or refuses it.
 */
function readSmtpUtf8Mailbox(gn: Tlv): string | undefined {
  const f = gn.fields('OtherName');
  const typeId = readOid(f.expect(Tag.OID, 'type-id'));
  const value = f.expect(0xa0, 'value');
  f.end();
  if (typeId !== OID.smtpUtf8Mailbox) return undefined;
  const inner = value.children();
  if (inner.length !== 1 || inner[0]!.tag !== Tag.UTF8_STRING) malformed('subjectAltName SmtpUTF8Mailbox is not a UTF8String (RFC 9598 3)');
  try {
    return strictUtf8.decode(inner[0]!.value);
  } catch {
    return malformed('subjectAltName SmtpUTF8Mailbox is not UTF-8');
  }
}

function readPublicKey(spkiT: Tlv): KeyObject {
  const f = spkiT.fields('SubjectPublicKeyInfo');
  const alg = readOid(f.expect(Tag.SEQUENCE, 'algorithm').children()[0] ?? malformed('empty AlgorithmIdentifier'));
  const bits = readBitString(f.expect(Tag.BIT_STRING, 'subjectPublicKey'), 'subjectPublicKey');
  f.end();
  // RFC 5480 2.2: no hybrid EC points (one key, two encodings); as Certificate reads them.
  if (alg === OID.ecPublicKey && bits.bytes[0] !== 0x04 && bits.bytes[0] !== 0x02 && bits.bytes[0] !== 0x03) malformed('EC public key is not an uncompressed or compressed point (RFC 5480 2.2)');
  try {
    return createPublicKey({ key: Buffer.from(spkiT.bytes), format: 'der', type: 'spki' });
  } catch (e) {
    throw new KakitomeError('UNSUPPORTED_ALG', `The certification request's public key (${alg}) cannot be read: an unknown or damaged key type.`, { cause: e });
  }
}
