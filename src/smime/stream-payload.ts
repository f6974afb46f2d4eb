/**
 * The streaming Cryptographic Payload: a message read chunk by chunk is split by
 * mailsplit (the nodemailer family's streaming MIME splitter; bounded header sizes
 * and part counts), its message header fields are taken out of the root part, RFC
 * 9788 header protection is added, 8-bit and binary leaves are re-encoded as base64
 * on the fly (libbase64), and the joined MIME entity comes out as an async
 * iterable. Shared by signMessageStream and encryptMessageStream.
 *
 * 8-bit text is re-encoded as base64, not quoted-printable: base64 can be cut at
 * any 57-byte boundary, QP needs whole lines (RFC 8551 section 3.1.2 allows both).
 * A part that declares 7bit but carries 8-bit bytes is passed through (its header
 * is already written when that is seen) and reported in `warnings`.
 */
import { Transform, type Readable } from 'node:stream';
import mailsplit from 'mailsplit';
import { encode as encodeBase64, wrap as wrapBase64 } from 'libbase64';
import { KakitomeError } from '../errors.ts';
import type { Limits } from '../limits.ts';
import { formatHeaderField, formatParameterizedValue } from '../mime/build-entity.ts';
import { parseContentType } from '../mime/parse-content-type.ts';
import { OBSCURED_SUBJECT, PROTECTED_HEADER_NAMES, isContentField } from './header-protection.ts';

const CRLF = Buffer.from('\r\n');
/** 57 input bytes make one 76-character base64 line (RFC 2045 section 6.8). */
const B64_LINE_INPUT = 57;

/** Converts bare LF to CRLF across chunk boundaries (used for LF-only inputs). */
async function* crlfLines(input: AsyncIterable<Uint8Array>): AsyncGenerator<Buffer> {
  let lastWasCr = false;
  for await (const raw of input) {
    const chunk = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
    const parts: Buffer[] = [];
    let start = 0;
    for (let i = chunk.indexOf(0x0a); i >= 0; i = chunk.indexOf(0x0a, i + 1)) {
      const prevCr = i === 0 ? lastWasCr : chunk[i - 1] === 0x0d;
      if (prevCr) continue;
      parts.push(chunk.subarray(start, i), CRLF);
      start = i + 1;
    }
    parts.push(chunk.subarray(start));
    if (chunk.length) lastWasCr = chunk[chunk.length - 1] === 0x0d;
    yield parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }
}

/** Looks at the first line break: LF-only input is converted as a whole, like splitMessage does (shared with verifyMessageStream). */
export async function* canonicalInput(input: AsyncIterable<Uint8Array>, warnings: string[]): AsyncGenerator<Buffer> {
  const it = input[Symbol.asyncIterator]();
  const head: Buffer[] = [];
  let decided: 'crlf' | 'lf' | undefined;
  let r = await it.next();
  while (!r.done && !decided) {
    const c = Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength);
    head.push(c);
    const all = Buffer.concat(head);
    const nl = all.indexOf(0x0a);
    if (nl >= 0) decided = nl > 0 && all[nl - 1] === 0x0d ? 'crlf' : 'lf';
    else r = await it.next();
  }
  const rest = (async function* () {
    yield* head;
    if (!r.done) {
      for (r = await it.next(); !r.done; r = await it.next()) yield Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength);
    }
  })();
  if (decided === 'lf') {
    warnings.push('The message used bare LF line breaks; it was converted to CRLF (RFC 5322 canonical form) before processing.');
    yield* crlfLines(rest);
  } else yield* rest;
}

interface SplitNode {
  type: 'node';
  root: boolean;
  multipart: string | false;
  contentType: string | false;
  encoding: string | false;
  headers: {
    getList(): Array<{ key: string; line: string }>;
    getFirst(key: string): string;
    remove(key: string): void;
    update(key: string, value: string): void;
    addFormatted(key: string, line: string, index?: number): void;
  };
}

interface SplitData {
  type: 'data' | 'body';
  value: Buffer;
  node: SplitNode;
}

/**
 * Object-mode transform between mailsplit's Splitter and Joiner: moves the message
 * header fields out of the root node (collected in `messageLines`), adds header
 * protection, and base64-encodes the bodies of 8-bit/binary leaves.
 */
