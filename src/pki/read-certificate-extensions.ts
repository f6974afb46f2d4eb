/**
 * Decoding the X.509 extensions path validation, revocation and identity need
 * (RFC 5280 4.2; the subject's names, subjectAltName included, are read in
 * x509/certificate-mailboxes.ts). Hand-written on the project's strict reader (src/asn1/ber.ts)
 * rather than @peculiar/asn1-x509: each extension is a few fields, the reader
 * already rejects trailing data and bad lengths with coded errors, and it avoids
 * a second ASN.1 stack (asn1js + tslib + pvtsutils) for ~150 lines of schema.
 * Every reader fails with MALFORMED on a damaged extension: a certificate whose
 * constraints cannot be read must not be half-trusted.
 */
import { decode, Tag, readOid, readBoolean, readSmallInt, type Tlv } from '../asn1/ber.ts';
import { OID } from '../asn1/oids.ts';
import { KakitomeError, malformed } from '../errors.ts';
import type { Certificate } from '../x509/certificate.ts';
import { nameFormKey, readGeneralNames, readIa5, readSubjectAltNames } from '../x509/certificate-mailboxes.ts';

export const PKI_OID = {
  ocspSigning: '1.3.6.1.5.5.7.3.9',
  ocsp: '1.3.6.1.5.5.7.48.1',
  caIssuers: '1.3.6.1.5.5.7.48.2',
  ocspBasic: '1.3.6.1.5.5.7.48.1.1',
  ocspNonce: '1.3.6.1.5.5.7.48.1.2',
  ocspNoCheck: '1.3.6.1.5.5.7.48.1.5',
  crlNumber: '2.5.29.20',
  crlReason: '2.5.29.21',
  invalidityDate: '2.5.29.24',
  deltaCrlIndicator: '2.5.29.27',
  issuingDistributionPoint: '2.5.29.28',
  certificateIssuer: '2.5.29.29',
  freshestCrl: '2.5.29.46',
  policyConstraints: '2.5.29.36',
  inhibitAnyPolicy: '2.5.29.54',
  policyMappings: '2.5.29.33',
  issuerAltName: '2.5.29.18',
  subjectDirectoryAttributes: '2.5.29.9',
  anyPolicy: '2.5.29.32.0',
} as const;

function ext(cert: Certificate, id: string): Tlv | undefined {
  const e = cert.extensions.get(id);
  return e ? decode(e.value, { der: true }) : undefined;
}

export interface BasicConstraints {
  ca: boolean;
  pathLen?: number;
}

/** RFC 5280 4.2.1.9. */
export function readBasicConstraints(cert: Certificate): BasicConstraints | undefined {
  const t = ext(cert, OID.basicConstraints);
  if (!t) return undefined;
  const f = t.fields('BasicConstraints');
  const caT = f.optional(Tag.BOOLEAN);
  const plT = f.optional(Tag.INTEGER);
  f.end();
  const ca = caT ? readBoolean(caT) : false;
  return plT ? { ca, pathLen: readSmallInt(plT, 'pathLenConstraint') } : { ca };
}

/** RFC 5280 4.2.1.12: the KeyPurposeId OIDs. */
export function readExtKeyUsage(cert: Certificate): string[] | undefined {
  const t = ext(cert, OID.extKeyUsage);
  if (!t) return undefined;
  const out = t.children().map((c) => readOid(c, 'KeyPurposeId'));
  if (out.length === 0) malformed('empty extKeyUsage');
  return out;
}

export type GeneralSubtree =
  | { kind: 'rfc822'; value: string }
  | { kind: 'directoryName'; value: Uint8Array }
  /** `form`: nameFormKey of the constrained form. */
  | { kind: 'other'; tag: number; form: string };

export interface NameConstraints {
  permitted?: GeneralSubtree[];
  excluded?: GeneralSubtree[];
}

/** RFC 5280 4.2.1.10. minimum/maximum are absent in the profile and rejected if not. */
export function readNameConstraints(cert: Certificate): NameConstraints | undefined {
  const t = ext(cert, OID.nameConstraints);
  if (!t) return undefined;
  const f = t.fields('NameConstraints');
  const p = f.optional(0xa0);
  const x = f.optional(0xa1);
  f.end();
  if (!p && !x) malformed('empty NameConstraints');
  const subtrees = (s: Tlv): GeneralSubtree[] =>
    s.children().map((st) => {
      const parts = st.children();
      if (parts.length !== 1) malformed('GeneralSubtree with minimum/maximum (RFC 5280 4.2.1.10: MUST NOT be used)');
      const gn = parts[0]!;
      if (gn.tag === 0x81) return { kind: 'rfc822', value: readIa5(gn, 'rfc822Name constraint') };
      if (gn.tag === 0xa4) {
        const c = gn.children();
        if (c.length !== 1) malformed('directoryName constraint');
        return { kind: 'directoryName', value: c[0]!.bytes };
      }
      const typeId = gn.tag === 0xa0 ? readOid(gn.children()[0] ?? malformed('otherName constraint'), 'otherName constraint type-id') : undefined;
      return { kind: 'other', tag: gn.tag, form: nameFormKey(gn.tag, typeId) };
    });
  const out: NameConstraints = {};
  if (p) out.permitted = subtrees(p);
  if (x) out.excluded = subtrees(x);
  return out;
}

