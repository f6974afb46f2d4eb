/**
 * Issuing X.509 v3 certificates (RFC 5280) signed with node:crypto. Used by the
 * internal CA and by the tests, which mint every certificate at run time.
 */
import { createHash, createPublicKey, randomBytes, type KeyObject } from 'node:crypto';
import { sequence, set, oid, utf8String, ia5String, tlv, integer, unsignedInteger, time, explicit, octetString, boolean, bitString, implicit } from '../asn1/der.ts';
import { Tag, decode, readBitString } from '../asn1/ber.ts';
import { OID } from '../asn1/oids.ts';
import { Certificate } from './certificate.ts';
import { x509SignatureAlgorithm, x509Sign, type HashName } from './algorithms.ts';

export interface NameSpec {
  commonName?: string;
  organization?: string;
  organizationalUnit?: string;
  country?: string;
  emailAddress?: string;
}

export type KeyUsageName = 'digitalSignature' | 'nonRepudiation' | 'keyEncipherment' | 'dataEncipherment' | 'keyAgreement' | 'keyCertSign' | 'cRLSign';

export interface IssueOptions {
  subject: NameSpec;
  /** The certified public key (SPKI is taken from it). */
  publicKey: KeyObject;
  /** Issuer certificate; omitted for a self-signed certificate. */
  issuer?: Certificate;
  /** The key that signs: the issuer's, or the subject's own when self-signed. */
  signingKey: KeyObject;
  hash?: HashName;
  serial?: Uint8Array;
  notBefore?: Date;
  notAfter?: Date;
  /** basicConstraints cA=TRUE (with an optional pathLenConstraint). */
  ca?: boolean | { pathLength: number };
  keyUsage?: KeyUsageName[];
  /** extKeyUsage OIDs (e.g. OID.emailProtection). */
  extKeyUsage?: string[];
  /** rfc822Name entries in subjectAltName (ASCII: IA5String). */
  emails?: string[];
  /** SmtpUTF8Mailbox otherName entries in subjectAltName (RFC 9598: a non-ASCII local part, UTF8String). */
  smtpUtf8Mailboxes?: string[];
  crlDistributionPoints?: string[];
  ocspUrls?: string[];
  caIssuerUrls?: string[];
  /** Extra extensions, already encoded as Extension SEQUENCEs. */
  extraExtensions?: Uint8Array[];
}

const KU_BITS: KeyUsageName[] = ['digitalSignature', 'nonRepudiation', 'keyEncipherment', 'dataEncipherment', 'keyAgreement', 'keyCertSign', 'cRLSign'];

export function encodeName(n: NameSpec): Buffer {
  const rdn = (type: string, value: Buffer) => set(sequence(oid(type), value));
  const parts: Buffer[] = [];
  if (n.country) parts.push(rdn('2.5.4.6', tlv(Tag.PRINTABLE_STRING, Buffer.from(n.country, 'latin1'))));
  if (n.organization) parts.push(rdn('2.5.4.10', utf8String(n.organization)));
  if (n.organizationalUnit) parts.push(rdn('2.5.4.11', utf8String(n.organizationalUnit)));
  if (n.commonName) parts.push(rdn(OID.commonName, utf8String(n.commonName)));
  if (n.emailAddress) parts.push(rdn(OID.emailAddress, ia5String(n.emailAddress)));
  return sequence(...parts);
}

function extension(id: string, critical: boolean, value: Uint8Array): Buffer {
  return critical ? sequence(oid(id), boolean(true), octetString(value)) : sequence(oid(id), octetString(value));
}

/** RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING contents. */
export function keyIdentifier(publicKey: KeyObject): Buffer {
  const spki = toPublic(publicKey).export({ format: 'der', type: 'spki' });
  const bits = readBitString(decode(spki).children()[1]!);
  return createHash('sha1').update(bits.bytes).digest();
}

/** The public half of a key (a public key is returned as is). */
export function toPublic(key: KeyObject): KeyObject {
  return key.type === 'public' ? key : createPublicKey(key);
}

