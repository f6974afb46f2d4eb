/**
 * Imports certificates (and keys, from PKCS#12) from a file's bytes, whatever the
 * form: PEM (CERTIFICATE and PKCS7 blocks), DER certificate, DER certs-only
 * SignedData (RFC 8551 3.6), or PKCS#12 (needs the password).
 */
import { decode, Tag } from '../asn1/ber.ts';
import { decodePem, isPem } from '../asn1/pem.ts';
import { OID } from '../asn1/oids.ts';
import { readOid } from '../asn1/ber.ts';
import { KakitomeError } from '../errors.ts';
import { Certificate } from '../x509/certificate.ts';
import { readCertsOnly } from '../smime/read-certs-only.ts';
import { importPkcs12, type Pkcs12Contents } from '../keys/import-pkcs12.ts';
import type { CertificateRecord, KeyRecord, Store, TrustLevel } from './store.ts';

export interface ImportFileResult {
  certificates: CertificateRecord[];
  key?: KeyRecord;
}

type Detected = { kind: 'certificates'; certs: Certificate[] } | { kind: 'pkcs12' };

function detect(bytes: Uint8Array): Detected {
  if (isPem(bytes)) {
    const certs: Certificate[] = [];
    for (const b of decodePem(Buffer.from(bytes).toString('latin1'))) {
      if (b.label === 'CERTIFICATE' || b.label === 'X509 CERTIFICATE' || b.label === 'TRUSTED CERTIFICATE') certs.push(Certificate.fromDer(b.der));
      else if (b.label === 'PKCS7' || b.label === 'CMS') certs.push(...readCertsOnly(b.der));
    }
    if (!certs.length) throw new KakitomeError('MALFORMED', 'No CERTIFICATE or PKCS7 block in the PEM file.');
    return { kind: 'certificates', certs };
  }
  const top = decode(bytes);
  const kids = top.tag === Tag.SEQUENCE ? top.children() : [];
  // PFX starts with INTEGER 3; ContentInfo with an OID; a Certificate with a SEQUENCE.
  if (kids[0]?.tag === Tag.INTEGER) return { kind: 'pkcs12' };
  if (kids[0]?.tag === Tag.OID && readOid(kids[0]) === OID.signedData) return { kind: 'certificates', certs: readCertsOnly(bytes) };
  return { kind: 'certificates', certs: [Certificate.fromDer(bytes)] };
}

/**
 * Stores what a PKCS#12 file held (already read and checked by importPkcs12): its
 * key with the key's certificate, and the other certificates, imported, never
 * trusted (one already stored keeps its level: trust is the administrator's
 * decision, a PKCS#12 is a key container handed to a user).
 */
export async function importPkcs12Contents(store: Store, p12: Pkcs12Contents, source: string): Promise<ImportFileResult> {
  const certificates: CertificateRecord[] = [];
  let key: KeyRecord | undefined;
  if (p12.key) {
    key = await store.importPrivateKey(p12.key, { certificates: p12.certificate ? [p12.certificate] : [], source: `pkcs12 ${source}`, ...(p12.friendlyName ? { label: p12.friendlyName } : {}) });
    if (p12.certificate) certificates.push((await store.findCertificateByFingerprint(p12.certificate.fingerprint256))!);
  }
  for (const c of p12.chain) certificates.push(await store.importCertificate(c, { source: `pkcs12 ${source}` }));
  return key ? { certificates, key } : { certificates };
}

/**
 * `trust` applies to certificate files (default "imported"; "trusted" makes a CA
 * certificate a trust anchor). A PKCS#12's key is imported with its certificates
 * at "imported"; asking "trusted" for one is refused (INVALID_ARGUMENT).
 */
export async function importCertificateFile(store: Store, bytes: Uint8Array, options: { password?: string; trust?: TrustLevel; source?: string } = {}): Promise<ImportFileResult> {
  const d = detect(bytes);
  const source = options.source ?? 'file';
  if (d.kind === 'pkcs12') {
    // A PKCS#12 is a key container handed to a user; it never vouches for a CA.
    if (options.trust === 'trusted') {
      throw new KakitomeError('INVALID_ARGUMENT', 'The certificates of a PKCS#12 file are always imported, never trusted: to make a CA certificate a trust anchor, extract it (openssl pkcs12 -in FILE -cacerts -nokeys) and import that file as trusted.', { remedy: 'trust' });
    }
    if (options.password === undefined) throw new KakitomeError('INVALID_ARGUMENT', 'This is a PKCS#12 file: give its password.');
    return importPkcs12Contents(store, importPkcs12(bytes, options.password), source);
  }
  const certificates: CertificateRecord[] = [];
  for (const c of d.certs) certificates.push(await store.importCertificate(c, { trust: options.trust ?? 'imported', source }));
  return { certificates };
}
