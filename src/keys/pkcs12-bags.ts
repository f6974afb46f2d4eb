/**
 * PKCS#12 (RFC 7292) names shared by import and export: bag types (4.2),
 * attributes (4.2 / PKCS#9) and the MAC digest table.
 */
import { OID } from '../asn1/oids.ts';
import type { Pkcs12KdfHash } from './pkcs12-kdf.ts';

export const PKCS12_OID = {
  keyBag: '1.2.840.113549.1.12.10.1.1',
  pkcs8ShroudedKeyBag: '1.2.840.113549.1.12.10.1.2',
  certBag: '1.2.840.113549.1.12.10.1.3',
  crlBag: '1.2.840.113549.1.12.10.1.4',
  secretBag: '1.2.840.113549.1.12.10.1.5',
  safeContentsBag: '1.2.840.113549.1.12.10.1.6',
  x509Certificate: '1.2.840.113549.1.9.22.1',
  friendlyName: '1.2.840.113549.1.9.20',
  localKeyId: '1.2.840.113549.1.9.21',
} as const;

export const MAC_DIGESTS: Record<string, Pkcs12KdfHash> = {
  [OID.sha1]: 'sha1',
  [OID.sha224]: 'sha224',
  [OID.sha256]: 'sha256',
  [OID.sha384]: 'sha384',
  [OID.sha512]: 'sha512',
};

export const MAC_DIGEST_OID: Record<'sha1' | 'sha256', string> = { sha1: OID.sha1, sha256: OID.sha256 };
