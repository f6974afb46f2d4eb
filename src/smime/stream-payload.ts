/**
 * The streaming Cryptographic Payload (RFC 9788 section 1.1) shared by
 * signMessageStream and encryptMessageStream: the message read chunk by chunk is
 * walked by MimeStreamWalker (src/mime/walk-mime-stream.ts), its message header
 * fields are taken out of the root part, RFC 9788 header protection is added
 * (hp="clear", or hp="cipher" with the Header Confidentiality Policy outside and
 * HP-Outer inside, as prepare-content.ts does in memory), 8-bit and binary leaves
 * are re-encoded as base64 on the fly, and everything else is passed through byte
 * for byte as slices of the input chunks. With hideSubject each main body part is
 * held back (up to LEGACY_DISPLAY_MAX_BODY_BYTES) and written with the Legacy
 * Display Element by legacy-display.ts, the function encryptMessage uses.
 *
 * 8-bit text is re-encoded as base64, not quoted-printable: base64 can be cut at any
 * 57-byte boundary, QP needs whole lines (RFC 8551 section 3.1.2 allows both). A
 * part that declares 7bit but carries 8-bit bytes is passed through (its header is
 * already written when that is seen) and reported in `warnings`.
 *
 * Memory: nothing is held but one header section (bounded by limits.maxHeaderBytes),
 * a possible delimiter line and, with hideSubject, one main body part (1 MiB). The input's chunks are passed on, not copied (see
 * prompt-scavenge.ts for how they are freed early).
 */
import { isAscii } from 'node:buffer';
import { KakitomeError } from '../errors.ts';
import type { Limits } from '../limits.ts';
import { formatHeaderField, formatHeaderSection, formatParameterizedValue, type HeaderInput } from '../mime/build-entity.ts';
import { Base64LineEncoder } from '../mime/encode-base64-lines.ts';
import type { HeaderField } from '../mime/entity.ts';
import { checkMultipartEncoding } from '../mime/check-multipart-encoding.ts';
import { MimeStreamWalker, type MimeStreamHandler, type StreamEntityHeader } from '../mime/walk-mime-stream.ts';
import { parseContentType } from '../mime/parse-content-type.ts';
import { applyHeaderConfidentiality, copyFieldsInside, isContentField, selectProtectedFields, subjectOf } from './header-protection.ts';
import { LEGACY_DISPLAY_MAX_BODY_BYTES, LEGACY_DISPLAY_TOO_LARGE, addLegacyDisplay, isMainBodyLeaf, isMainChild, legacyDisplayBlockedBy, legacyDisplayLines } from './legacy-display.ts';
import { refuseRepeatedOriginator } from './read-displayed-sender.ts';
import { canonicalInput } from './canonical-input.ts';
import { ScavengePrompter } from '../cms/stream/prompt-scavenge.ts';

export { canonicalInput };

const CRLF = Buffer.from('\r\n');
const KNOWN_ENCODINGS = new Set(['7bit', '8bit', 'binary', 'base64', 'quoted-printable']);

export interface StreamPayload {
  /** The Cryptographic Payload's bytes, in order. Errors (LIMIT, MALFORMED, UNSUPPORTED_ALG) are thrown from the iteration. */
  content: AsyncIterable<Buffer>;
  /** The message header fields to write outside, CRLF-terminated (known once the first content chunk arrived, or after ready()). */
  outerHeader(): Buffer;
  /** Reads ahead until the root header section is known (the first chunk of `content`, which is kept for it). */
  ready(): Promise<void>;
  /** Conversions and deviations noticed so far (complete once `content` is exhausted). */
  readonly warnings: string[];
}

/** Replaces the Content-Transfer-Encoding field in place (RFC 2045 section 6). */
function withTransferEncoding(fields: readonly HeaderField[], encoding: string): HeaderInput[] {
  return fields.map((f) => (f.name.toLowerCase() === 'content-transfer-encoding' ? (['Content-Transfer-Encoding', encoding] as const) : f));
}

/** A field to write as a HeaderField (a formatted one for a name and value). */
function asField(h: HeaderInput): HeaderField {
  return 'raw' in h ? h : { name: h[0], value: h[1], raw: formatHeaderField(h[0], h[1]) };
}

/** A multipart on the way down: where its children stand (legacy-display.ts isMainChild). */
interface Frame {
  subtype: string;
  main: boolean;
  children: number;
}

/** Turns walker events into payload bytes, collected in `out` until the caller takes them. */
class PayloadWriter implements MimeStreamHandler {
  out: Buffer[] = [];
  readonly warnings: string[] = [];
  outer: HeaderInput[] = [];
  readonly #protect: 'clear' | 'cipher' | undefined;
  readonly #hideSubject: boolean;
  #encoder: Base64LineEncoder | undefined;
  /** The current leaf is 7bit or quoted-printable: 8-bit bytes in it are reported. */
  #checkSevenBit = false;
  #warnedEightBit = false;
  /** With hideSubject: the legacy display lines (known from the root header) and the multiparts above the current entity. */
  #lines: string[] = [];
  #frames: Frame[] = [];
  /** A main body part held back to receive the legacy display (at most LEGACY_DISPLAY_MAX_BODY_BYTES of body). */
  #held: { entity: StreamEntityHeader; chunks: Buffer[]; size: number } | undefined;

