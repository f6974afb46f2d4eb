/**
 * The X.509 certificate model the CMS layer needs: raw fields by their original
 * bytes (issuer and serial for IssuerAndSerialNumber, the key identifier, the
 * SubjectPublicKeyInfo) plus a few decoded conveniences. Path validation and policy
 * belong to src/pki; this file only reads.
 */
import { createPublicKey, X509Certificate, type KeyObject, createHash } from 'node:crypto';
import { decode, Tag, readIntegerBytes, readSmallInt, readTime, readOid, readBoolean, readOctetString, readBitString } from '../asn1/ber.ts';
import { OID } from '../asn1/oids.ts';
import { decodePem, isPem } from '../asn1/pem.ts';
import { KakitomeError, malformed } from '../errors.ts';
import { certificateMailboxes } from './certificate-mailboxes.ts';

export interface Extension {
  critical: boolean;
  /** extnValue contents (the DER of the extension's own value). */
  value: Uint8Array;
}

export class Certificate {
  /** The whole DER encoding. */
  readonly der: Buffer;
  readonly tbs: Uint8Array;
  readonly version: number;
  /** serialNumber content octets, exactly as encoded. */
  readonly serial: Uint8Array;
  /** issuer Name, whole DER encoding. */
  readonly issuer: Uint8Array;
  /** subject Name, whole DER encoding. */
  readonly subject: Uint8Array;
  /** SubjectPublicKeyInfo, whole DER encoding. */
  readonly spki: Uint8Array;
  readonly publicKeyAlgorithm: string;
  /** The curve OID for EC keys. */
  readonly publicKeyParameters: string | undefined;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly signatureAlgorithm: string;
  /** The outer signatureAlgorithm's parameters (DER), if any: RSASSA-PSS names its hash there. */
  readonly signatureParameters: Uint8Array | undefined;
  readonly extensions: ReadonlyMap<string, Extension>;
  #publicKey: KeyObject | undefined;
  #x509: X509Certificate | undefined;
  #fingerprint256: string | undefined;

