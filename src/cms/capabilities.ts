/**
 * S/MIME capability attributes (RFC 8551 2.5.2, 2.5.3):
 *
 *   SMIMECapabilities ::= SEQUENCE OF SMIMECapability
 *   SMIMECapability ::= SEQUENCE { capabilityID OBJECT IDENTIFIER, parameters ANY OPTIONAL }
 *   SMIMEEncryptionKeyPreference ::= CHOICE {
 *     issuerAndSerialNumber   [0] IssuerAndSerialNumber,
 *     receipentKeyId          [1] RecipientKeyIdentifier,
 *     subjectAltKeyIdentifier [2] SubjectKeyIdentifier }      -- IMPLICIT tags
 *
 * Signers announce them; the certificate directory harvests them to decide what to
 * send to that correspondent. Order is preference order (RFC 8551 2.5.2).
 */
import { Tag, type Tlv, readOid, readOctetString } from '../asn1/ber.ts';
import { sequence, oid, explicit, implicit, tlv } from '../asn1/der.ts';
import { OID } from '../asn1/oids.ts';
import { KakitomeError } from '../errors.ts';
import { DEFAULT_LIMITS } from '../limits.ts';
import type { CmsIdentifier } from './identifier.ts';
import { parseIssuerAndSerial } from './identifier.ts';
import type { Certificate } from '../x509/certificate.ts';

export interface SmimeCapability {
  /** capabilityID (dotted OID). */
  capabilityId: string;
  /** DER of the parameters, when present. */
  parameters?: Uint8Array;
}

function sha256Id(): Buffer {
  return sequence(oid(OID.sha256));
}

/**
 * RSAES-OAEP-params announcing SHA-256 and MGF1-SHA-256 (RFC 8551 2.7.1: OAEP with
 * SHA-256 is what we want to receive; RFC 4055 4.1).
 */
function oaepSha256Parameters(): Buffer {
  return sequence(explicit(0, sha256Id()), explicit(1, sequence(oid(OID.mgf1), sha256Id())));
}

/**
 * Our preferred list, most preferred first: authenticated encryption (RFC 8551 2.7
 * MUST: AES-GCM; SHOULD+: ChaCha20-Poly1305), then AES-CBC for older peers, then
 * key transport RSAES-OAEP and rsaEncryption (RFC 8551 2.7.1, 2.2).
 */
export const DEFAULT_CAPABILITIES: readonly SmimeCapability[] = Object.freeze([
  { capabilityId: OID.aes256_GCM },
  { capabilityId: OID.aes128_GCM },
  { capabilityId: OID.chacha20Poly1305 },
  { capabilityId: OID.aes256_CBC },
  { capabilityId: OID.aes192_CBC },
  { capabilityId: OID.aes128_CBC },
  { capabilityId: OID.rsaesOaep, parameters: oaepSha256Parameters() },
  { capabilityId: OID.rsaEncryption },
]);

/** DER SMIMECapabilities (the attribute value). */
export function encodeSmimeCapabilities(caps: readonly SmimeCapability[]): Buffer {
  return sequence(...caps.map((c) => (c.parameters ? sequence(oid(c.capabilityId), c.parameters) : sequence(oid(c.capabilityId)))));
}

/**
 * Parses an SMIMECapabilities value. Unknown capabilities are kept (they are
 * information, not instructions); structure errors are ATTR_INVALID.
 */
export function parseSmimeCapabilities(t: Tlv, maxCapabilities = DEFAULT_LIMITS.maxAttributes * 4): SmimeCapability[] {
  const bad = (why: string): never => {
    throw new KakitomeError('ATTR_INVALID', `SMIMECapabilities: ${why}.`);
  };
  if (t.tag !== Tag.SEQUENCE) bad('not a SEQUENCE');
  const items = t.children(maxCapabilities + 1);
  if (items.length > maxCapabilities) throw new KakitomeError('LIMIT', `SMIMECapabilities: more than ${maxCapabilities} entries.`);
  const out: SmimeCapability[] = [];
  for (const c of items) {
    if (c.tag !== Tag.SEQUENCE) bad('an entry is not a SEQUENCE');
    const parts = c.children();
    if (parts.length < 1 || parts.length > 2 || parts[0]!.tag !== Tag.OID) bad('an entry is not { capabilityID, parameters }');
    const cap: SmimeCapability = { capabilityId: readOid(parts[0]!) };
    if (parts[1]) cap.parameters = parts[1].bytes;
    out.push(cap);
  }
  return out;
}

/** DER SMIMEEncryptionKeyPreference naming `cert` by issuer and serial ([0] IMPLICIT). */
export function encodeEncryptionKeyPreference(cert: Certificate): Buffer {
  return implicit(0, true, cert.issuer, tlv(Tag.INTEGER, cert.serial));
}

/** Parses SMIMEEncryptionKeyPreference into an identifier (ATTR_INVALID when malformed). */
export function parseEncryptionKeyPreference(t: Tlv): CmsIdentifier {
  try {
    if (t.tag === 0xa0) return parseIssuerAndSerial(t);
    if (t.tag === 0x82) {
      if (t.value.length === 0) throw new Error('empty');
      return { kind: 'subjectKeyIdentifier', keyId: t.value };
    }
    if (t.tag === 0xa1) {
      // RecipientKeyIdentifier ::= SEQUENCE { subjectKeyIdentifier, date OPTIONAL, other OPTIONAL }
      const first = t.children()[0];
      if (!first) throw new Error('empty');
      return { kind: 'subjectKeyIdentifier', keyId: readOctetString(first, 'subjectKeyIdentifier') };
    }
  } catch (e) {
    throw new KakitomeError('ATTR_INVALID', 'SMIMEEncryptionKeyPreference is malformed.', { cause: e });
  }
  throw new KakitomeError('ATTR_INVALID', `SMIMEEncryptionKeyPreference has unknown choice tag 0x${t.tag.toString(16)}.`);
}
