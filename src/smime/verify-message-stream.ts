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
 * the signed part is not searched for further S/MIME parts or attached (forwarded)
 * messages (a warning says so, and the verdict has no attachedMessages);
 * verifyMessage does that.
 */
import type { Readable, Writable } from 'node:stream';
import { verifyDetachedPrehashed } from '../cms/stream/verify-stream.ts';
import { ContentSpool, type SpoolOptions } from '../cms/stream/content-spool.ts';
import { endWritable } from '../cms/stream/write-chunk.ts';
import { batchedWriter, freshCopy } from '../cms/stream/byte-sink.ts';
import type { SignedDataVerification } from '../cms/signed-data/verify.ts';
import { KakitomeError, isKakitomeError, malformed, type ErrorCode } from '../errors.ts';
import { resolveLimits, type Limits } from '../limits.ts';
import { OID } from '../asn1/oids.ts';
import { peekContentType } from './decrypt-message-stream.ts';
import { buildEntity, type HeaderInput } from '../mime/build-entity.ts';
import { decodeBody } from '../mime/decode-body.ts';
import { parseEntity } from '../mime/parse-entity.ts';
import { parseHeaderSection } from '../mime/parse-header-section.ts';
import { parseContentType } from '../mime/parse-content-type.ts';
import { headerOnlyEntity, readHeaderSection } from './read-header-section-stream.ts';
import { checkMultipartEncoding, readTypingFields } from '../mime/check-multipart-encoding.ts';
import { MultipartEncodingWatch } from '../mime/watch-multipart-encodings.ts';
import { SignedBodyScanner, digestsForMicalg, hashAll } from './scan-signed-body.ts';
import { classifyEntity } from './classify-entity.ts';
import { isAttachedMessage } from './open-attached-messages.ts';
import { PROTECTED_HEADER_NAMES, isContentField, readProtectedHeaders } from './header-protection.ts';
import { judgeMessage, type PendingSigner } from './judge-message.ts';
import { signedContentProblem } from './signed-content-problem.ts';
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
/** Bytes per write to `output` (see release()). */
const OUTPUT_PIECE = 64 * 1024;