export function issueCertificate(o: IssueOptions): Certificate {
  const spki = toPublic(o.publicKey).export({ format: 'der', type: 'spki' });
  const serial = o.serial ?? (() => {
    const s = randomBytes(16);
    s[0]! &= 0x7f;
    s[0]! |= 0x40; // positive and 16 octets long (CA/B BR: at least 64 bits of entropy)
    return s;
  })();
  const notBefore = o.notBefore ?? new Date(Date.now() - 60_000);
  const notAfter = o.notAfter ?? new Date(notBefore.getTime() + 365 * 86_400_000);
  const subject = encodeName(o.subject);
  const issuerName = o.issuer ? Buffer.from(o.issuer.subject) : subject;
  const ski = keyIdentifier(o.publicKey);
  const aki = o.issuer ? (o.issuer.subjectKeyIdentifier ?? keyIdentifier(o.issuer.publicKey)) : ski;

  const exts: Uint8Array[] = [];
  if (o.ca) {
    const pl = typeof o.ca === 'object' ? [integer(o.ca.pathLength)] : [];
    exts.push(extension(OID.basicConstraints, true, sequence(boolean(true), ...pl)));
  }
  if (o.keyUsage?.length) {
    let bits = 0;
    for (const k of o.keyUsage) bits |= 0x8000 >> KU_BITS.indexOf(k);
    const bytes = bits & 0xff ? Buffer.of(bits >> 8, bits & 0xff) : Buffer.of(bits >> 8);
    // DER: trailing zero bits are dropped and counted as unused (X.690 11.2.2).
    const last = bytes[bytes.length - 1]!;
    let unused = 0;
    while (unused < 7 && !(last & (1 << unused))) unused++;
    exts.push(extension(OID.keyUsage, true, bitString(bytes, unused)));
  }
  if (o.extKeyUsage?.length) exts.push(extension(OID.extKeyUsage, false, sequence(...o.extKeyUsage.map(oid))));
  const altNames = [
    ...(o.emails ?? []).map((e) => implicit(1, false, Buffer.from(e, 'latin1'))),
    // otherName [0] { type-id, value [0] EXPLICIT UTF8String }
    ...(o.smtpUtf8Mailboxes ?? []).map((m) => implicit(0, true, oid(OID.smtpUtf8Mailbox), explicit(0, utf8String(m)))),
  ];
  if (altNames.length) exts.push(extension(OID.subjectAltName, false, sequence(...altNames)));
  exts.push(extension(OID.subjectKeyIdentifier, false, octetString(ski)));
  exts.push(extension(OID.authorityKeyIdentifier, false, sequence(implicit(0, false, aki))));
  if (o.crlDistributionPoints?.length) {
    // DistributionPoint { distributionPoint [0] { fullName [0] GeneralNames } }
    const dps = o.crlDistributionPoints.map((u) => sequence(explicit(0, implicit(0, true, implicit(6, false, Buffer.from(u, 'latin1'))))));
    exts.push(extension(OID.crlDistributionPoints, false, sequence(...dps)));
  }
  const aia: Buffer[] = [];
  for (const u of o.ocspUrls ?? []) aia.push(sequence(oid('1.3.6.1.5.5.7.48.1'), implicit(6, false, Buffer.from(u, 'latin1'))));
  for (const u of o.caIssuerUrls ?? []) aia.push(sequence(oid('1.3.6.1.5.5.7.48.2'), implicit(6, false, Buffer.from(u, 'latin1'))));
  if (aia.length) exts.push(extension(OID.authorityInfoAccess, false, sequence(...aia)));
  exts.push(...(o.extraExtensions ?? []));

  const sigAlg = x509SignatureAlgorithm(o.signingKey, o.hash);
  const tbs = sequence(
    explicit(0, integer(2)),
    unsignedInteger(serial),
    sigAlg,
    issuerName,
    sequence(time(notBefore), time(notAfter)),
    subject,
    spki,
    explicit(3, sequence(...exts)),
  );
  const signature = x509Sign(o.signingKey, tbs, o.hash);
  return Certificate.fromDer(sequence(tbs, sigAlg, bitString(signature)));
}
