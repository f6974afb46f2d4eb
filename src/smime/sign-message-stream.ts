/**
 * Streaming multipart/signed (RFC 8551 section 3.5.3, RFC 1847) for messages too
 * large to hold in memory: the payload comes from streamPayload (a streaming MIME
 * walker, on-the-fly base64 for 8-bit parts, RFC 9788 hp="clear") and is written to
 * `output` while signStream hashes it; the signature part follows. Memory stays
 * bounded by one header section, one delimiter line and the input's chunk size;
 * the whole message by limits.maxStreamMessageBytes.
 *
 * Only the detached form: opaque signing of huge messages is signStream's job.
 * On failure `output` holds a partial message: write to an AtomicFile.
 */
import { Writable, type Readable } from 'node:stream';
import { signStream } from '../cms/stream/sign-stream.ts';
import { writeChunk, endWritable } from '../cms/stream/write-chunk.ts';
import { KakitomeError } from '../errors.ts';
import { resolveLimits } from '../limits.ts';
import { buildMultipartBody, createBoundary, formatHeaderField, formatParameterizedValue } from '../mime/build-entity.ts';
import { base64Lines, micalgFor } from './sign-entity.ts';
import type { SignMessageOptions } from './sign-message.ts';
import { streamPayload } from './stream-payload.ts';

export interface SignMessageStreamOptions extends SignMessageOptions {
  /** Default true: end `output` when done. */
  end?: boolean;
}

export interface SignMessageStreamResult {
  warnings: string[];
}

const CRLF = Buffer.from('\r\n');

/**
 * Signs the message read from `input` as multipart/signed and writes it to `output`.
 *
 * @example
 *   await signMessageStream(createReadStream('big.eml'), atomicFile.stream, { signers: [{ certificate, key }] });
 */
export async function signMessageStream(input: Readable | AsyncIterable<Uint8Array>, output: Writable, options: SignMessageStreamOptions): Promise<SignMessageStreamResult> {
  if (!options.signers || options.signers.length === 0) throw new KakitomeError('INVALID_ARGUMENT', 'signMessageStream needs at least one signer.');
  if (options.opaque) throw new KakitomeError('INVALID_ARGUMENT', 'signMessageStream writes multipart/signed only; use signMessage for opaque signing.');
  const limits = resolveLimits(options.limits);
  const payload = streamPayload(input as AsyncIterable<Uint8Array>, options.headerProtection === false ? undefined : 'clear', limits);
  const boundary = createBoundary();
  let headerWritten = false;
  // The payload is written out and hashed in the same pass.
  const content = (async function* () {
    for await (const chunk of payload.content) {
      if (!headerWritten) {
        headerWritten = true;
        const ct = formatParameterizedValue('multipart/signed', { protocol: 'application/pkcs7-signature', micalg: micalgFor(options.signers), boundary });
        await writeChunk(output, Buffer.concat([payload.outerHeader(), formatHeaderField('MIME-Version', '1.0'), formatHeaderField('Content-Type', ct), CRLF, Buffer.from(`This is a cryptographically signed message in MIME format.\r\n\r\n--${boundary}\r\n`)]));
      }
      await writeChunk(output, chunk);
      yield chunk;
    }
  })();
  const signature: Buffer[] = [];
  const sink = new Writable({
    write(c: Buffer, _e, cb) {
      signature.push(c);
      cb();
    },
  });
  await signStream(content, sink, {
    signers: options.signers,
    detached: true,
    ...(options.certificates ? { certificates: options.certificates } : {}),
    ...(options.now ? { now: options.now } : {}),
  });
  const signaturePart = Buffer.concat([
    formatHeaderField('Content-Type', 'application/pkcs7-signature; name=smime.p7s'),
    formatHeaderField('Content-Transfer-Encoding', 'base64'),
    formatHeaderField('Content-Disposition', 'attachment; filename=smime.p7s'),
    CRLF,
    base64Lines(Buffer.concat(signature)),
  ]);
  // buildMultipartBody without the first part gives "\r\n--b\r\n" + part + "\r\n--b--\r\n" after the content.
  const tail = buildMultipartBody(boundary, [Buffer.alloc(0), signaturePart]).subarray(`--${boundary}\r\n`.length);
  await writeChunk(output, tail);
  if (options.end !== false) await endWritable(output);
  return { warnings: payload.warnings };
}
