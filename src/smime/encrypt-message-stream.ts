/**
 * Streaming application/pkcs7-mime encryption (RFC 8551 section 3.3) for messages
 * too large to hold in memory: the payload comes from streamPayload (a streaming
 * MIME walker, on-the-fly base64 for 8-bit parts, RFC 9788 hp="cipher" with the
 * header fields readable outside, or with hideSubject hcp_baseline outside and the
 * legacy display in the main body parts), encryptToSink seals it, and the CMS output is base64-encoded
 * into the message as it is produced (base64-sink.ts; the cipher's own output
 * buffers are released as soon as they are encoded).
 *
 * With `sign` (sign-then-encrypt, RFC 8551 section 3.6), the payload is wrapped in
 * multipart/signed as it streams (stream-multipart-signed.ts) and that entity is
 * encrypted, as encryptMessage does in memory. Opaque inner signing and triple
 * wrapping are in-memory only (encryptMessage). On failure `output` holds a partial
 * message: write to an AtomicFile.
 */
import type { Readable, Writable } from 'node:stream';
import { encryptToSink } from '../cms/stream/encrypt-stream.ts';
import { writeChunk, endWritable } from '../cms/stream/write-chunk.ts';
import { KakitomeError } from '../errors.ts';
import { resolveLimits } from '../limits.ts';
import { createBase64Sink } from './base64-sink.ts';
import type { EncryptMessageOptions } from './encrypt-message.ts';
import { formatPkcs7MimeHeader } from './format-pkcs7-mime-header.ts';
import { streamMultipartSigned } from './stream-multipart-signed.ts';
import { streamPayload } from './stream-payload.ts';

export interface EncryptMessageStreamOptions extends Omit<EncryptMessageOptions, 'tripleWrap'> {
  /** Default true: end `output` when done. */
  end?: boolean;
}

/**
 * Encrypts the message read from `input` for every recipient (signing it first with
 * `sign`) and writes it to `output`.
 *
 * @example
 *   await encryptMessageStream(createReadStream('big.eml'), atomicFile.stream, { recipients: [{ certificate: bob }] });
 */
export async function encryptMessageStream(input: Readable | AsyncIterable<Uint8Array>, output: Writable, options: EncryptMessageStreamOptions): Promise<{ warnings: string[] }> {
  if (!options.recipients || options.recipients.length === 0) throw new KakitomeError('INVALID_ARGUMENT', 'encryptMessageStream needs at least one recipient.');
  const sign = options.sign;
  if (sign && (!sign.signers || sign.signers.length === 0)) throw new KakitomeError('INVALID_ARGUMENT', 'encryptMessageStream: sign needs at least one signer.');
  if (sign?.opaque) throw new KakitomeError('INVALID_ARGUMENT', 'encryptMessageStream signs inside the envelope as multipart/signed only; use encryptMessage for an opaque inner signature.');
  if ((options as { tripleWrap?: boolean }).tripleWrap) throw new KakitomeError('INVALID_ARGUMENT', 'encryptMessageStream does not triple-wrap; use encryptMessage.');
  const limits = resolveLimits(options.limits);
  if (options.hideSubject && options.headerProtection === false) throw new KakitomeError('INVALID_ARGUMENT', 'hideSubject needs header protection: the hidden Subject travels in the protected header fields.');
  const payload = streamPayload(input as AsyncIterable<Uint8Array>, options.headerProtection === false ? undefined : 'cipher', limits, options.hideSubject === true);
  const name = options.contentEncryption ?? 'aes-256-gcm';
  // Once the root header section was read, the outer header fields are known.
  await payload.ready();
  await writeChunk(output, formatPkcs7MimeHeader(payload.outerHeader(), name.endsWith('-cbc') ? 'enveloped-data' : 'authEnveloped-data'));
  const now = options.now ?? sign?.now;
  const content = sign
    ? streamMultipartSigned(payload.content, { signers: sign.signers, ...(sign.certificates ? { certificates: sign.certificates } : {}), ...(now ? { now } : {}) })
    : payload.content;
  await encryptToSink(content, createBase64Sink(output), { recipients: options.recipients, contentEncryption: name, sinkConsumesChunks: true });
  if (options.end !== false) await endWritable(output);
  return { warnings: payload.warnings };
}
