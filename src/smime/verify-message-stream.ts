/**
 * Streaming verification of multipart/signed messages too large to hold in memory
 * (RFC 1847 section 2.1, RFC 8551 section 3.5.3). The body is scanned line by line
 * for its boundary delimiters; the first part's exact bytes are spooled (memory,
 * then an unlinked temporary file: ContentSpool) while its header section is kept
 * for header protection; the signature part (bounded) is then verified with
 * verifyStream over the spooled content, and the verdict comes from the same rules
 * as verifyMessage (judge-message.ts). The unsigned message is written to
 * `options.output` after the verdict, never before.
 *
 * Any other structure (opaque signing, encryption, unsigned mail) is read into
 * memory up to limits.maxMessageBytes and given to verifyMessage. In streaming mode
 * the signed part is not searched for further S/MIME parts (nested layers are
 * reported in `warnings`); verifyMessage does that.
 */
import type { Readable, Writable } from 'node:stream';
import { verifyStream } from '../cms/stream/verify-stream.ts';
import { ContentSpool, type SpoolOptions } from '../cms/stream/content-spool.ts';
import { writeChunk, endWritable } from '../cms/stream/write-chunk.ts';
import type { SignedDataVerification } from '../cms/signed-data/verify.ts';
import { KakitomeError, isKakitomeError, malformed, type ErrorCode } from '../errors.ts';
import { resolveLimits, type Limits } from '../limits.ts';
import { buildEntity, type HeaderInput } from '../mime/build-entity.ts';
import { decodeBody } from '../mime/decode-body.ts';
import type { MimeEntity } from '../mime/entity.ts';
import { parseEntity } from '../mime/parse-entity.ts';
import { parseHeaderSection } from '../mime/parse-header-section.ts';
import { parseContentType } from '../mime/parse-content-type.ts';
import { classifyEntity } from './classify-entity.ts';
import { PROTECTED_HEADER_NAMES, isContentField, readProtectedHeaders } from './header-protection.ts';
import { judgeMessage, type PendingSigner } from './judge-message.ts';
import { openMessage } from './open-message.ts';
import { canonicalInput } from './stream-payload.ts';
import type { LayerReport, MessageVerdict } from './verdict.ts';
import type { VerifyMessageOptions } from './verify-message.ts';

export interface VerifyMessageStreamOptions extends VerifyMessageOptions {
  /** Receives the message with the signature layer removed, after the verdict. */
  output?: Writable;
  /** Default true: end `output`. */
  end?: boolean;
  /** Where the signed content waits (memory threshold, spill directory, size cap). */
  spool?: SpoolOptions;
}

const SIGNATURE_TYPES = new Set(['application/pkcs7-signature', 'application/x-pkcs7-signature']);
/** A signature part larger than this is not a signature (certificates included). */
const MAX_SIGNATURE_PART = 16 * 1024 * 1024;
/** Lines longer than this are passed on in pieces; no delimiter is this long. */
const MAX_HELD_LINE = 64 * 1024;

/**
 * Finds the delimiter lines of one boundary in a stream of chunks (RFC 2046
 * section 5.1.1) and hands out the bytes between them in bulk. The line break
 * before a delimiter belongs to the delimiter, so up to marker + 2 bytes are held
 * back at the end of each chunk until the next chunk decides.
 */
class BoundaryScanner {
  readonly #marker: Buffer;
  readonly #onBytes: (bytes: Buffer) => Promise<void>;
  readonly #onDelimiter: (kind: 'open' | 'close') => void;
  #carry: Buffer = Buffer.alloc(0);
  /** True when #carry starts a line. */
  #lineStart = true;
  /** Start of a possible delimiter whose line is not complete yet, in the current buffer. */
  #pendingAt = -1;
  readonly #maxLine: number;

  constructor(boundary: string, maxLine: number, onBytes: (bytes: Buffer) => Promise<void>, onDelimiter: (kind: 'open' | 'close') => void) {
    this.#marker = Buffer.from(`--${boundary}`, 'latin1');
    this.#maxLine = maxLine;
    this.#onBytes = onBytes;
    this.#onDelimiter = onDelimiter;
  }