/** PolicyInformation policyIdentifiers (RFC 5280 4.2.1.4). */
export function readCertificatePolicies(cert: Certificate): string[] {
  const t = ext(cert, OID.certificatePolicies);
  if (!t) return [];
  return t.children().map((pi) => readOid(pi.children()[0] ?? malformed('PolicyInformation'), 'policyIdentifier'));
}

/** policyMappings (RFC 5280 4.2.1.5): issuerDomainPolicy → subjectDomainPolicy pairs, in order. */
export function readPolicyMappings(cert: Certificate): Array<[issuerDomainPolicy: string, subjectDomainPolicy: string]> | undefined {
  const t = ext(cert, PKI_OID.policyMappings);
  if (!t) return undefined;
  const out = t.children().map((m): [string, string] => {
    const f = m.fields('PolicyMapping');
    const pair: [string, string] = [readOid(f.expect(Tag.OID, 'issuerDomainPolicy')), readOid(f.expect(Tag.OID, 'subjectDomainPolicy'))];
    f.end();
    return pair;
  });
  if (out.length === 0) malformed('empty policyMappings');
  return out;
}

export interface PolicyConstraints {
  requireExplicitPolicy?: number;
  inhibitPolicyMapping?: number;
}

/** SkipCerts ::= INTEGER (0..MAX), as the contents of an IMPLICIT tag or an INTEGER. */
function readSkipCerts(t: Tlv, field: string): number {
  const v = t.value;
  if (v.length === 0 || v.length > 4 || v[0]! & 0x80 || (v.length > 1 && v[0] === 0 && !(v[1]! & 0x80))) malformed(`${field} is not a small non-negative INTEGER`);
  let n = 0;
  for (const b of v) n = n * 256 + b;
  return n;
}

/** policyConstraints (RFC 5280 4.2.1.11); an empty SEQUENCE is refused (MUST NOT be issued). */
export function readPolicyConstraints(cert: Certificate): PolicyConstraints | undefined {
  const t = ext(cert, PKI_OID.policyConstraints);
  if (!t) return undefined;
  const f = t.fields('PolicyConstraints');
  const r = f.optional(0x80);
  const m = f.optional(0x81);
  f.end();
  if (!r && !m) malformed('empty policyConstraints');
  const out: PolicyConstraints = {};
  if (r) out.requireExplicitPolicy = readSkipCerts(r, 'requireExplicitPolicy');
  if (m) out.inhibitPolicyMapping = readSkipCerts(m, 'inhibitPolicyMapping');
  return out;
}

/** inhibitAnyPolicy (RFC 5280 4.2.1.14): SkipCerts. */
export function readInhibitAnyPolicy(cert: Certificate): number | undefined {
  const t = ext(cert, PKI_OID.inhibitAnyPolicy);
  if (!t) return undefined;
  if (t.tag !== Tag.INTEGER) malformed('inhibitAnyPolicy is not an INTEGER');
  return readSkipCerts(t, 'inhibitAnyPolicy');
}

/** ReasonFlags (RFC 5280 4.2.1.13) as a mask: bit k set for named bit k (1 keyCompromise ... 8 aACompromise). */
export type ReasonMask = number;

/** Every reason a CRL can cover (bits 1 to 8; bit 0 is unused). */
export const ALL_REASONS: ReasonMask = 0x1fe;

/** Reads a ReasonFlags BIT STRING (any tag) into a mask of the reasons 1 to 8. */
export function readReasonFlags(t: Tlv): ReasonMask {
  const v = t.value;
  if (v.length === 0 || v[0]! > 7 || (v.length === 1 && v[0] !== 0)) malformed('ReasonFlags');
  let mask = 0;
  for (let k = 1; k <= 8; k++) {
    const byte = v[1 + (k >> 3)];
    if (byte !== undefined && byte & (0x80 >> (k & 7))) mask |= 1 << k;
  }
  return mask;
}

export interface DistributionPoint {
  /** URIs of the fullName (where to fetch the CRL). */
  uris: string[];
  /** The reasons the CRLs here cover; undefined: all of them. */
  reasons?: ReasonMask;
  /** cRLIssuer directoryNames (DER): an indirect CRL issuer the CA named; undefined when the CA issues its CRL itself. */
  crlIssuer?: Uint8Array[];
}

