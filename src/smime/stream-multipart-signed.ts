/**
 * multipart/signed as a stream (RFC 1847 section 2.1, RFC 8551 section 3.5.3): the
 * entity's header section and preamble, then the content exactly as given (hashed
 * as it passes), then the detached signature part, which can only be written once
 * the content has ended. The same bytes as signEntityParts writes in memory:
 * "Content-Type: multipart/signed; protocol; micalg; boundary", the preamble line,
 * the content between delimiters, the base64 application/pkcs7-signature part.
 * Used by signMessageStream and by encryptMessageStream's sign-then-encrypt.
 */
import { createDetachedSigner } from '../cms/stream/sign-stream.ts';
import { buildMultipartBody, createBoundary, formatHeaderField, formatParameterizedValue } from '../mime/build-entity.ts';
import { base64Lines, micalgFor, type SignEntityOptions } from './sign-entity.ts';

const CRLF = Buffer.from('\r\n');

/**
 * Yields the multipart/signed entity around `content` (a canonical 7-bit MIME entity).
 * The first yield comes after the first content chunk was read, so that a caller's
 * outer header fields (known only then) can be written before it.
 */
export async function* streamMultipartSigned(content: AsyncIterable<Buffer>, options: Omit<SignEntityOptions, 'opaque'>): AsyncGenerator<Buffer> {
  const signer = createDetachedSigner({
    signers: options.signers,
    detached: true,
    ...(options.certificates ? { certificates: options.certificates } : {}),
    ...(options.now ? { now: options.now } : {}),
  });
  const boundary = createBoundary();
  const it = content[Symbol.asyncIterator]();
  try {
    let r = await it.next();
    const ct = formatParameterizedValue('multipart/signed', { protocol: 'application/pkcs7-signature', micalg: micalgFor(options.signers), boundary });
    yield Buffer.concat([formatHeaderField('Content-Type', ct), CRLF, Buffer.from(`This is a cryptographically signed message in MIME format.\r\n\r\n--${boundary}\r\n`)]);
    for (; !r.done; r = await it.next()) {
      signer.update(r.value);
      yield r.value;
    }
  } finally {
    await it.return?.();
  }
  const signaturePart = Buffer.concat([
    formatHeaderField('Content-Type', 'application/pkcs7-signature; name=smime.p7s'),
    formatHeaderField('Content-Transfer-Encoding', 'base64'),
    formatHeaderField('Content-Disposition', 'attachment; filename=smime.p7s'),
    CRLF,
    base64Lines(signer.finish()),
  ]);
  // buildMultipartBody without the first part gives "\r\n--b\r\n" + part + "\r\n--b--\r\n" after the content.
  yield buildMultipartBody(boundary, [Buffer.alloc(0), signaturePart]).subarray(`--${boundary}\r\n`.length);
}