  async write(chunk: Buffer, final = false): Promise<void> {
    let buf = this.#carry.length ? Buffer.concat([this.#carry, chunk]) : chunk;
    let pos = 0;
    for (;;) {
      const at = buf.indexOf(this.#marker, pos);
      if (at < 0) break;
      const lineStart = at === 0 ? this.#lineStart : buf[at - 1] === 0x0a;
      const nl = buf.indexOf(0x0a, at + this.#marker.length);
      if (!lineStart) {
        pos = at + 1;
        continue;
      }
      const lineEnd = nl < 0 ? buf.length : nl > 0 && buf[nl - 1] === 0x0d ? nl - 1 : nl;
      let p = at + this.#marker.length;
      const close = buf[p] === 0x2d && buf[p + 1] === 0x2d;
      if (close) p += 2;
      while (p < lineEnd && (buf[p] === 0x20 || buf[p] === 0x09)) p++;
      if (nl < 0 && !final) {
        // Incomplete line: a delimiter only if nothing but transport padding (or a lone CR) follows so far.
        if (p < buf.length && !(p === buf.length - 1 && buf[p] === 0x0d)) {
          pos = at + 1;
          continue;
        }
        if (buf.length - at > this.#maxLine) throw new KakitomeError('LIMIT', 'A boundary line exceeds the line limit.');
        this.#pendingAt = at;
        break;
      }
      if (p !== lineEnd) {
        pos = at + 1;
        continue;
      }
      // Content ends before the line break that precedes the delimiter.
      let contentEnd = at;
      if (at > 0 && buf[at - 1] === 0x0a) contentEnd = at >= 2 && buf[at - 2] === 0x0d ? at - 2 : at - 1;
      if (contentEnd > 0) await this.#onBytes(buf.subarray(0, contentEnd));
      this.#onDelimiter(close ? 'close' : 'open');
      buf = buf.subarray(nl < 0 ? buf.length : nl + 1);
      this.#lineStart = true;
      pos = 0;
    }
    if (final) {
      if (buf.length) await this.#onBytes(buf);
      this.#carry = Buffer.alloc(0);
      return;
    }
    // Hold back what could still become "CRLF--boundary...": a possible delimiter whose line is
    // incomplete (with the line break before it), or a tail that could be the start of one.
    let keepFrom = buf.length - Math.min(buf.length, this.#marker.length + 2);
    const at = this.#pendingAt;
    this.#pendingAt = -1;
    if (at >= 0) keepFrom = Math.min(keepFrom, at >= 2 && buf[at - 2] === 0x0d ? at - 2 : at >= 1 && buf[at - 1] === 0x0a ? at - 1 : at);
    if (keepFrom > 0) {
      await this.#onBytes(buf.subarray(0, keepFrom));
      this.#lineStart = buf[keepFrom - 1] === 0x0a;
    }
    this.#carry = Buffer.from(buf.subarray(keepFrom));
  }
}

/** Reads the header section (up to and including the blank line); returns it and the bytes after it. */
async function readHeaderSection(it: AsyncIterator<Buffer>, limits: Limits): Promise<{ head: Buffer; rest: Buffer }> {
  let buf: Buffer = Buffer.alloc(0);
  for (;;) {
    const crlf = buf.indexOf('\r\n\r\n');
    const lf = buf.indexOf('\n\n');
    const at = buf.subarray(0, 2).equals(Buffer.from('\r\n')) ? 0 : buf[0] === 0x0a ? 0 : -1;
    if (at === 0) return { head: buf.subarray(0, buf[0] === 0x0a ? 1 : 2), rest: buf.subarray(buf[0] === 0x0a ? 1 : 2) };
    const end = crlf >= 0 && (lf < 0 || crlf < lf) ? crlf + 4 : lf >= 0 ? lf + 2 : -1;
    if (end >= 0) return { head: buf.subarray(0, end), rest: buf.subarray(end) };
    if (buf.length > limits.maxHeaderBytes) throw new KakitomeError('LIMIT', `A header section of more than ${limits.maxHeaderBytes} bytes exceeds the header limit.`);
    const r = await it.next();
    if (r.done) return { head: buf, rest: Buffer.alloc(0) };
    buf = buf.length ? Buffer.concat([buf, r.value]) : r.value;
  }
}

/** An entity known by its header section only (its body is still streaming): no multipart split. */
function headerOnlyEntity(head: Buffer, limits: Limits): MimeEntity {
  const section = parseHeaderSection(head, 0, head.length, limits);
  const ct = section.fields.filter((h) => h.name.toLowerCase() === 'content-type');
  const cte = section.fields.filter((h) => h.name.toLowerCase() === 'content-transfer-encoding');
  if (ct.length > 1) malformed('an entity has more than one Content-Type field');
  if (cte.length > 1) malformed('an entity has more than one Content-Transfer-Encoding field');
  return {
    raw: head,
    offset: 0,
    headers: section.fields,
    headerBytes: head,
    body: Buffer.alloc(0),
    contentType: parseContentType(ct[0]?.value),
    transferEncoding: cte[0]?.value.toLowerCase().trim() ?? '7bit',
    children: [],
    depth: 0,
    warnings: section.warnings,
  };
}

/**
 * Verifies the message read from `input`. The verdict's `output` is empty: the
 * unsigned message goes to `options.output`.
 *
 * @example
 *   const v = await verifyMessageStream(createReadStream('big.eml'), { validateSigner, output: file.stream });
 */
export async function verifyMessageStream(input: Readable | AsyncIterable<Uint8Array>, options: VerifyMessageStreamOptions = {}): Promise<MessageVerdict> {
  const limits = resolveLimits(options.limits);
  const warnings: string[] = [];
  const it = canonicalInput(input as AsyncIterable<Uint8Array>, warnings)[Symbol.asyncIterator]();
  const { head, rest } = await readHeaderSection(it, limits);
  // The header section alone (the body is still unread): fields and Content-Type, no multipart split.
  const section = parseHeaderSection(head, 0, head.length, limits, true);
  warnings.push(...section.warnings);
  const ctFields = section.fields.filter((h) => h.name.toLowerCase() === 'content-type');
  if (ctFields.length > 1) malformed('an entity has more than one Content-Type field');
  const root = { headers: section.fields, contentType: parseContentType(ctFields[0]?.value) };
  const boundary = root.contentType.params.boundary;
  const protocol = root.contentType.params.protocol?.toLowerCase();
  // Streaming covers the well-formed S/MIME case; a missing or odd protocol parameter is judged by verifyMessage.
  const streamable = root.contentType.mediaType === 'multipart/signed' && boundary !== undefined && (protocol === 'application/pkcs7-signature' || protocol === 'application/x-pkcs7-signature');
  const kindWarnings = protocol === 'application/x-pkcs7-signature' ? ['Legacy protocol parameter application/x-pkcs7-signature (RFC 2311); accepted.'] : [];

  const release = async (bytes: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, verdict: MessageVerdict): Promise<MessageVerdict> => {
    if (options.output) {
      for await (const c of bytes) await writeChunk(options.output, c);
      if (options.end !== false) await endWritable(options.output);
    }
    return verdict;
  };

  if (!streamable || boundary === undefined) {
    // Not a detached signature: bounded in-memory reading.
    const chunks: Buffer[] = [head, rest];
    let total = head.length + rest.length;
    for (let r = await it.next(); !r.done; r = await it.next()) {
      total += r.value.length;
      if (total > limits.maxMessageBytes) throw new KakitomeError('LIMIT', `A message of more than ${limits.maxMessageBytes} bytes exceeds the limit.`);
      chunks.push(r.value);
    }
    const v = await openMessage(Buffer.concat(chunks), options);
    v.warnings.unshift(...warnings);
    return release([v.output], { ...v, output: Buffer.alloc(0) });
  }

  const marker = Buffer.from(`--${boundary}`, 'latin1');
  const spool = new ContentSpool({ ...(options.spool ?? {}), maxBytes: Math.min(options.spool?.maxBytes ?? Infinity, limits.maxMessageBytes) });
  try {
    let state = 'preamble' as 'preamble' | 'content' | 'signature' | 'epilogue';
    let payloadHead: Buffer = Buffer.alloc(0);
    let payloadHeadDone = false;
    let headBytes: Buffer = Buffer.alloc(0);
    let blankEol = 0;
    const signature: Buffer[] = [];
    let signatureBytes = 0;
    const scanner = new BoundaryScanner(
      boundary,
      limits.maxLineLength,
      async (bytes) => {
        if (state === 'content') {
          await spool.write(bytes);
          if (!payloadHeadDone) {
            // The signed part's header section, for RFC 9788 header protection and the output.
            payloadHead = Buffer.concat([payloadHead, bytes]);
            const crlf = payloadHead.indexOf('\r\n\r\n');
            const lf = payloadHead.indexOf('\n\n');
            if (payloadHead[0] === 0x0d && payloadHead[1] === 0x0a) [payloadHeadDone, blankEol] = [true, 2];
            else if (payloadHead[0] === 0x0a) [payloadHeadDone, blankEol] = [true, 1];
            else if (crlf >= 0 && (lf < 0 || crlf < lf)) [payloadHeadDone, blankEol, headBytes] = [true, 2, payloadHead.subarray(0, crlf + 2)];
            else if (lf >= 0) [payloadHeadDone, blankEol, headBytes] = [true, 1, payloadHead.subarray(0, lf + 1)];
            else if (payloadHead.length > limits.maxHeaderBytes) throw new KakitomeError('LIMIT', 'The signed part has a header section over the header limit.');
            if (payloadHeadDone) payloadHead = Buffer.alloc(0);
          }
        } else if (state === 'signature') {
          signatureBytes += bytes.length;
          if (signatureBytes > MAX_SIGNATURE_PART) throw new KakitomeError('LIMIT', 'The signature part is larger than any signature.');
          signature.push(Buffer.from(bytes));
        }
      },
      (d) => {
        if (state === 'preamble' && d === 'open') state = 'content';
        else if (state === 'content' && d === 'open') state = 'signature';
        else if (state === 'signature' && d === 'close') state = 'epilogue';
        else if (state !== 'epilogue') malformed('multipart/signed must have exactly two parts (RFC 1847 section 2.1)');
      },
    );
    if (rest.length) await scanner.write(rest);
    for (let r = await it.next(); !r.done; r = await it.next()) await scanner.write(r.value);
    await scanner.write(Buffer.alloc(0), true);
    if (!payloadHeadDone) headBytes = payloadHead;
    if (state !== 'epilogue') {
      if (state !== 'signature') malformed('multipart/signed body ended before its signature part');
      warnings.push('The multipart has no close delimiter; its last part runs to the end of the body.');
    }
    // The blank line before the delimiter belongs to it, and so does a final line break of the signature part.
    const signatureEntity = parseEntity(Buffer.concat(signature), { limits });
    if (!SIGNATURE_TYPES.has(signatureEntity.contentType.mediaType)) malformed(`multipart/signed second part is ${signatureEntity.contentType.mediaType}, not a PKCS #7 signature`);
    const layerWarnings = [...kindWarnings];
    const layers: LayerReport[] = [];
    const pending: PendingSigner[] = [];
    let bodyFailure: { code: ErrorCode; message: string } | undefined;
    let v: SignedDataVerification | undefined;
    try {
      const der: Uint8Array = decodeBody(signatureEntity);
      v = await verifyStream((async function* () { yield der; })(), {
        detachedContent: spool.replay(),
        ...(options.certificates ? { certificates: options.certificates } : {}),
        ...(options.now ? { now: options.now } : {}),
        limits,
      });
      layerWarnings.push(...v.warnings);
      v.signers.forEach((_, i) => pending.push({ verification: v!, index: i, scope: 'message' }));
    } catch (e) {
      if (!isKakitomeError(e, 'NO_SIGNERS') && !isKakitomeError(e, 'AMBIGUOUS_CONTENT')) throw e;
      bodyFailure = { code: e.code, message: e.message };
      layerWarnings.push(e.message);
    }
    layers.push({ kind: 'signed', form: 'detached', mediaType: root.contentType.mediaType, coversBody: true, warnings: layerWarnings });

    const payload = headerOnlyEntity(headBytes, limits);
    if (classifyEntity(payload).kind !== 'none' || payload.contentType.type === 'multipart') {
      warnings.push('Streaming verification does not open S/MIME layers or look for signed parts inside the signed content; verifyMessage does.');
    }
    const messageHeaders = root.headers.filter((h) => !isContentField(h.name));
    const protectedHeaders = readProtectedHeaders(payload, messageHeaders, false);
    if (protectedHeaders) for (const m of protectedHeaders.mismatches) warnings.push(`Protected header mismatch: ${m}`);
    const judged = await judgeMessage({
      layers,
      pending,
      fromHeaders: protectedHeaders ? payload.headers : messageHeaders,
      ...(protectedHeaders ? { protectedHeaders } : {}),
      ...(bodyFailure ? { bodyFailure } : {}),
      unauthenticatedLayer: false,
      ...(options.validateSigner ? { validateSigner: options.validateSigner } : {}),
      warnings,
    });
    for (const w of layerWarnings) if (!warnings.includes(w)) warnings.push(w);
    const verdict: MessageVerdict = { ...judged, layers, warnings, ...(protectedHeaders ? { protectedHeaders } : {}), output: Buffer.alloc(0) };
    if (!options.output) return verdict;
    // Output: the message headers (protected ones replacing outer ones) over the signed part.
    const outer: HeaderInput[] = protectedHeaders ? messageHeaders.filter((h) => !PROTECTED_HEADER_NAMES.includes(h.name.toLowerCase())) : [...messageHeaders];
    const inner: HeaderInput[] = protectedHeaders ? payload.headers.filter((h) => PROTECTED_HEADER_NAMES.includes(h.name.toLowerCase())) : [];
    const content = payload.headers.filter((h) => isContentField(h.name) && h.name.toLowerCase() !== 'mime-version');
    const top = buildEntity([...outer, ...inner, ['MIME-Version', '1.0'], ...content], Buffer.alloc(0));
    const skip = headBytes.length + blankEol;
    const body = (async function* () {
      yield top;
      let seen = 0;
      for await (const c of spool.replay()) {
        if (seen + c.length <= skip) {
          seen += c.length;
          continue;
        }
        yield seen >= skip ? c : c.subarray(skip - seen);
        seen += c.length;
      }
    })();
    return await release(body, verdict);
  } finally {
    await spool.dispose();
  }
}
