/**
 * Streaming signing of messages too large to hold in memory (RFC 8551 section 3.5):
 * the payload comes from streamPayload (a streaming MIME walker, on-the-fly base64
 * for 8-bit parts, RFC 9788 hp="clear") and is written to `output` as it is hashed.
 *
 * - multipart/signed (default, RFC 1847): the content goes out as it is, the
 *   detached signature part follows it (stream-multipart-signed.ts).
 * - opaque (`opaque: true`): application/pkcs7-mime; smime-type=signed-data, the
 *   payload encapsulated in an indefinite-length SignedData (signToSink, X.690
 *   8.1.3.6) base64-encoded as it is produced; the SignerInfos close it.
 *
 * Memory stays bounded by one header section, one delimiter line and the input's
 * chunk size; the whole message by limits.maxStreamMessageBytes. On failure `output`
 * holds a partial message: write to an AtomicFile.
 *
 * The multipart/signed form hands the input's chunks (as slices) to `output` without
 * copying them, as Node streams do: a producer must not refill a chunk it has handed
 * over while `output` may still hold it (fs.createReadStream and sockets never do;
 * a reused-buffer reader such as read-file-chunks.ts is safe only when `output`'s
 * highWaterMark is at most one chunk, since writeChunk waits for 'drain' beyond it).
 */
import type { Readable, Writable } from 'node:stream';
import { signToSink } from '../cms/stream/sign-stream.ts';
import { writeChunk, endWritable } from '../cms/stream/write-chunk.ts';
import { KakitomeError } from '../errors.ts';
import { resolveLimits } from '../limits.ts';
import { formatHeaderField } from '../mime/build-entity.ts';
import { createBase64Sink } from './base64-sink.ts';
import { formatPkcs7MimeHeader } from './format-pkcs7-mime-header.ts';
import type { SignMessageOptions } from './sign-message.ts';
import { streamMultipartSigned } from './stream-multipart-signed.ts';
import { streamPayload } from './stream-payload.ts';

export interface SignMessageStreamOptions extends SignMessageOptions {
  /** Default true: end `output` when done. */
  end?: boolean;
}

export interface SignMessageStreamResult {
  warnings: string[];
}

/**
 * Signs the message read from `input` (multipart/signed, or opaque with `opaque: true`) and writes it to `output`.
 *
 * @example
 *   await signMessageStream(createReadStream('big.eml'), atomicFile.stream, { signers: [{ certificate, key }] });
 */
export async function signMessageStream(input: Readable | AsyncIterable<Uint8Array>, output: Writable, options: SignMessageStreamOptions): Promise<SignMessageStreamResult> {
  if (!options.signers || options.signers.length === 0) throw new KakitomeError('INVALID_ARGUMENT', 'signMessageStream needs at least one signer.');
  const limits = resolveLimits(options.limits);
  const payload = streamPayload(input as AsyncIterable<Uint8Array>, options.headerProtection === false ? undefined : 'clear', limits);
  const common = { signers: options.signers, ...(options.certificates ? { certificates: options.certificates } : {}), ...(options.now ? { now: options.now } : {}) };
  if (options.opaque) {
    // Once the root header section was read, the outer header fields are known.
    await payload.ready();
    await writeChunk(output, formatPkcs7MimeHeader(payload.outerHeader(), 'signed-data'));
    await signToSink(payload.content, createBase64Sink(output), { ...common, detached: false });
  } else {
    let first = true;
    for await (const chunk of streamMultipartSigned(payload.content, common)) {
      if (first) {
        first = false;
        await writeChunk(output, Buffer.concat([payload.outerHeader(), formatHeaderField('MIME-Version', '1.0'), chunk]));
      } else await writeChunk(output, chunk);
    }
  }
  if (options.end !== false) await endWritable(output);
  return { warnings: payload.warnings };
}