/**
 * Verifies the message read from `input`. The verdict's `output` is empty: the
 * unsigned message goes to `options.output`.
 *
 * `input` may reuse its buffers: each chunk is done with before the chunk after the
 * next one is requested (readFileChunks keeps exactly that contract, and avoids the
 * garbage fs.createReadStream leaves for V8 to collect: docs/performance.md).
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
  const { contentTypeField, transferEncoding } = readTypingFields(section.fields);
  const root = { headers: section.fields, contentType: parseContentType(contentTypeField?.value) };
  const boundary = root.contentType.params.boundary;
  const protocol = root.contentType.params.protocol?.toLowerCase();
  // Streaming covers the well-formed S/MIME case; a missing or odd protocol parameter is judged by verifyMessage.
  const streamable = root.contentType.mediaType === 'multipart/signed' && boundary !== undefined && (protocol === 'application/pkcs7-signature' || protocol === 'application/x-pkcs7-signature');
  // A multipart/signed in a transfer encoding has two readings (check-multipart-encoding.ts); unsigned mail is read as before.
  if (streamable) checkMultipartEncoding({ contentType: root.contentType, transferEncoding });
  const kindWarnings = protocol === 'application/x-pkcs7-signature' ? ['Legacy protocol parameter application/x-pkcs7-signature (RFC 2311); accepted.'] : [];

  /** Writes `bytes` in fresh copies of OUTPUT_PIECE bytes: a Writable keeps what it is given, and the spool reuses its buffers. */
  const release = async (bytes: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, verdict: MessageVerdict): Promise<MessageVerdict> => {
    if (options.output) {
      const sink = batchedWriter(options.output);
      for await (const c of bytes) for (let p = 0; p < c.length; p += OUTPUT_PIECE) await sink.write(freshCopy(c, p, Math.min(c.length, p + OUTPUT_PIECE)));
      await sink.flush();
      if (options.end !== false) await endWritable(options.output);
    }
    return verdict;
  };

  if (!streamable || boundary === undefined) {
    // Not a detached signature: bounded in-memory reading (copies: the caller may reuse its buffers).
    const chunks: Buffer[] = [head, Buffer.from(rest)];
    let total = head.length + rest.length;
    for (let r = await it.next(); !r.done; r = await it.next()) {
      total += r.value.length;
      if (total > limits.maxMessageBytes) throw new KakitomeError('LIMIT', `A message of more than ${limits.maxMessageBytes} bytes exceeds the limit.`);
      chunks.push(Buffer.from(r.value));
    }
    const v = await openMessage(Buffer.concat(chunks), options);
    v.warnings.unshift(...warnings);
    return release([v.output], { ...v, output: Buffer.alloc(0) });
  }

  const spool = new ContentSpool({ ...(options.spool ?? {}), maxBytes: Math.min(options.spool?.maxBytes ?? Infinity, limits.maxStreamMessageBytes) });
  try {
    // The content is hashed as it is spooled, with the digests micalg announces (RFC 8551
    // section 3.5.3.2); a signer using another one costs a pass over the spool.
    const hashing = hashAll(digestsForMicalg(root.contentType.params.micalg));
    // Every multipart in the signed content, as it passes: one in a transfer encoding is MALFORMED.
    const watch = new MultipartEncodingWatch(limits);
    // Copies of the input, until the signed part's start shows it is no S/MIME layer (nestedLayer):
    // verifyMessage counts the signers of a layer inside the signature, which this path does not open.
    let held: Buffer[] | undefined = [head, Buffer.from(rest)];
    const partStart = new PartStart(limits);
    const scanner = new SignedBodyScanner(boundary, limits, async (bytes) => {
      hashing.update(bytes);
      watch.push(bytes);
      if (held && partStart.push(bytes) && !nestedLayer(partStart.bytes, limits)) held = undefined;
      await spool.write(bytes);
    });
    let total = head.length + rest.length;
    if (rest.length) await scanner.write(rest);
    for (let r = await it.next(); !r.done; r = await it.next()) {
      total += r.value.length;
      if (total > limits.maxStreamMessageBytes) throw new KakitomeError('LIMIT', `A message of more than ${limits.maxStreamMessageBytes} bytes exceeds the streaming limit.`);
      if (held) {
        if (total > limits.maxMessageBytes) held = [];
        else held.push(Buffer.from(r.value));
      }
      await scanner.write(r.value);
    }
    const scan = await scanner.end();
    watch.end();
    if (held && nestedLayer(partStart.bytes, limits)) {
      // A signed, compressed or encrypted layer inside the signature: verifyMessage reads the message, as for opaque signing.
      if (held.length === 0) throw new KakitomeError('LIMIT', `The signed content is itself an S/MIME layer, which is read only in memory, and the message is larger than ${limits.maxMessageBytes} bytes.`);
      const v = await openMessage(Buffer.concat(held), options);
      v.warnings.unshift(...warnings);
      return await release([v.output], { ...v, output: Buffer.alloc(0) });
    }
    const headBytes = scan.head;
    // The blank line before the delimiter belongs to it, and so does a final line break of the signature part.
    const signatureEntity = parseEntity(scan.signature, { limits });
    if (!SIGNATURE_TYPES.has(signatureEntity.contentType.mediaType)) malformed(`multipart/signed second part is ${signatureEntity.contentType.mediaType}, not a PKCS #7 signature`);
    const layerWarnings = [...kindWarnings];
    const layers: LayerReport[] = [];
    const pending: PendingSigner[] = [];
    let bodyFailure: { code: ErrorCode; message: string } | undefined;
    let v: SignedDataVerification | undefined;
    try {
      v = await verifyDetachedPrehashed(
        decodeBody(signatureEntity),
        hashing.digests(),
        async (missing) => {
          const again = hashAll(missing);
          for await (const c of spool.replay({ reuse: true })) again.update(c);
          return again.digests();
        },
        { ...(options.certificates ? { certificates: options.certificates } : {}), ...(options.allowLegacy ? { allowLegacy: true } : {}), ...(options.now ? { now: options.now } : {}), ...(options.clockSkewMs !== undefined ? { clockSkewMs: options.clockSkewMs } : {}), limits },
      );
      const notMessage = signedContentProblem(v.contentType, 'detached');
      if (notMessage) {
        bodyFailure = notMessage;
        layerWarnings.push(notMessage.message);
      } else {
        layerWarnings.push(...v.warnings);
        v.signers.forEach((_, i) => pending.push({ verification: v!, index: i, scope: 'message' }));
      }
    } catch (e) {
      if (!isKakitomeError(e, 'NO_SIGNERS') && !isKakitomeError(e, 'AMBIGUOUS_CONTENT')) throw e;
      bodyFailure = { code: e.code, message: e.message };
      layerWarnings.push(e.message);
    }
    layers.push({ kind: 'signed', form: 'detached', mediaType: root.contentType.mediaType, coversBody: true, warnings: layerWarnings });

    const payload = headerOnlyEntity(headBytes, limits);
    if (classifyEntity(payload).kind !== 'none' || payload.contentType.type === 'multipart' || isAttachedMessage(payload)) {
      warnings.push('Streaming verification does not open S/MIME layers, signed parts or attached (forwarded) messages inside the signed content; verifyMessage does.');
    }
    const messageHeaders = root.headers.filter((h) => !isContentField(h.name));
    const protectedHeaders = readProtectedHeaders(payload, messageHeaders, false);
    if (protectedHeaders) for (const m of protectedHeaders.mismatches) warnings.push(`Protected header mismatch: ${m}`);
    const judged = await judgeMessage({
      layers,
      pending,
      fromHeaders: protectedHeaders ? payload.headers : messageHeaders,
      outerHeaders: messageHeaders,
      // The protected header section is the signed part's own: the signature covers it.
      ...(protectedHeaders ? { protectedHeaders, protectedHeadersSigned: true } : {}),
      ...(bodyFailure ? { bodyFailure } : {}),
      ...(options.validateSigner ? { validateSigner: options.validateSigner } : {}),
      ...(options.certificates?.length ? { certificates: options.certificates } : {}),
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
    const skip = headBytes.length + scan.blankEol;
    const body = (async function* () {
      yield top;
      let seen = 0;
      for await (const c of spool.replay({ reuse: true })) {
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

/** Bytes of the signed part's body looked at to tell an S/MIME layer's CMS content type (base64 of a ContentInfo's first fields). */
const PEEK_BODY_BYTES = 256;

/** The start of the signed part: its header section and the first PEEK_BODY_BYTES of its body. */
class PartStart {
  readonly #limits: Limits;
  #pieces: Buffer[] = [];
  #size = 0;
  bytes: Buffer = Buffer.alloc(0);

  constructor(limits: Limits) {
    this.#limits = limits;
  }

  /** Takes the part's next bytes; true once enough is known (or the header section is over the limit: the scanner refuses it). */
  push(b: Uint8Array): boolean {
    const want = this.#limits.maxHeaderBytes + 4 + PEEK_BODY_BYTES;
    if (this.#size < want) {
      this.#pieces.push(Buffer.from(b.subarray(0, want - this.#size)));
      this.#size += Math.min(b.length, want - this.#size);
      this.bytes = Buffer.concat(this.#pieces);
      this.#pieces = [this.bytes];
    }
    const blank = findBlankLine(this.bytes);
    return this.#size >= want || (blank >= 0 && this.#size >= blank + PEEK_BODY_BYTES);
  }
}

function findBlankLine(b: Buffer): number {
  if (b.subarray(0, 2).equals(CRLF)) return 2;
  const i = b.indexOf('\r\n\r\n');
  return i < 0 ? -1 : i + 4;
}
const CRLF = Buffer.from('\r\n');

/**
 * Whether the signed part (its start) is an S/MIME layer whose signers verifyMessage
 * would count: multipart/signed, or application/pkcs7-mime (or its octet-stream
 * form) whose body is not an envelope (smime-type is not trusted for that: a
 * SignedData labelled enveloped-data is read as SignedData). An envelope stays
 * closed in both readers (no keys here), so the streamed verdict stands.
 */
function nestedLayer(start: Buffer, limits: Limits): boolean {
  const blank = findBlankLine(start);
  if (blank < 0) return false; // no header section: text (or over the limit, refused by the scanner)
  let entity;
  try {
    entity = headerOnlyEntity(start.subarray(0, blank), limits);
  } catch {
    return false; // the verification pass reads the same header and reports it
  }
  if (entity.contentType.mediaType === 'multipart/signed') return true;
  const k = classifyEntity(entity);
  if (k.kind !== 'pkcs7-mime') return k.kind === 'multipart-signed';
  const body = start.subarray(blank);
  const te = entity.transferEncoding;
  let der: Buffer;
  if (te === 'base64') {
    const text = body.toString('latin1').replace(/[^A-Za-z0-9+/]/g, '');
    der = Buffer.from(text.slice(0, text.length - (text.length % 4)), 'base64');
  } else if (te === '7bit' || te === '8bit' || te === 'binary') der = body;
  else return true;
  const ct = peekContentType(der);
  return ct !== OID.envelopedData && ct !== OID.authEnvelopedData;
}