  constructor(protect: 'clear' | 'cipher' | undefined, hideSubject: boolean) {
    this.#protect = protect;
    this.#hideSubject = hideSubject;
  }

  header(entity: StreamEntityHeader): void {
    const te = entity.transferEncoding;
    // As prepareContent: content with two readings is not signed or encrypted.
    checkMultipartEncoding(entity, true);
    if (!KNOWN_ENCODINGS.has(te)) throw new KakitomeError('UNSUPPORTED_ALG', `Unknown Content-Transfer-Encoding "${te}".`);
    // As splitMessage: a message with two From (or Sender) fields is not signed or encrypted.
    if (entity.depth === 0) refuseRepeatedOriginator(entity.fields);
    if (this.#hideSubject && this.#holdsForLegacyDisplay(entity)) return;
    this.#emitHeader(entity);
  }

  /**
   * Whether `entity` is a main body part to hold back for the legacy display (as
   * withLegacyDisplay chooses them in memory); keeps track of where entities stand.
   */
  #holdsForLegacyDisplay(entity: StreamEntityHeader): boolean {
    if (entity.depth === 0) this.#lines = legacyDisplayLines(subjectOf(entity.fields.filter((f) => !isContentField(f.name))));
    const parent = entity.depth > 0 ? this.#frames[entity.depth - 1] : undefined;
    const main = entity.depth === 0 || (parent !== undefined && isMainChild(parent.main, parent.subtype, parent.children++));
    this.#frames.length = entity.depth;
    if (this.#lines.length === 0) return false;
    const ct = entity.contentType;
    if (ct.type === 'multipart') {
      this.#frames[entity.depth] = { subtype: ct.subtype, main, children: 0 };
      const blocked = main ? legacyDisplayBlockedBy(ct) : undefined;
      if (blocked) this.warnings.push(blocked);
      return false;
    }
    if (!main || !isMainBodyLeaf(ct, entity.fields)) return false;
    this.#held = { entity, chunks: [], size: 0 };
    return true;
  }

  /** The held part as it came (too large, or its charset cannot carry the display). */
  #releaseHeld(): void {
    const held = this.#held!;
    this.#held = undefined;
    this.#emitHeader(held.entity);
    for (const c of held.chunks) this.#emitBody(c);
  }

  #emitHeader(entity: StreamEntityHeader): void {
    const te = entity.transferEncoding;
    const multipart = entity.contentType.type === 'multipart';
    const eightBit = te === '8bit' || te === 'binary';
    // RFC 8551 section 3.1.2: only 7-bit content is signed. A multipart may only be 7bit/8bit/binary
    // (RFC 2045 section 6.4): once its parts are 7-bit, so is it. message/* cannot be base64-encoded
    // (RFC 2046 section 5.2.1) and streaming does not re-encode inside it.
    let encoding: string | undefined;
    if (eightBit && multipart) encoding = '7bit';
    else if (eightBit && entity.contentType.type === 'message') {
      this.warnings.push(`A ${entity.contentType.mediaType} part is ${te}; streaming cannot re-encode inside it: it was signed as is and relays may alter it.`);
    } else if (eightBit) encoding = 'base64';
    this.#encoder = encoding === 'base64' ? new Base64LineEncoder() : undefined;
    this.#checkSevenBit = !multipart && (te === '7bit' || te === 'quoted-printable');
    if (entity.depth === 0) {
      this.out.push(this.#rootHeader(entity, encoding));
    } else if (encoding) {
      this.out.push(formatHeaderSection(withTransferEncoding(entity.fields, encoding)), CRLF);
    } else {
      this.out.push(entity.raw);
    }
  }

