/**
 * Streaming application/pkcs7-mime encryption (RFC 8551 section 3.3) for messages
 * too large to hold in memory: the payload comes from streamPayload (a streaming
 * MIME walker, on-the-fly base64 for 8-bit parts, RFC 9788 hp="cipher" with
 * hcp_baseline outside), encryptToSink seals it, and the CMS output is base64-encoded
 * into the message as it is produced (encode-base64-lines.ts, into fresh buffers the
 * output stream may keep; the cipher's own buffers are released as soon as they are
 * encoded).
 *
 * Sign-then-encrypt is not streamed (use encryptMessage); on failure `output`
 * holds a partial message: write to an AtomicFile.
 */
import type { Readable, Writable } from 'node:stream';
import type { ByteSink } from '../cms/stream/byte-sink.ts';
import { encryptToSink } from '../cms/stream/encrypt-stream.ts';
import { writeChunk, endWritable } from '../cms/stream/write-chunk.ts';
import { KakitomeError } from '../errors.ts';
import { resolveLimits } from '../limits.ts';
import { formatHeaderField } from '../mime/build-entity.ts';
import { Base64LineEncoder } from '../mime/encode-base64-lines.ts';
import type { EncryptMessageOptions } from './encrypt-message.ts';
import { streamPayload } from './stream-payload.ts';

export interface EncryptMessageStreamOptions extends Omit<EncryptMessageOptions, 'sign' | 'tripleWrap'> {
  /** Default true: end `output` when done. */
  end?: boolean;
}

/** A sink that base64-encodes what it receives into `target`, 76 characters a line, honouring backpressure. It copies synchronously: once write() returned, it holds no chunk. */
function base64Sink(target: Writable): ByteSink {
  const encoder = new Base64LineEncoder();
  return {
    write: (...chunks) => {
      let wait: Promise<void> | undefined;
      for (const c of chunks) {
        const lines = encoder.push(c);
        if (lines) wait = writeChunk(target, lines) ?? wait;
      }
      return wait;
    },
    end: async () => {
      const last = encoder.end();
      if (last) await writeChunk(target, last);
    },
  };
}

/**
 * Encrypts the message read from `input` for every recipient and writes it to `output`.
 *
 * @example
 *   await encryptMessageStream(createReadStream('big.eml'), atomicFile.stream, { recipients: [{ certificate: bob }] });
 */
export async function encryptMessageStream(input: Readable | AsyncIterable<Uint8Array>, output: Writable, options: EncryptMessageStreamOptions): Promise<{ warnings: string[] }> {
  if (!options.recipients || options.recipients.length === 0) throw new KakitomeError('INVALID_ARGUMENT', 'encryptMessageStream needs at least one recipient.');
  if ('sign' in options && (options as EncryptMessageOptions).sign) throw new KakitomeError('INVALID_ARGUMENT', 'encryptMessageStream does not sign; use encryptMessage for sign-then-encrypt.');
  const limits = resolveLimits(options.limits);
  const payload = streamPayload(input as AsyncIterable<Uint8Array>, options.headerProtection === false ? undefined : 'cipher', limits);
  const name = options.contentEncryption ?? 'aes-256-gcm';
  // The first chunk comes after the root header section was read: the outer header fields are known.
  const it = payload.content[Symbol.asyncIterator]();
  const first = await it.next();
  const smimeType = name.endsWith('-cbc') ? 'enveloped-data' : 'authEnveloped-data';
  await writeChunk(
    output,
    Buffer.concat([
      payload.outerHeader(),
      formatHeaderField('MIME-Version', '1.0'),
      formatHeaderField('Content-Type', `application/pkcs7-mime; smime-type=${smimeType}; name=smime.p7m`),
      formatHeaderField('Content-Transfer-Encoding', 'base64'),
      formatHeaderField('Content-Disposition', 'attachment; filename=smime.p7m'),
      Buffer.from('\r\n'),
    ]),
  );
  const content = (async function* () {
    try {
      if (!first.done) yield first.value;
      for (let r = await it.next(); !r.done; r = await it.next()) yield r.value;
    } finally {
      await it.return?.();
    }
  })();
  await encryptToSink(content, base64Sink(output), { recipients: options.recipients, contentEncryption: name, sinkConsumesChunks: true });
  if (options.end !== false) await endWritable(output);
  return { warnings: payload.warnings };
}