  private constructor(der: Buffer) {
    this.der = der;
    const root = decode(der, { der: true });
    const top = root.fields('Certificate');
    const tbsT = top.expect(Tag.SEQUENCE, 'tbsCertificate');
    const sigAlg = top.expect(Tag.SEQUENCE, 'signatureAlgorithm');
    top.expect(Tag.BIT_STRING, 'signatureValue');
    top.end();
    this.tbs = tbsT.bytes;
    this.signatureAlgorithm = readOid(sigAlg.children()[0] ?? malformed('empty AlgorithmIdentifier'));
    this.signatureParameters = sigAlg.children()[1]?.bytes;
    const f = tbsT.fields('TBSCertificate');
    const ver = f.optional(0xa0);
    // [0] EXPLICIT Version holds exactly one INTEGER, v1(0)..v3(2) (RFC 5280 4.1.2.1);
    // an empty [0] used to reach readIntegerBytes(undefined) (found by test/fuzz).
    let version = 1;
    if (ver) {
      const vf = ver.fields('version');
      const v = readSmallInt(vf.expect(Tag.INTEGER, 'version'), 'version');
      vf.end();
      if (v > 2) malformed(`certificate version ${v + 1}`);
      version = v + 1;
    }
    this.version = version;
    this.serial = readIntegerBytes(f.expect(Tag.INTEGER, 'serialNumber'), 'serialNumber');
    f.expect(Tag.SEQUENCE, 'signature');
    this.issuer = f.expect(Tag.SEQUENCE, 'issuer').bytes;
    const validity = f.expect(Tag.SEQUENCE, 'validity').fields('Validity');
    this.notBefore = readTime(validity.next('notBefore'), 'notBefore');
    this.notAfter = readTime(validity.next('notAfter'), 'notAfter');
    validity.end();
    this.subject = f.expect(Tag.SEQUENCE, 'subject').bytes;
    const spkiT = f.expect(Tag.SEQUENCE, 'subjectPublicKeyInfo');
    this.spki = spkiT.bytes;
    const spkiF = spkiT.fields('SubjectPublicKeyInfo');
    const alg = spkiF.expect(Tag.SEQUENCE, 'algorithm').children();
    this.publicKeyAlgorithm = readOid(alg[0] ?? malformed('empty AlgorithmIdentifier'));
    this.publicKeyParameters = alg[1]?.tag === Tag.OID ? readOid(alg[1]) : undefined;
    if (this.publicKeyAlgorithm === OID.ecPublicKey) {
      // RFC 5480 2.2: uncompressed (04) or compressed (02/03) points; "the hybrid form
      // MUST NOT be used". OpenSSL accepts hybrid (06/07), which would give one key two
      // encodings (found by test/fuzz).
      const point = readBitString(spkiF.expect(Tag.BIT_STRING, 'subjectPublicKey'), 'subjectPublicKey').bytes;
      if (point[0] !== 0x04 && point[0] !== 0x02 && point[0] !== 0x03) malformed('EC public key is not an uncompressed or compressed point (RFC 5480 2.2)');
    }
    const issuerUid = f.optional(0x81);
    const subjectUid = f.optional(0x82);
    const extsT = f.optional(0xa3);
    f.end();
    // RFC 5280 4.1.2.1, 4.1.2.8, 4.1.2.9: unique identifiers need v2 or v3, extensions
    // v3. A v1 certificate is a CA by OpenSSL's and NSS's habit only when it has no
    // extensions at all; one that carries basicConstraints is not v1 (OpenSSL refuses it).
    if ((issuerUid || subjectUid) && version < 2) malformed(`unique identifiers in a version ${version} certificate`);
    if (extsT && version < 3) malformed(`extensions in a version ${version} certificate`);
    const exts = new Map<string, Extension>();
    if (extsT) {
      const seq = extsT.children();
      if (seq.length !== 1 || seq[0]!.tag !== Tag.SEQUENCE) malformed('extensions');
      for (const e of seq[0]!.children()) {
        const ef = e.fields('Extension');
        const id = readOid(ef.expect(Tag.OID, 'extnID'));
        const crit = ef.optional(Tag.BOOLEAN);
        const value = readOctetString(ef.next('extnValue'), 'extnValue');
        ef.end();
        // RFC 5280 4.2: a certificate MUST NOT include more than one instance of an extension.
        if (exts.has(id)) malformed(`duplicate extension ${id}`);
        exts.set(id, { critical: crit ? readBoolean(crit) : false, value });
      }
    }
    this.extensions = exts;
  }

  static fromDer(der: Uint8Array): Certificate {
    return new Certificate(Buffer.from(der));
  }

  /** subjectKeyIdentifier extension value, if present. */
  get subjectKeyIdentifier(): Uint8Array | undefined {
    const e = this.extensions.get(OID.subjectKeyIdentifier);
    if (!e) return undefined;
    const t = decode(e.value, { der: true });
    return readOctetString(t, 'subjectKeyIdentifier');
  }

  /** keyUsage bits as names (digitalSignature, keyEncipherment, ...), or undefined if absent. */
  get keyUsage(): Set<string> | undefined {
    const e = this.extensions.get(OID.keyUsage);
    if (!e) return undefined;
    const bits = readBitString(decode(e.value, { der: true }), 'keyUsage');
    const names = ['digitalSignature', 'nonRepudiation', 'keyEncipherment', 'dataEncipherment', 'keyAgreement', 'keyCertSign', 'cRLSign', 'encipherOnly', 'decipherOnly'];
    const out = new Set<string>();
    names.forEach((n, i) => {
      const byte = bits.bytes[i >> 3];
      if (byte !== undefined && byte & (0x80 >> (i & 7))) out.add(n);
    });
    return out;
  }

