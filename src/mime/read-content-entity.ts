/**
 * The MIME entity carried as CMS content (RFC 8551 section 3.1: what is signed or
 * encrypted is a MIME entity, header section and body).
 *
 * QUIRK: some writers put the bare content in, with no header at all: `openssl cms
 * -encrypt` and `-sign` without `-text`, and some AS2 servers. OpenSSL hands such
 * content back as it is, and RFC 2045 (sections 5.2 and 6.1) gives an entity without
 * Content-* fields the type text/plain; charset=us-ascii and the encoding 7bit. So
 * content is read as the body of such an entity, whole, when
 * - its first line is neither a header field nor empty (text, X12, XML, indented
 *   text), or
 * - it holds no empty line at all and fits the header limit (an EDIFACT or JSON
 *   one-liner, "UNB+UNOC:3+...", looks like a header field; as a header section it
 *   would leave no body, which no MIME writer produces).
 * Otherwise the MIME reading stands, with its strictness: a header section whose
 * later line is no field is MALFORMED, one past the header limit is LIMIT. Both
 * tests can be made on the first bytes and the header section, so a stream reader
 * (decrypt-message-stream.ts) decides exactly as this in-memory reader does.
 */
import { KakitomeError } from '../errors.ts';
import type { Limits } from '../limits.ts';
import type { MimeEntity } from './entity.ts';
import { parseContentType } from './parse-content-type.ts';
import { findBlankLine } from './find-blank-line.ts';
import { parseEntity } from './parse-entity.ts';

const LF = 0x0a;
const CR = 0x0d;
const SP = 0x20;
const HT = 0x09;
const COLON = 0x3a;

/**
 * Whether content begins with a header section, fed its first bytes in pieces: true
 * for a header field ("Name:" with RFC 5322 ftext, WSP allowed before the colon) or
 * an empty first line; false for anything else; undefined while the bytes so far
 * cannot tell. A field name running past `maxLineLength` counts as a header field,
 * whose line the header parser then refuses (LIMIT).
 */
export class HeaderStartScanner {
  readonly #maxLineLength: number;
  #state: 'start' | 'cr' | 'name' | 'space' = 'start';
  #n = 0;
  result: boolean | undefined;

  constructor(maxLineLength: number) {
    this.#maxLineLength = maxLineLength;
  }

  push(bytes: Uint8Array): boolean | undefined {
    for (let i = 0; i < bytes.length && this.result === undefined; i++) this.#step(bytes[i]!);
    return this.result;
  }

  #step(b: number): void {
    if (++this.#n > this.#maxLineLength) {
      this.result = true;
      return;
    }
    // RFC 5322 section 3.6.8: ftext is printable US-ASCII except the colon.
    const ftext = b > 32 && b < 127 && b !== COLON;
    switch (this.#state) {
      case 'start':
        if (b === LF) this.result = true;
        else if (b === CR) this.#state = 'cr';
        else if (ftext) this.#state = 'name';
        else this.result = false;
        return;
      case 'cr':
        this.result = b === LF;
        return;
      case 'name':
        if (b === COLON) this.result = true;
        else if (b === SP || b === HT) this.#state = 'space';
        else if (!ftext) this.result = false;
        return;
      case 'space':
        if (b === COLON) this.result = true;
        else if (b !== SP && b !== HT) this.result = false;
    }
  }
}

/** HeaderStartScanner over one buffer. */
export function startsWithHeaderField(bytes: Uint8Array, maxLineLength: number): boolean | undefined {
  return new HeaderStartScanner(maxLineLength).push(bytes);
}

/** The rule above, for content held whole (in canonical form: the header limit applies to those bytes). */
export function isHeaderless(content: Buffer, limits: Limits): boolean {
  if (startsWithHeaderField(content, limits.maxLineLength) === false) return true;
  if (findBlankLine(content) !== undefined) return false;
  // All header section, no body: past the header limit that is LIMIT, as a stream reader finds it.
  if (content.length > limits.maxHeaderBytes) throw new KakitomeError('LIMIT', `A header section of more than ${limits.maxHeaderBytes} bytes exceeds the header limit.`);
  return true;
}

/** An entity with no header section: `body` is all of it, text/plain in us-ascii, 7bit (RFC 2045 sections 5.2, 6.1). */
export function headerlessEntity(body: Buffer): MimeEntity {
  return {
    raw: body,
    offset: 0,
    headers: [],
    headerBytes: body.subarray(0, 0),
    body,
    contentType: parseContentType(undefined),
    transferEncoding: '7bit',
    children: [],
    depth: 0,
    warnings: [],
  };
}

/** Reads CMS content (already in canonical CRLF form) as a MIME entity, or as the body of a headerless one. */
export function readContentEntity(content: Buffer, limits: Limits): { entity: MimeEntity; headerless: boolean } {
  if (!isHeaderless(content, limits)) return { entity: parseEntity(content, { limits }), headerless: false };
  if (content.length > limits.maxMessageBytes) throw new KakitomeError('LIMIT', `A message of ${content.length} bytes exceeds the ${limits.maxMessageBytes}-byte limit.`);
  return { entity: headerlessEntity(content), headerless: true };
}
