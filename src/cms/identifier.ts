/**
 * Signer and recipient identifiers (RFC 5652 5.3, 6.2.1):
 *   SignerIdentifier ::= CHOICE { issuerAndSerialNumber IssuerAndSerialNumber,
 *                                 subjectKeyIdentifier [0] SubjectKeyIdentifier }
 * RecipientIdentifier has the same shape; KeyAgreeRecipientIdentifier uses
 * rKeyId [0] IMPLICIT RecipientKeyIdentifier (constructed) instead.
 */
import { Tag, type Tlv, readIntegerBytes } from '../asn1/ber.ts';
import { sequence, implicit, tlv } from '../asn1/der.ts';
import { malformed, KakitomeError } from '../errors.ts';
import type { Certificate } from '../x509/certificate.ts';

export type CmsIdentifier =
  | { kind: 'issuerAndSerialNumber'; issuer: Uint8Array; serial: Uint8Array }
  | { kind: 'subjectKeyIdentifier'; keyId: Uint8Array };

export type IdentifierKind = CmsIdentifier['kind'];

export function parseIssuerAndSerial(t: Tlv): CmsIdentifier {
  const f = t.fields('IssuerAndSerialNumber');
  const issuer = f.expect(Tag.SEQUENCE, 'issuer').bytes;
  const serial = readIntegerBytes(f.expect(Tag.INTEGER, 'serialNumber'), 'serialNumber');
  f.end();
  return { kind: 'issuerAndSerialNumber', issuer, serial };
}

/** SignerIdentifier / RecipientIdentifier. */
export function parseIdentifier(t: Tlv): CmsIdentifier {
  if (t.tag === Tag.SEQUENCE) return parseIssuerAndSerial(t);
  if (t.tag === 0x80) {
    if (t.value.length === 0) malformed('empty subjectKeyIdentifier');
    return { kind: 'subjectKeyIdentifier', keyId: t.value };
  }
  malformed(`identifier has tag 0x${t.tag.toString(16)}`);
}

export function encodeIdentifier(id: CmsIdentifier): Buffer {
  if (id.kind === 'issuerAndSerialNumber') return sequence(id.issuer, tlv(Tag.INTEGER, id.serial));
  return implicit(0, false, id.keyId);
}

/** The identifier of `cert` in the requested form. */
export function identifierFor(cert: Certificate, kind: IdentifierKind = 'issuerAndSerialNumber'): CmsIdentifier {
  if (kind === 'issuerAndSerialNumber') return { kind, issuer: cert.issuer, serial: cert.serial };
  const keyId = cert.subjectKeyIdentifier;
  if (!keyId) throw new KakitomeError('KEY_INVALID', `Certificate "${cert.subjectText}" has no subjectKeyIdentifier; identify it by issuer and serial number instead.`);
  return { kind, keyId };
}

export function identifierMatches(id: CmsIdentifier, cert: Certificate): boolean {
  return id.kind === 'issuerAndSerialNumber' ? cert.matchesIssuerSerial(id.issuer, id.serial) : cert.matchesSubjectKeyId(id.keyId);
}

/** The first certificate the identifier names. */
export function findCertificate(id: CmsIdentifier, certs: Iterable<Certificate>): Certificate | undefined {
  for (const c of certs) if (identifierMatches(id, c)) return c;
  return undefined;
}

/** A short human-readable form, for verdicts and errors. */
export function describeIdentifier(id: CmsIdentifier): string {
  return id.kind === 'issuerAndSerialNumber'
    ? `serial ${Buffer.from(id.serial).toString('hex').toUpperCase()}`
    : `key id ${Buffer.from(id.keyId).toString('hex').toUpperCase()}`;
}
