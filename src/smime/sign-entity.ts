/**
 * Signs a MIME entity (content fields + body, no message headers) and returns the
 * signed entity: multipart/signed (RFC 1847 section 2.1, RFC 8551 section 3.5.3)
 * or opaque application/pkcs7-mime; smime-type=signed-data (RFC 8551 section
 * 3.5.2). The entity must already be canonical CRLF and 7-bit (prepareContent).
 */
import { encode as encodeBase64, wrap as wrapBase64 } from 'libbase64';
import type { DigestName } from '../cms/algorithms/digest.ts';
import { signData, signerDigestName, type SignerOptions } from '../cms/signed-data/sign.ts';
import { buildEntity, buildMultipartBody, createBoundary, formatParameterizedValue, type HeaderInput } from '../mime/build-entity.ts';
import type { Certificate } from '../x509/certificate.ts';

export interface SignEntityOptions {
  signers: SignerOptions[];
  certificates?: Certificate[];
  /** Default false: multipart/signed. */
  opaque?: boolean;
  now?: Date;
}

/** RFC 8551 section 3.5.3.2 micalg names (RFC 5751 added the SHA-2 ones). */
const MICALG: Partial<Record<DigestName, string>> = {
  md5: 'md5',
  sha1: 'sha-1',
  sha224: 'sha-224',
  sha256: 'sha-256',
  sha384: 'sha-384',
  sha512: 'sha-512',
};

/**
 * The micalg parameter for a set of signers: their digest algorithms,
 * comma-separated when several (RFC 8551 section 3.5.3.2), "unknown" when one has
 * no registered name (SHAKE256 for Ed448, SHA-3).
 */
export function micalgFor(signers: readonly SignerOptions[]): string {
  const names = [...new Set(signers.map((s) => MICALG[signerDigestName(s)] ?? 'unknown'))];
  return names.length === 0 || names.includes('unknown') ? 'unknown' : names.join(',');
}

/** A signed entity before serialisation: callers that place it under message headers avoid re-parsing it. */
export interface EntityParts {
  headers: HeaderInput[];
  body: Buffer;
}

export function base64Lines(der: Uint8Array): Buffer {
  return Buffer.from(`${wrapBase64(encodeBase64(der), 76).replace(/\r?\n/g, '\r\n')}\r\n`, 'latin1');
}

export function signEntity(entity: Buffer, options: SignEntityOptions): Buffer {
  const parts = signEntityParts(entity, options);
  return buildEntity(parts.headers, parts.body);
}

export function signEntityParts(entity: Buffer, options: SignEntityOptions): EntityParts {
  const common = { signers: options.signers, ...(options.certificates ? { certificates: options.certificates } : {}), ...(options.now ? { now: options.now } : {}) };
  if (options.opaque) {
    const der = signData(entity, { ...common, detached: false });
    return {
      headers: [
        ['Content-Type', 'application/pkcs7-mime; smime-type=signed-data; name=smime.p7m'],
        ['Content-Transfer-Encoding', 'base64'],
        ['Content-Disposition', 'attachment; filename=smime.p7m'],
      ],
      body: base64Lines(der),
    };
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
    micalg: micalgFor(options.signers),
    boundary,
  });
  return { headers: [['Content-Type', contentType]], body: buildMultipartBody(boundary, [entity, signaturePart], 'This is a cryptographically signed message in MIME format.') };
}
