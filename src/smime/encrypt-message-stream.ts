/**
 * Streaming application/pkcs7-mime encryption (RFC 8551 section 3.3) for messages
 * too large to hold in memory: the payload comes from streamPayload (mailsplit,
 * on-the-fly base64 for 8-bit parts, RFC 9788 hp="cipher" with hcp_baseline
 * outside), encryptStream seals it, and the CMS output is base64-encoded into the
 * message as it is produced.
 *
 * Sign-then-encrypt is not streamed (use encryptMessage); on failure `output`
 * holds a partial message: write to an AtomicFile.
 */
import { Writable, type Readable } from 'node:stream';
import { encode as encodeBase64, wrap as wrapBase64 } from 'libbase64';
import { encryptStream } from '../cms/stream/encrypt-stream.ts';
import { writeChunk, endWritable } from '../cms/stream/write-chunk.ts';
import { KakitomeError } from '../errors.ts';
import { resolveLimits } from '../limits.ts';
import { formatHeaderField } from '../mime/build-entity.ts';
import type { EncryptMessageOptions } from './encrypt-message.ts';
import { formatOuterLines, streamPayload } from './stream-payload.ts';

export interface EncryptMessageStreamOptions extends Omit<EncryptMessageOptions, 'sign' | 'tripleWrap'> {
  /** Default true: end `output` when done. */
  end?: boolean;
}

/** 57 input bytes make one 76-character base64 line (RFC 2045 section 6.8). */
const B64_LINE_INPUT = 57;

/** A Writable that base64-encodes what it receives into `target`, 76 characters a line, honouring backpressure. */
function base64Writer(target: Writable): Writable {
  let carry = Buffer.alloc(0);
  return new Writable({
    write(chunk: Buffer, _e, cb) {
      const all = carry.length ? Buffer.concat([carry, chunk]) : chunk;
      const whole = all.length - (all.length % B64_LINE_INPUT);
      carry = Buffer.from(all.subarray(whole));
      if (whole === 0) return cb();
      const text = `${wrapBase64(encodeBase64(all.subarray(0, whole)), 76).replace(/\r?\n/g, '\r\n')}\r\n`;
      Promise.resolve(writeChunk(target, Buffer.from(text, 'latin1'))).then(() => cb(), cb);
    },
    final(cb) {
      if (carry.length === 0) return cb();
      Promise.resolve(writeChunk(target, Buffer.from(`${encodeBase64(carry)}\r\n`, 'latin1'))).then(() => cb(), cb);
    },
  });
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
  const payload = streamPayload(input, options.headerProtection === false ? undefined : 'cipher', limits);
  const name = options.contentEncryption ?? 'aes-256-gcm';
  const run = async (): Promise<void> => {
    // The first chunk comes after the root header section was read: the outer header lines are known.
    const it = payload.content[Symbol.asyncIterator]();
    const first = await it.next();
    const smimeType = name.endsWith('-cbc') ? 'enveloped-data' : 'authEnveloped-data';
    await writeChunk(
      output,
      Buffer.concat([
        formatOuterLines(payload.outerLines()),
        formatHeaderField('MIME-Version', '1.0'),
        formatHeaderField('Content-Type', `application/pkcs7-mime; smime-type=${smimeType}; name=smime.p7m`),
        formatHeaderField('Content-Transfer-Encoding', 'base64'),
        formatHeaderField('Content-Disposition', 'attachment; filename=smime.p7m'),
        Buffer.from('\r\n'),
      ]),
    );
    const content = (async function* () {
      if (!first.done) yield first.value;
      for (let r = await it.next(); !r.done; r = await it.next()) yield r.value;
    })();
    await encryptStream(content, base64Writer(output), { recipients: options.recipients, contentEncryption: name, end: true });
  };
  const work = Promise.all([payload.fed, run()]);
  work.catch(() => undefined);
  try {
    await Promise.race([work, payload.failed]);
  } catch (e) {
    payload.destroy();
    throw e;
  }
  if (options.end !== false) await endWritable(output);
  return { warnings: payload.warnings };
}