  /**
   * The payload's root header section: the content fields, then (with header
   * protection) the protected message fields and HP-Outer, in prepare-content.ts's
   * order. The message fields go outside.
   */
  #rootHeader(entity: StreamEntityHeader, encoding: string | undefined): Buffer {
    const message = entity.fields.filter((f) => !isContentField(f.name));
    const content = entity.fields.filter((f) => isContentField(f.name) && f.name.toLowerCase() !== 'mime-version');
    const kept = encoding ? withTransferEncoding(content, encoding) : content;
    const hasType = content.some((f) => f.name.toLowerCase() === 'content-type');
    const ct = entity.contentType;
    const headers: HeaderInput[] = [];
    if (this.#protect) {
      headers.push(['Content-Type', formatParameterizedValue(ct.mediaType, { ...ct.params, hp: this.#protect })]);
      for (const h of kept) if (!('raw' in h) || h.name.toLowerCase() !== 'content-type') headers.push(h);
      // RFC 9788 section 4: the protected fields go into the payload's root header section.
      headers.push(...copyFieldsInside(selectProtectedFields(message)));
      if (this.#protect === 'cipher') {
        // The Header Confidentiality Policy (RFC 9788 section 3.2) outside, each outer field recorded inside (section 2.2).
        const conf = applyHeaderConfidentiality(message, this.#hideSubject ? 'baseline' : 'none');
        this.outer = conf.outer;
        for (const raw of conf.hpOuter) headers.push({ name: 'HP-Outer', raw, value: '' });
      } else this.outer = message;
    } else {
      this.outer = message;
      // An explicit Content-Type, so the payload never starts with an empty header section.
      if (!hasType) headers.push(['Content-Type', formatParameterizedValue(ct.mediaType, ct.params)]);
      headers.push(...kept);
    }
    return Buffer.concat([formatHeaderSection(headers), CRLF]);
  }

  body(bytes: Buffer): void {
    const held = this.#held;
    if (held) {
      held.size += bytes.length;
      if (held.size <= LEGACY_DISPLAY_MAX_BODY_BYTES) {
        // A copy: the input's chunks may be reused once handed on.
        held.chunks.push(Buffer.from(bytes));
        return;
      }
      this.warnings.push(LEGACY_DISPLAY_TOO_LARGE);
      this.#releaseHeld();
    }
    this.#emitBody(bytes);
  }

  #emitBody(bytes: Buffer): void {
    if (this.#encoder) {
      const lines = this.#encoder.push(bytes);
      if (lines) this.out.push(lines);
      return;
    }
    if (this.#checkSevenBit && !this.#warnedEightBit && !isAscii(bytes)) {
      this.#warnedEightBit = true;
      this.warnings.push('A part declared 7-bit carries 8-bit bytes; it was signed as is and relays may alter it.');
    }
    this.out.push(bytes);
  }

  bodyEnd(): void {
    const held = this.#held;
    if (held) {
      const e = held.entity;
      const content = e.depth === 0 ? e.fields.filter((f) => isContentField(f.name) && f.name.toLowerCase() !== 'mime-version') : e.fields;
      const r = addLegacyDisplay(content, e.contentType, e.transferEncoding, Buffer.concat(held.chunks), this.#lines);
      if ('warning' in r) {
        this.warnings.push(r.warning);
        this.#releaseHeld();
      } else {
        this.#held = undefined;
        this.#encoder = undefined;
        this.#checkSevenBit = false;
        const fields = r.headers.map(asField);
        if (e.depth === 0) {
          const ctField = fields.find((f) => f.name.toLowerCase() === 'content-type')!;
          const message = e.fields.filter((f) => !isContentField(f.name));
          this.out.push(this.#rootHeader({ ...e, fields: [...message, ...fields], contentType: parseContentType(ctField.value), transferEncoding: 'base64' }, undefined));
        } else this.out.push(formatHeaderSection(fields), CRLF);
        this.out.push(r.body);
        return;
      }
    }
    if (!this.#encoder) return;
    const last = this.#encoder.end();
    if (last) this.out.push(last);
    this.#encoder = undefined;
  }

  structure(bytes: Buffer): void {
    this.out.push(bytes);
  }
}

/**
 * Reads the message from `input` and produces its Cryptographic Payload. `protect`
 * is the RFC 9788 hp value, or undefined for no header protection. The whole input
 * is bounded by limits.maxStreamMessageBytes.
 */
export function streamPayload(input: AsyncIterable<Uint8Array>, protect: 'clear' | 'cipher' | undefined, limits: Limits, hideSubject = false): StreamPayload {
  const warnings: string[] = [];
  const writer = new PayloadWriter(protect, hideSubject);
  const walker = new MimeStreamWalker(writer, limits);
  const produce = (async function* () {
    let total = 0;
    const scavenge = new ScavengePrompter();
    for await (const chunk of canonicalInput(input, warnings)) {
      total += chunk.length;
      scavenge.passed(chunk.length);
      if (total > limits.maxStreamMessageBytes) throw new KakitomeError('LIMIT', `A message of more than ${limits.maxStreamMessageBytes} bytes exceeds the streaming limit.`);
      walker.push(chunk);
      if (writer.out.length === 0) continue;
      const out = writer.out;
      writer.out = [];
      yield* out;
    }
    walker.end();
    const out = writer.out;
    writer.out = [];
    yield* out;
  })();
  let primed: Buffer | undefined;
  const content = (async function* () {
    try {
      if (primed) yield primed;
      primed = undefined;
      yield* produce;
    } finally {
      await produce.return(undefined);
    }
  })();
  return {
    content,
    ready: async () => {
      const r = await produce.next();
      if (!r.done) primed = r.value;
    },
    outerHeader: () => formatHeaderSection(writer.outer),
    get warnings() {
      return [...warnings, ...walker.warnings, ...writer.warnings];
    },
  };
}