  /** extKeyUsage purpose OIDs, or undefined if the extension is absent (no restriction). */
  get extendedKeyUsage(): string[] | undefined {
    const e = this.extensions.get(OID.extKeyUsage);
    if (!e) return undefined;
    return decode(e.value, { der: true }).children().map((t) => readOid(t, 'extKeyUsage'));
  }

  get publicKey(): KeyObject {
    // Our reader only checks the SubjectPublicKeyInfo's outer shape; OpenSSL decodes
    // the key itself and throws a bare Error for a damaged or unknown one (found by
    // test/fuzz): report it with a stable code.
    try {
      this.#publicKey ??= createPublicKey({ key: Buffer.from(this.spki), format: 'der', type: 'spki' });
    } catch (e) {
      throw new KakitomeError('KEY_INVALID', `The certificate's public key (${this.publicKeyAlgorithm}) cannot be read.`, { cause: e });
    }
    return this.#publicKey;
  }

  /** Node's view of the certificate (names as text, chain helpers). */
  get x509(): X509Certificate {
    // OpenSSL parses more of the certificate than we do (names, extensions); a
    // certificate it refuses is malformed, not an internal error (found by test/fuzz).
    try {
      this.#x509 ??= new X509Certificate(this.der);
    } catch (e) {
      throw new KakitomeError('MALFORMED', 'Malformed input: OpenSSL cannot parse the certificate.', { cause: e });
    }
    return this.#x509;
  }

  // Node returns undefined (despite its typings) for an empty Name (found by test/fuzz).
  get subjectText(): string {
    return ((this.x509.subject as string | undefined) ?? '').replaceAll('\n', ', ');
  }

  get issuerText(): string {
    return ((this.x509.issuer as string | undefined) ?? '').replaceAll('\n', ', ');
  }

  get serialHex(): string {
    return Buffer.from(this.serial).toString('hex').toUpperCase();
  }

  /**
   * The mailboxes the certificate names (RFC 8550 3: subjectAltName's rfc822Name and
   * SmtpUTF8Mailbox entries, else every emailAddress of the subject), as written:
   * certificateMailboxes, the one reading the store files by and identity matches.
   */
  get emailAddresses(): string[] {
    return certificateMailboxes(this);
  }

  /** SHA-256 of the DER, lowercase hex (computed once: a signing service names it in every message's audit rows). */
  get fingerprint256(): string {
    this.#fingerprint256 ??= createHash('sha256').update(this.der).digest('hex');
    return this.#fingerprint256;
  }

  /** True when `issuer` and `serial` identify this certificate (IssuerAndSerialNumber). */
  matchesIssuerSerial(issuer: Uint8Array, serial: Uint8Array): boolean {
    return Buffer.compare(this.serial, serial) === 0 && Buffer.compare(this.issuer, issuer) === 0;
  }

  matchesSubjectKeyId(ski: Uint8Array): boolean {
    const own = this.subjectKeyIdentifier;
    return own !== undefined && Buffer.compare(own, ski) === 0;
  }
}

/** Certificates from PEM (any number of CERTIFICATE blocks) or one DER encoding. */
export function parseCertificates(data: Uint8Array | string): Certificate[] {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  if (isPem(bytes)) {
    const blocks = decodePem(Buffer.from(bytes).toString('latin1')).filter((b) => b.label === 'CERTIFICATE' || b.label === 'X509 CERTIFICATE' || b.label === 'TRUSTED CERTIFICATE');
    if (blocks.length === 0) malformed('no CERTIFICATE block in PEM input');
    return blocks.map((b) => Certificate.fromDer(b.der));
  }
  return [Certificate.fromDer(bytes)];
}

export function parseCertificate(data: Uint8Array | string): Certificate {
  const all = parseCertificates(data);
  if (all.length !== 1) malformed(`expected one certificate, found ${all.length}`);
  return all[0]!;
}