/** The DistributionPoints of CRLDistributionPoints or FreshestCRL (RFC 5280 4.2.1.13, 4.2.1.15), in order. */
export function readDistributionPoints(cert: Certificate, id: string = OID.crlDistributionPoints): DistributionPoint[] {
  const t = ext(cert, id);
  if (!t) return [];
  return t.children().map((dp) => {
    const f = dp.fields('DistributionPoint');
    const name = f.optional(0xa0);
    const reasons = f.optional(0x81);
    const issuer = f.optional(0xa2);
    f.end();
    const out: DistributionPoint = { uris: [] };
    // nameRelativeToCRLIssuer ([1]) names no URI to fetch.
    for (const dpn of name?.children() ?? []) if (dpn.tag === 0xa0) out.uris.push(...readGeneralNames(dpn).uris);
    if (reasons) out.reasons = readReasonFlags(reasons);
    if (issuer) {
      out.crlIssuer = readGeneralNames(issuer).directoryNames;
      if (out.crlIssuer.length === 0) malformed('cRLIssuer without a directoryName');
    }
    return out;
  });
}

/** URIs of the fullName of each DistributionPoint (CRLDistributionPoints and FreshestCRL share the syntax). */
export function readDistributionPointUris(cert: Certificate, id: string = OID.crlDistributionPoints): string[] {
  return readDistributionPoints(cert, id).flatMap((dp) => dp.uris);
}

export interface AuthorityInfoAccess {
  ocsp: string[];
  caIssuers: string[];
}

/** RFC 5280 4.2.2.1. */
export function readAuthorityInfoAccess(cert: Certificate): AuthorityInfoAccess {
  const out: AuthorityInfoAccess = { ocsp: [], caIssuers: [] };
  const t = ext(cert, OID.authorityInfoAccess);
  if (!t) return out;
  for (const ad of t.children()) {
    const f = ad.fields('AccessDescription');
    const method = readOid(f.expect(Tag.OID, 'accessMethod'));
    const loc = f.next('accessLocation');
    f.end();
    if (loc.tag !== 0x86) continue;
    const uri = readIa5(loc, 'accessLocation');
    if (method === PKI_OID.ocsp) out.ocsp.push(uri);
    else if (method === PKI_OID.caIssuers) out.caIssuers.push(uri);
  }
  return out;
}

/** keyIdentifier of authorityKeyIdentifier (RFC 5280 4.2.1.1), if present. */
export function readAuthorityKeyIdentifier(cert: Certificate): Uint8Array | undefined {
  const t = ext(cert, OID.authorityKeyIdentifier);
  if (!t) return undefined;
  const k = t.children().find((c) => c.tag === 0x80);
  return k?.value;
}

/** Each extension a verifier reads, by name, with its reader (subjectAltName first: identity and name constraints read it on every path). */
const VERIFIER_READS: ReadonlyArray<[name: string, read: (cert: Certificate) => unknown]> = [
  ['subjectAltName', readSubjectAltNames],
  ['keyUsage', (c) => c.keyUsage],
  ['extendedKeyUsage', readExtKeyUsage],
  ['basicConstraints', readBasicConstraints],
  ['nameConstraints', readNameConstraints],
  ['certificatePolicies', readCertificatePolicies],
  ['policyMappings', readPolicyMappings],
  ['policyConstraints', readPolicyConstraints],
  ['inhibitAnyPolicy', readInhibitAnyPolicy],
  ['cRLDistributionPoints', (c) => readDistributionPoints(c)],
  ['freshestCRL', (c) => readDistributionPoints(c, PKI_OID.freshestCrl)],
  ['authorityInfoAccess', readAuthorityInfoAccess],
  ['authorityKeyIdentifier', readAuthorityKeyIdentifier],
  ['subjectKeyIdentifier', (c) => c.subjectKeyIdentifier],
];

/**
 * Why a certificate cannot be judged: the first extension a verifier reads that is
 * damaged, named with the reader's reason ("its subjectAltName cannot be read
 * (...)"), or undefined when every one reads. A verifier asks this before it reads
 * the certificate for a decision, so a damaged certificate gets a verdict that says
 * so (MALFORMED in the trust report) instead of ending verification with a thrown
 * MALFORMED and no verdict at all. Each reader still throws on its own: nothing
 * reads half an extension. `only`: the extensions (by the names above) to check,
 * when the verifier reads no others of this certificate (a trust anchor's).
 */
export function unreadableExtension(cert: Certificate, only?: readonly string[]): string | undefined {
  for (const [name, read] of VERIFIER_READS) {
    if (only && !only.includes(name)) continue;
    try {
      read(cert);
    } catch (e) {
      if (e instanceof KakitomeError && e.code === 'MALFORMED') return `its ${name} extension cannot be read (${e.message.replace(/^Malformed input: /, '').replace(/\.$/, '')})`;
      throw e;
    }
  }
  return undefined;
}
