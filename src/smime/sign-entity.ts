/**
 * Signs a MIME entity (content fields + body, no message headers) and returns the
 * signed entity: multipart/signed (RFC 1847 section 2.1, RFC 8551 section 3.5.3)
 * or opaque application/pkcs7-mime; smime-type=signed-data (RFC 8551 section
 * 3.5.2). The entity must already be canonical CRLF and 7-bit (prepareContent).
 */
import { encode as encodeBase64, wrap as wrapBase64 } from 'libbase64';
import { OID } from '../asn1/oids.ts';
import { parseContentInfo } from '../cms/content-info.ts';
import { parseSignedData } from '../cms/signed-data/parse.ts';
import { signData, type SignerOptions } from '../cms/signed-data/sign.ts';
import { buildEntity, buildMultipartBody, createBoundary, formatParameterizedValue } from '../mime/build-entity.ts';
import type { Certificate } from '../x509/certificate.ts';

export interface SignEntityOptions {
  signers: SignerOptions[];
  certificates?: Certificate[];
  /** Default false: multipart/signed. */
  opaque?: boolean;
  now?: Date;
}

/** RFC 8551 section 3.5.3.2 micalg names (RFC 5751 added the SHA-2 ones). */
const MICALG: Record<string, string> = {
  [OID.md5]: 'md5',
  [OID.sha1]: 'sha-1',
  [OID.sha224]: 'sha-224',
  [OID.sha256]: 'sha-256',
  [OID.sha384]: 'sha-384',
  [OID.sha512]: 'sha-512',
};

/**
 * The micalg parameter for a SignedData: its digestAlgorithms, comma-separated
 * when several (RFC 8551 section 3.5.3.2), "unknown" for a digest without a
 * registered name (SHAKE256 for Ed448, SHA-3).
 */
export function micalgFor(signedData: Uint8Array): string {
  const ci = parseContentInfo(signedData);
  const sd = parseSignedData(ci.content);
  const names = [...new Set(sd.digestAlgorithms.map((a) => MICALG[a.oid] ?? 'unknown'))];
  return names.length === 0 || names.includes('unknown') ? 'unknown' : names.join(',');
}

export function base64Lines(der: Uint8Array): Buffer {
  return Buffer.from(`${wrapBase64(encodeBase64(der), 76).replace(/\r?\n/g, '\r\n')}\r\n`, 'latin1');
}

export function signEntity(entity: Buffer, options: SignEntityOptions): Buffer {
  const common = { signers: options.signers, ...(options.certificates ? { certificates: options.certificates } : {}), ...(options.now ? { now: options.now } : {}) };
  if (options.opaque) {
    const der = signData(entity, { ...common, detached: false });
    return buildEntity(
      [
        ['Content-Type', 'application/pkcs7-mime; smime-type=signed-data; name=smime.p7m'],
        ['Content-Transfer-Encoding', 'base64'],
        ['Content-Disposition', 'attachment; filename=smime.p7m'],
      ],
      base64Lines(der),
    );
  }
  const der = signData(entity, { ...common, detached: true });
  const boundary = createBoundary();
  const signaturePart = buildEntity(
    [
      ['Content-Type', 'application/pkcs7-signature; name=smime.p7s'],
      ['Content-Transfer-Encoding', 'base64'],
      ['Content-Disposition', 'attachment; filename=smime.p7s'],
    ],
    base64Lines(der),
  );
  const contentType = formatParameterizedValue('multipart/signed', {
    protocol: 'application/pkcs7-signature',
    micalg: micalgFor(der),
    boundary,
  });
  return buildEntity([['Content-Type', contentType]], buildMultipartBody(boundary, [entity, signaturePart], 'This is a cryptographically signed message in MIME format.'));
}
