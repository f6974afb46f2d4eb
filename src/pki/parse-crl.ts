/**
 * Parsing a CRL (RFC 5280 5.1) into what revocation checking needs. On the
 * project's strict reader for the same reasons as read-certificate-extensions.ts;
 * entries are indexed by serial so a 100,000-entry CRL is looked up in O(1) once
 * parsed and cached. DER is required: the signature covers the TBS bytes as sent.
 */
import { decode, Tag, readOid, readBoolean, readTime, readOctetString, readIntegerBytes, type Tlv } from '../asn1/ber.ts';
import { OID } from '../asn1/oids.ts';
import { malformed } from '../errors.ts';
import { PKI_OID, readReasonFlags, type ReasonMask } from './read-certificate-extensions.ts';
import { readGeneralNames } from '../x509/certificate-mailboxes.ts';
import { normaliseName } from './match-name-constraints.ts';

export const CRL_REASONS = ['unspecified', 'keyCompromise', 'cACompromise', 'affiliationChanged', 'superseded', 'cessationOfOperation', 'certificateHold', 'unused7', 'removeFromCRL', 'privilegeWithdrawn', 'aACompromise'];

export function reasonName(code: number | undefined): string | undefined {
  return code === undefined ? undefined : (CRL_REASONS[code] ?? `reason ${code}`);
}

export interface CrlEntry {
  revocationDate: Date;
  reason?: number;
}

export interface IssuingDistributionPoint {
  uris: string[];
  onlyContainsUserCerts: boolean;
  onlyContainsCACerts: boolean;
  /** The reasons this CRL covers (a reason-partitioned CRL); undefined: all. */
  onlySomeReasons?: ReasonMask;
  /** The CRL may list certificates of other issuers (certificateIssuer entry extension). */
  indirectCRL: boolean;
  /** nameRelativeToCRLIssuer or onlyContainsAttributeCerts: a scope that never covers a mail certificate here. */
  unsupportedScope: boolean;
}

export interface ParsedCrl {
  der: Uint8Array;
  tbs: Uint8Array;
  signatureAlgorithm: Tlv;
  signatureAlgorithmOid: string;
  signatureValue: Tlv;
  /** issuer Name, DER. */
  issuer: Uint8Array;
  thisUpdate: Date;
  nextUpdate?: Date;
  crlNumber?: bigint;
  /** Set on a delta CRL: the number of the base CRL it completes (RFC 5280 5.2.4). */
  deltaBase?: bigint;
  freshestCrlUris: string[];
  idp?: IssuingDistributionPoint;
  /** Unknown critical CRL or entry extensions: such a CRL MUST NOT be used (RFC 5280 5.2, 5.3). */
  unusable?: string;
  /**
   * Keyed by the serial's content octets in hex (uppercase) for the CRL issuer's
   * own certificates; in an indirect CRL, entries of another certificate issuer
   * (certificateIssuer, RFC 5280 5.3.3) are keyed `${issuerKey(name)}/${serial}`.
   * Use findCrlEntry.
   */
  entries: Map<string, CrlEntry>;
}

/** A certificate issuer's name as compared in CRL scopes: normalised, so re-encoding a value cannot dodge a match. */
export function issuerKey(name: Uint8Array): string {
  return JSON.stringify(normaliseName(name));
}

/** The entry for the certificate `serial` issued by `issuer` (DER Name), if the CRL lists it. */
export function findCrlEntry(crl: ParsedCrl, issuer: Uint8Array, serial: Uint8Array): CrlEntry | undefined {
  const hex = Buffer.from(serial).toString('hex').toUpperCase();
  const own = Buffer.compare(issuer, crl.issuer) === 0 || issuerKey(issuer) === issuerKey(crl.issuer);
  return crl.entries.get(own ? hex : `${issuerKey(issuer)}/${hex}`);
}

const KNOWN_CRL_EXTENSIONS = new Set<string>([PKI_OID.crlNumber, PKI_OID.deltaCrlIndicator, PKI_OID.issuingDistributionPoint, OID.authorityKeyIdentifier, PKI_OID.freshestCrl, PKI_OID.issuerAltName]);

