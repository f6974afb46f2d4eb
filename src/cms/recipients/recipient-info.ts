/**
 * RecipientInfo (RFC 5652 6.2):
 *   RecipientInfo ::= CHOICE { ktri KeyTransRecipientInfo, kari [1] KeyAgreeRecipientInfo,
 *     kekri [2] KEKRecipientInfo, pwri [3] PasswordRecipientInfo, ori [4] OtherRecipientInfo }
 * Parsing dispatches on the tag; building on the recipient certificate's key type.
 * kekri, pwri and unknown ori types are kept as 'other' so that an envelope
 * addressed to us and to a password recipient still opens.
 */
import { Tag, type Tlv } from '../../asn1/ber.ts';
import { KakitomeError, malformed } from '../../errors.ts';
import type { CmsIdentifier } from '../identifier.ts';
import { buildKeyAgreeRecipientInfo, parseKeyAgreeRecipientInfo, type KeyAgreeRecipient } from './key-agreement.ts';
import { buildKemRecipientInfo, parseKemRecipientInfo, type KemRecipient } from './kem.ts';
import { buildKeyTransRecipientInfo, parseKeyTransRecipientInfo, type KeyTransRecipient } from './key-transport.ts';
import type { RecipientOptions } from './recipient-options.ts';
import type { Certificate } from '../../x509/certificate.ts';
import { refuseWeakRecipientKey } from '../../x509/key-management-usage.ts';
import { OID } from '../../asn1/oids.ts';

export interface OtherRecipient {
  kind: 'other';
  index: number;
  /** kekri, pwri, or an ori of a type we do not implement. */
  type: 'kekri' | 'pwri' | 'ori';
}

export type ParsedRecipient = KeyTransRecipient | KeyAgreeRecipient | KemRecipient | OtherRecipient;

export function parseRecipientInfo(t: Tlv, index: number, maxRecipients: number): ParsedRecipient {
  switch (t.tag) {
    case Tag.SEQUENCE:
      return parseKeyTransRecipientInfo(t, index);
    case 0xa1:
      return parseKeyAgreeRecipientInfo(t, index, maxRecipients);
    case 0xa2:
      return { kind: 'other', index, type: 'kekri' };
    case 0xa3:
      return { kind: 'other', index, type: 'pwri' };
    case 0xa4:
      return parseKemRecipientInfo(t, index) ?? { kind: 'other', index, type: 'ori' };
    default:
      malformed(`RecipientInfo has tag 0x${t.tag.toString(16)}`);
  }
}

/** Every identifier a recipient names (a KARI names one per RecipientEncryptedKey). */
export function recipientIdentifiers(r: ParsedRecipient): CmsIdentifier[] {
  switch (r.kind) {
    case 'ktri':
    case 'kemri':
      return [r.rid];
    case 'kari':
      return r.recipientEncryptedKeys.map((k) => k.rid);
    default:
      return [];
  }
}

/**
 * One RecipientInfo (DER) per recipient, in the order given: key transport for
 * RSA, key agreement for EC/X25519/X448, KEMRecipientInfo for ML-KEM. Every
 * recipient's key is judged first (refuseWeakRecipientKey: WEAK_ALG for an RSA key
 * with exponent 1 or under 2048 bits, an EC key off P-256/P-384/P-521...): the one
 * place a recipient's key is taken, for every encryption, in memory or streamed.
 */
export function buildRecipientInfos(cek: Buffer, recipients: RecipientOptions[]): Buffer[] {
  for (const r of recipients) refuseWeakRecipientKey(r.certificate);
  return recipients.map((r) => {
    const t = r.certificate.publicKey.asymmetricKeyType;
    switch (t) {
      case 'rsa':
        checkRecipientUsage(r.certificate, 'keyEncipherment');
        return buildKeyTransRecipientInfo(cek, r);
      case 'ec':
      case 'x25519':
      case 'x448':
        checkRecipientUsage(r.certificate, 'keyAgreement');
        return buildKeyAgreeRecipientInfo(cek, r);
      case 'ml-kem-512':
      case 'ml-kem-768':
      case 'ml-kem-1024':
        checkRecipientUsage(r.certificate, 'keyEncipherment');
        return buildKemRecipientInfo(cek, r);
      default:
        throw new KakitomeError('KEY_INVALID', `Cannot encrypt to certificate "${r.certificate.subjectText}": a ${t} key cannot receive a content key.`);
    }
  });
}

/**
 * A certificate may receive content keys only if its keyUsage allows it (RFC 8550
 * 4.4.2: keyEncipherment for RSA and, per RFC 9936, ML-KEM; keyAgreement for ECDH,
 * X25519, X448) and its extKeyUsage, when present, includes emailProtection or
 * anyExtendedKeyUsage. This refuses, for example, encrypting to a CA certificate.
 * Absent extensions mean no restriction (RFC 5280 4.2.1.3, 4.2.1.12).
 */
function checkRecipientUsage(cert: Certificate, needed: 'keyEncipherment' | 'keyAgreement'): void {
  const ku = cert.keyUsage;
  if (ku && !ku.has(needed)) {
    throw new KakitomeError('CERT_USAGE', `Cannot encrypt to certificate "${cert.subjectText}": its keyUsage does not allow ${needed}. Use the recipient's encryption certificate.`);
  }
  const eku = cert.extendedKeyUsage;
  if (eku && !eku.includes(OID.emailProtection) && !eku.includes(OID.anyExtendedKeyUsage)) {
    throw new KakitomeError('CERT_USAGE', `Cannot encrypt to certificate "${cert.subjectText}": it is not issued for e-mail protection (extKeyUsage).`);
  }
}

/** RFC 5652 6.1 version rule for the RecipientInfos part: 3 with ori/pwri, 0 if all are v0 KTRIs, else 2. */
export function envelopedDataVersion(recipientInfos: Uint8Array[]): number {
  let allV0 = true;
  for (const ri of recipientInfos) {
    if (ri[0] === 0xa4 || ri[0] === 0xa3) return 3;
    if (ri[0] !== Tag.SEQUENCE) allV0 = false;
    // A KTRI's version is its first field: 02 01 00 follows the SEQUENCE header.
    else if (!isVersionZero(ri)) allV0 = false;
  }
  return allV0 ? 0 : 2;
}

function isVersionZero(ri: Uint8Array): boolean {
  const lenByte = ri[1]!;
  const hdr = lenByte < 0x80 ? 2 : 2 + (lenByte & 0x7f);
  return ri[hdr] === 0x02 && ri[hdr + 1] === 0x01 && ri[hdr + 2] === 0x00;
}
