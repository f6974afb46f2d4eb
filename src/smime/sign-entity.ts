/**
 * Signs a MIME entity (content fields + body, no message headers) and returns the
 * signed entity: multipart/signed (RFC 1847 section 2.1, RFC 8551 section 3.5.3)
 * or opaque application/pkcs7-mime; smime-type=signed-data (RFC 8551 section
 * 3.5.2). The entity must already be canonical CRLF and 7-bit (prepareContent).
 */
import type { DigestName } from '../cms/algorithms/digest.ts';
import { signData, signerDigestName, type SignerOptions } from '../cms/signed-data/sign.ts';
import { buildEntity, createBoundary, formatHeaderField, formatHeaderSection, formatParameterizedValue, joinChunks, type HeaderInput } from '../mime/build-entity.ts';
import type { HeaderField } from '../mime/entity.ts';
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
  if (signers.length === 1) return MICALG[signerDigestName(signers[0]!)] ?? 'unknown';
  const names = [...new Set(signers.map((s) => MICALG[signerDigestName(s)] ?? 'unknown'))];
  return names.length === 0 || names.includes('unknown') ? 'unknown' : names.join(',');
}

const PREAMBLE = 'This is a cryptographically signed message in MIME format.';

/** A signed entity before serialisation: callers that place it under message headers avoid re-parsing it. */
export interface EntityParts {
  headers: HeaderInput[];
  body: Buffer;
}

/** The signature part's header section and blank line: the same for every message. */
const SIGNATURE_PART_HEAD = formatHeaderSection([
  ['Content-Type', 'application/pkcs7-signature; name=smime.p7s'],
  ['Content-Transfer-Encoding', 'base64'],
  ['Content-Disposition', 'attachment; filename=smime.p7s'],
]).toString('latin1') + '\r\n';

const copyWithin = Uint8Array.prototype.copyWithin;

/** Same length as createBoundary()'s output and, like it, without whitespace: folding depends only on those. */
const BOUNDARY_PLACEHOLDER = `----=_Kakitome_${'A'.repeat(20)}`;
const contentTypeTemplates = new Map<string, { value: [string, string]; raw: [string, string] }>();

/**
 * The multipart/signed Content-Type field (RFC 1847 section 2.1), formatted and
 * folded as formatParameterizedValue and formatHeaderField write it. Those run
 * through libmime once per micalg with a placeholder boundary of the same length;
 * each message only splices its boundary in (folding depends on lengths and
 * whitespace alone). test/smime/sign-entity.test.ts compares with the general path.
 */
export function multipartSignedContentType(micalg: string, boundary: string): HeaderField {
  const general = (): HeaderField => {
    const value = formatParameterizedValue('multipart/signed', { protocol: 'application/pkcs7-signature', micalg, boundary });
    return { name: 'Content-Type', value, raw: formatHeaderField('Content-Type', value) };
  };
  if (boundary.length !== BOUNDARY_PLACEHOLDER.length || !/^[\w=-]+$/.test(boundary)) return general();
  let t = contentTypeTemplates.get(micalg);
  if (!t) {
    const value = formatParameterizedValue('multipart/signed', { protocol: 'application/pkcs7-signature', micalg, boundary: BOUNDARY_PLACEHOLDER });
    const raw = formatHeaderField('Content-Type', value).toString('latin1');
    const split = (s: string): [string, string] => {
      const at = s.indexOf(BOUNDARY_PLACEHOLDER);
      return [s.slice(0, at), s.slice(at + BOUNDARY_PLACEHOLDER.length)];
    };
    t = { value: split(value), raw: split(raw) };
    if (contentTypeTemplates.size < 16) contentTypeTemplates.set(micalg, t);
  }
  return { name: 'Content-Type', value: t.value[0] + boundary + t.value[1], raw: Buffer.from(t.raw[0] + boundary + t.raw[1], 'latin1') };
}

/**
 * Base64 in 76-character lines, each ended by CRLF (RFC 2045 section 6.8). One
 * native encoding into the tail of the output, then each line moved forward into
 * place: libbase64's wrap() inserts the breaks with regular expressions over
 * strings, a tenth of signing a small message with ECDSA.
 */
export function base64Lines(der: Uint8Array): Buffer {
  const src = Buffer.isBuffer(der) ? der : Buffer.from(der.buffer, der.byteOffset, der.byteLength);
  const chars = Math.ceil(src.length / 3) * 4;
  // Empty input is one empty line, as libbase64's wrap of "" plus the final CRLF gave.
  const lines = Math.max(1, Math.ceil(chars / 76));
  const out = Buffer.allocUnsafe(chars + 2 * lines);
  // The unbroken text sits at the end; line i moves from 2·lines + 76·i to 78·i, never past text not yet moved.
  const base = 2 * lines;
  out.write(src.toString('base64'), base, 'latin1');
  let o = 0;
  for (let i = 0; i < chars; i += 76) {
    const n = Math.min(76, chars - i);
    copyWithin.call(out, o, base + i, base + i + n);
    out[o + n] = 0x0d;
    out[o + n + 1] = 0x0a;
    o += n + 2;
  }
  if (chars === 0) out.write('\r\n', 0, 'latin1');
  return out;
}

export function signEntity(entity: Buffer, options: SignEntityOptions): Buffer {
  const parts = signEntityParts(entity, options);
  return buildEntity(parts.headers, parts.body);
}

export function signEntityParts(entity: Buffer, options: SignEntityOptions): EntityParts {
  const c = signEntityChunks(entity, options);
  return { headers: c.headers, body: joinChunks(c.body) };
}

/** A signed entity whose body is still in pieces (ASCII strings and bytes), for a caller that writes it once under more header fields. */
export interface EntityChunks {
  headers: HeaderInput[];
  body: Array<Uint8Array | string>;
}

export function signEntityChunks(entity: Buffer, options: SignEntityOptions): EntityChunks {
  const der = signData(entity, { signers: options.signers, certificates: options.certificates, now: options.now, detached: !options.opaque });
  if (options.opaque) {
    return {
      headers: [
        ['Content-Type', 'application/pkcs7-mime; smime-type=signed-data; name=smime.p7m'],
        ['Content-Transfer-Encoding', 'base64'],
        ['Content-Disposition', 'attachment; filename=smime.p7m'],
      ],
      body: [base64Lines(der)],
    };
  }
  const boundary = createBoundary();
  const contentType = multipartSignedContentType(micalgFor(options.signers), boundary);
  // RFC 1847 section 2.1 / RFC 2046 section 5.1.1: what buildMultipartBody(boundary,
  // [entity, signature part], preamble) writes, in pieces.
  const body = [
    `${PREAMBLE}\r\n\r\n--${boundary}\r\n`,
    entity,
    `\r\n--${boundary}\r\n${SIGNATURE_PART_HEAD}`,
    base64Lines(der),
    `\r\n--${boundary}--\r\n`,
  ];
  return { headers: [contentType], body };
}