export function parseCrl(der: Uint8Array, maxEntries = 1_000_000): ParsedCrl {
  const root = decode(der, { der: true });
  const top = root.fields('CertificateList');
  const tbsT = top.expect(Tag.SEQUENCE, 'tbsCertList');
  const sigAlg = top.expect(Tag.SEQUENCE, 'signatureAlgorithm');
  const sigVal = top.expect(Tag.BIT_STRING, 'signatureValue');
  top.end();
  const f = tbsT.fields('TBSCertList');
  const ver = f.optional(Tag.INTEGER);
  if (ver && (ver.value.length !== 1 || ver.value[0] !== 1)) malformed('CRL version is not v2');
  const innerAlg = f.expect(Tag.SEQUENCE, 'signature');
  // RFC 5280 5.1.1.2: the two signature fields MUST match.
  if (Buffer.compare(innerAlg.bytes, sigAlg.bytes) !== 0) malformed('CRL signature algorithm fields differ');
  const issuer = f.expect(Tag.SEQUENCE, 'issuer').bytes;
  const thisUpdate = readTime(f.next('thisUpdate'), 'thisUpdate');
  const nu = f.peek();
  const nextUpdate = nu && (nu.tag === Tag.UTC_TIME || nu.tag === Tag.GENERALIZED_TIME) ? readTime(f.next('nextUpdate'), 'nextUpdate') : undefined;
  const revoked = f.optional(Tag.SEQUENCE);
  const extsT = f.optional(0xa0);
  f.end();

  const crl: ParsedCrl = {
    der,
    tbs: tbsT.bytes,
    signatureAlgorithm: sigAlg,
    signatureAlgorithmOid: readOid(sigAlg.children()[0] ?? malformed('AlgorithmIdentifier')),
    signatureValue: sigVal,
    issuer,
    thisUpdate,
    freshestCrlUris: [],
    entries: new Map(),
  };
  if (nextUpdate) crl.nextUpdate = nextUpdate;

  if (extsT) {
    for (const [id, critical, value] of readExtensions(extsT)) {
      if (id === PKI_OID.crlNumber) crl.crlNumber = readUnsigned(decode(value, { der: true }), 'cRLNumber');
      else if (id === PKI_OID.deltaCrlIndicator) crl.deltaBase = readUnsigned(decode(value, { der: true }), 'BaseCRLNumber');
      else if (id === PKI_OID.freshestCrl) {
        for (const dp of decode(value, { der: true }).children()) {
          const name = dp.children().find((c) => c.tag === 0xa0);
          const full = name?.children().find((c) => c.tag === 0xa0);
          if (full) crl.freshestCrlUris.push(...readGeneralNames(full).uris);
        }
      } else if (id === PKI_OID.issuingDistributionPoint) crl.idp = readIdp(value);
      else if (critical && !KNOWN_CRL_EXTENSIONS.has(id)) crl.unusable = `unknown critical CRL extension ${id}`;
    }
  }

  if (revoked) {
    const list = revoked.children(maxEntries + 1);
    if (list.length > maxEntries) malformed(`CRL with more than ${maxEntries} entries`);
    // RFC 5280 5.3.3: an entry without certificateIssuer belongs to the issuer of the entry before it (the CRL issuer for the first).
    let entryIssuer: string | undefined;
    for (const e of list) {
      const ef = e.fields('revokedCertificate');
      const serial = Buffer.from(readIntegerBytes(ef.expect(Tag.INTEGER, 'userCertificate'))).toString('hex').toUpperCase();
      const revocationDate = readTime(ef.next('revocationDate'), 'revocationDate');
      const entExts = ef.optional(Tag.SEQUENCE);
      ef.end();
      const entry: CrlEntry = { revocationDate };
      if (entExts) {
        for (const [id, critical, value] of readExtensionList(entExts)) {
          if (id === PKI_OID.crlReason) {
            const r = decode(value, { der: true });
            if (r.tag !== Tag.ENUMERATED || r.value.length !== 1) malformed('CRLReason');
            entry.reason = r.value[0]!;
          } else if (id === PKI_OID.certificateIssuer) {
            if (!crl.idp?.indirectCRL) crl.unusable = 'a CRL not marked indirect lists certificates of another issuer (certificateIssuer)';
            const names = readGeneralNames(decode(value, { der: true })).directoryNames;
            if (names.length !== 1) malformed('certificateIssuer without exactly one directoryName');
            const k = issuerKey(names[0]!);
            entryIssuer = k === issuerKey(issuer) ? undefined : k;
          } else if (critical && id !== PKI_OID.invalidityDate) crl.unusable = `unknown critical CRL entry extension ${id}`;
        }
      }
      crl.entries.set(entryIssuer === undefined ? serial : `${entryIssuer}/${serial}`, entry);
    }
  }
  return crl;
}

function readExtensions(wrapper: Tlv): Array<[string, boolean, Uint8Array]> {
  const s = wrapper.children();
  if (s.length !== 1 || s[0]!.tag !== Tag.SEQUENCE) malformed('crlExtensions');
  return readExtensionList(s[0]!);
}

function readExtensionList(seq: Tlv): Array<[string, boolean, Uint8Array]> {
  const out: Array<[string, boolean, Uint8Array]> = [];
  const seen = new Set<string>();
  for (const e of seq.children()) {
    const ef = e.fields('Extension');
    const id = readOid(ef.expect(Tag.OID, 'extnID'));
    const c = ef.optional(Tag.BOOLEAN);
    const value = readOctetString(ef.next('extnValue'));
    ef.end();
    if (seen.has(id)) malformed(`duplicate CRL extension ${id}`);
    seen.add(id);
    out.push([id, c ? readBoolean(c) : false, value]);
  }
  return out;
}

function readUnsigned(t: Tlv, field: string): bigint {
  const v = readIntegerBytes(t, field);
  if (v[0]! & 0x80) malformed(`${field} is negative`);
  if (v.length > 20) malformed(`${field} longer than 20 octets`); // RFC 5280 5.2.3
  let n = 0n;
  for (const b of v) n = (n << 8n) | BigInt(b);
  return n;
}

/** RFC 5280 5.2.5. */
function readIdp(value: Uint8Array): IssuingDistributionPoint {
  const out: IssuingDistributionPoint = { uris: [], onlyContainsUserCerts: false, onlyContainsCACerts: false, indirectCRL: false, unsupportedScope: false };
  const flag = (t: Tlv) => t.value.length === 1 && t.value[0] !== 0;
  for (const c of decode(value, { der: true }).children()) {
    if (c.tag === 0xa0) {
      const full = c.children().find((x) => x.tag === 0xa0);
      if (full) out.uris.push(...readGeneralNames(full).uris);
      else out.unsupportedScope = true; // nameRelativeToCRLIssuer
    } else if (c.tag === 0x81) out.onlyContainsUserCerts = flag(c);
    else if (c.tag === 0x82) out.onlyContainsCACerts = flag(c);
    else if (c.tag === 0x83) out.onlySomeReasons = readReasonFlags(c);
    else if (c.tag === 0x84) out.indirectCRL = flag(c);
    else if (c.tag === 0x85) out.unsupportedScope ||= flag(c);
  }
  return out;
}