class SevenBitTransform extends Transform {
  readonly messageLines: string[] = [];
  readonly warnings: string[] = [];
  readonly #protect: 'clear' | 'cipher' | undefined;
  #encoding: SplitNode | undefined;
  #carry: Buffer = Buffer.alloc(0);
  #seenRoot = false;
  #warnedEightBit = false;

  constructor(protect: 'clear' | 'cipher' | undefined) {
    super({ readableObjectMode: true, writableObjectMode: true });
    this.#protect = protect;
  }

  #finishEncoding(): void {
    if (!this.#encoding) return;
    if (this.#carry.length) this.push({ type: 'body', node: this.#encoding, value: Buffer.concat([Buffer.from(encodeBase64(this.#carry), 'latin1'), CRLF]) });
    this.#encoding = undefined;
    this.#carry = Buffer.alloc(0);
  }

  /** The message header lines to write outside: with hp="cipher", hcp_baseline applied (RFC 9788 section 3.2.1). */
  outerLines(): string[] {
    if (this.#protect !== 'cipher') return this.messageLines;
    const out: string[] = [];
    for (const line of this.messageLines) {
      const key = line.slice(0, line.indexOf(':')).trim().toLowerCase();
      if (key === 'keywords' || key === 'comments') continue;
      out.push(key === 'subject' ? `Subject: ${OBSCURED_SUBJECT}` : line);
    }
    return out;
  }

  #prepareRoot(node: SplitNode): void {
    const lines = node.headers.getList().map((l) => ({ ...l }));
    for (const l of lines) if (!isContentField(l.key)) this.messageLines.push(l.line);
    for (const key of new Set(lines.map((l) => l.key))) if (!isContentField(key) || key === 'mime-version') node.headers.remove(key);
    const ctValue = node.headers.getFirst('content-type');
    const ct = parseContentType(ctValue || undefined);
    if (this.#protect) {
      const params: Record<string, string> = { ...ct.params, hp: this.#protect };
      node.headers.update('Content-Type', formatParameterizedValue(ct.mediaType, params));
      // RFC 9788 section 4: the protected fields go into the payload's root header section.
      for (const l of lines) {
        if (!PROTECTED_HEADER_NAMES.includes(l.key)) continue;
        if (/[^\x00-\x7f]/.test(l.line)) this.warnings.push(`The ${l.key} field holds raw UTF-8 (RFC 6532); the streaming signer does not copy it into the protected headers.`);
        else node.headers.addFormatted(l.key, l.line, Number.MAX_SAFE_INTEGER);
      }
      if (this.#protect === 'cipher') {
        // RFC 9788 section 2.2 / hcp_baseline: record what stays outside.
        for (const line of this.outerLines()) {
          const colon = line.indexOf(':');
          const key = line.slice(0, colon).trim().toLowerCase();
          if (PROTECTED_HEADER_NAMES.includes(key) && !/[^\x00-\x7f]/.test(line)) {
            node.headers.addFormatted('hp-outer', formatHeaderField('HP-Outer', `${line.slice(0, colon).trim()}: ${line.slice(colon + 1).replace(/\r?\n[ \t]*/g, ' ').trim()}`).toString('latin1').replace(/\r\n$/, ''), Number.MAX_SAFE_INTEGER);
          }
        }
      }
    } else if (!ctValue) {
      // An empty header section would make mailsplit's joiner write an extra blank line.
      node.headers.update('Content-Type', formatParameterizedValue(ct.mediaType, ct.params));
    }
  }

  override _transform(obj: SplitNode | SplitData, _enc: BufferEncoding, callback: (err?: Error | null) => void): void {
    try {
      if (obj.type === 'node') {
        this.#finishEncoding();
        if (!this.#seenRoot) {
          this.#seenRoot = true;
          this.#prepareRoot(obj);
        }
        const te = obj.encoding || '7bit';
        const isMessage = (obj.contentType || '').startsWith('message/');
        if (te === '8bit' || te === 'binary') {
          if (obj.multipart) obj.headers.update('Content-Transfer-Encoding', '7bit');
          else if (isMessage) this.warnings.push(`A ${obj.contentType} part is ${te}; streaming cannot re-encode inside it: it was signed as is and relays may alter it.`);
          else {
            obj.headers.update('Content-Transfer-Encoding', 'base64');
            this.#encoding = obj;
          }
        } else if (!['7bit', 'base64', 'quoted-printable'].includes(te)) {
          throw new KakitomeError('UNSUPPORTED_ALG', `Unknown Content-Transfer-Encoding "${te}".`);
        }
        this.push(obj);
      } else if (obj.type === 'body' && this.#encoding && obj.node === this.#encoding) {
        const all = this.#carry.length ? Buffer.concat([this.#carry, obj.value]) : obj.value;
        const whole = all.length - (all.length % B64_LINE_INPUT);
        this.#carry = Buffer.from(all.subarray(whole));
        if (whole > 0) {
          const text = wrapBase64(encodeBase64(all.subarray(0, whole)), 76).replace(/\r?\n/g, '\r\n');
          this.push({ type: 'body', node: obj.node, value: Buffer.from(`${text}\r\n`, 'latin1') });
        }
      } else {
        if (obj.type === 'data') this.#finishEncoding();
        if (obj.type === 'body' && !this.#warnedEightBit && obj.node.encoding !== 'base64' && /[\x80-\xff]/.test(obj.value.toString('latin1'))) {
          this.#warnedEightBit = true;
          this.warnings.push('A part declared 7-bit carries 8-bit bytes; it was signed as is and relays may alter it.');
        }
        this.push(obj);
      }
      callback();
    } catch (e) {
      callback(e as Error);
    }
  }

  override _flush(callback: (err?: Error | null) => void): void {
    this.#finishEncoding();
    callback();
  }
}


export interface StreamPayload {
  /** The Cryptographic Payload's bytes, in order. */
  content: AsyncIterable<Buffer>;
  /** Message header lines for the outside (known once the first content chunk arrived). */
  outerLines(): string[];
  warnings: string[];
  /** Rejects with the first pipeline error (LIMIT for mailsplit's EMAXLEN). Never resolves. */
  failed: Promise<never>;
  /** Resolves when the whole input was read. */
  fed: Promise<void>;
  destroy(): void;
}

export function streamPayload(input: Readable | AsyncIterable<Uint8Array>, protect: 'clear' | 'cipher' | undefined, limits: Limits): StreamPayload {
  const warnings: string[] = [];
  const splitter = new mailsplit.Splitter({ maxHeadSize: limits.maxHeaderBytes, maxChildNodes: limits.maxMimeParts, ignoreEmbedded: true });
  const rewrite = new SevenBitTransform(protect);
  const joiner = new mailsplit.Joiner();
  const source = canonicalInput(input as AsyncIterable<Uint8Array>, warnings);
  const fed = (async () => {
    for await (const c of source) if (!splitter.write(c)) await new Promise((resolve) => splitter.once('drain', resolve));
    splitter.end();
  })();
  const failed = new Promise<never>((_, reject) => {
    for (const s of [splitter, rewrite, joiner]) s.once('error', (e: Error & { code?: string }) => reject(e.code === 'EMAXLEN' ? new KakitomeError('LIMIT', `The message exceeds a MIME limit: ${e.message}.`, e) : e));
  });
  fed.catch(() => undefined);
  failed.catch(() => undefined);
  splitter.pipe(rewrite).pipe(joiner);
  let total = 0;
  const content = (async function* () {
    for await (const chunk of joiner as AsyncIterable<Buffer>) {
      total += chunk.length;
      if (total > limits.maxMessageBytes) throw new KakitomeError('LIMIT', `A message of more than ${limits.maxMessageBytes} bytes exceeds the limit.`);
      yield chunk;
    }
    if (total === 0) throw new KakitomeError('MALFORMED', 'Malformed input: the message is empty.');
  })();
  return {
    content,
    outerLines: () => rewrite.outerLines(),
    get warnings() {
      return [...warnings, ...rewrite.warnings];
    },
    failed,
    fed,
    destroy: () => {
      for (const s of [splitter, rewrite, joiner]) s.destroy();
    },
  };
}

/** Outer header lines as CRLF-terminated bytes. */
export function formatOuterLines(lines: readonly string[]): Buffer {
  return Buffer.concat(lines.map((l) => Buffer.from(`${l.replace(/\r?\n/g, '\r\n')}\r\n`, 'latin1')));
}
