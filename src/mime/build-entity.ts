/**
 * Writes MIME entities: header fields (RFC 5322 section 2.2, folded at 76 columns,
 * non-ASCII text as RFC 2047 encoded-words by libmime), bodies and multiparts
 * (RFC 2046 section 5.1.1) in canonical CRLF form. Fields given as HeaderField are
 * copied byte for byte: headers nobody changed come back as they were.
 */
import { randomBytes } from 'node:crypto';
import { libmime } from './libmime.ts';
import type { HeaderField } from './entity.ts';
import { malformed } from '../errors.ts';

/** A field to write: an existing field (copied raw) or a name and an unencoded value. */
export type HeaderInput = HeaderField | readonly [name: string, value: string];

/** One header field, encoded-words for non-ASCII (RFC 2047 section 5), folded, CRLF-terminated. */
export function formatHeaderField(name: string, value: string): Buffer {
  const ascii = !/[^\x00-\x7f]/.test(value);
  // Short ASCII fields need neither encoding nor folding (the common case, kept cheap).
  if (ascii && name.length + value.length + 2 <= 76 && !/[\r\n]/.test(value)) return Buffer.from(`${name}: ${value}\r\n`, 'latin1');
  const encoded = ascii ? value : libmime().encodeWords(value, 'B', 52);
  const folded = foldLines(`${name}: ${encoded}`, 76);
  return Buffer.from(`${folded.replace(/\r?\n/g, '\r\n')}\r\n`, 'latin1');
}

/**
 * libmime's foldLines(input, lineLength) (libmime 5.6.4, MIT licence), ported so
 * that folding a long ASCII field does not load libmime (see ./libmime.ts): lines
 * are cut before the last run of white space that fits, or after the first word
 * when none does; existing line breaks are kept. test/mime/build-entity.test.ts
 * compares the two on random text.
 */
export function foldLines(input: string, lineLength = 76): string {
  const len = input.length;
  let pos = 0;
  let result = '';
  while (pos < len) {
    let line = input.substring(pos, pos + Math.max(lineLength, 0));
    if (line.length < lineLength) {
      result += line;
      break;
    }
    let match = /^[^\n\r]*(\r?\n|\r)/.exec(line);
    if (match) {
      result += match[0];
      pos += match[0].length;
      continue;
    }
    if ((match = /(\s+)[^\s]*$/.exec(line)) && match[0].length < line.length) {
      line = line.substring(0, line.length - match[0].length);
    } else if ((match = /^[^\s]+(\s*)/.exec(input.slice(pos + line.length)))) {
      line += match[0].substring(0, match[0].length - (match[1] ?? '').length);
    }
    result += line;
    pos += line.length;
    if (pos < len) result += '\r\n';
  }
  return result;
}

/** A Content-Type (or Content-Disposition) value from a media type and parameters, quoted and RFC 2231-encoded as needed. */
export function formatParameterizedValue(value: string, params: Record<string, string>): string {
  // A sender formats the same few values over and over (text/plain; charset=utf-8; hp="clear"):
  // libmime's result is kept per exact input (bounded; long values are not kept).
  let key = value;
  for (const k of Object.keys(params)) {
    // A copied parameter whose name is no RFC 2045 section 5.1 token (the lenient reader keeps
    // 8-bit or tspecial names) would come out of libmime as an encoded-word that swallows the
    // next parameter: the writer's own reader then finds no boundary. Refused, not rewritten.
    if (!PARAMETER_NAME.test(k)) malformed(`a ${value} parameter name that is no MIME token`);
    key += `\u0000${k}\u0001${params[k]}`;
  }
  if (key.length > 512) return buildPlainHeaderValue(value, params) ?? libmime().buildHeaderValue({ value, params });
  let hit = formattedValues.get(key);
  if (hit === undefined) {
    hit = buildPlainHeaderValue(value, params) ?? (libmime().buildHeaderValue({ value, params }) as string);
    if (formattedValues.size >= 256) formattedValues.clear();
    formattedValues.set(key, hit);
  }
  return hit;
}

/** Characters that keep a parameter value from being a token (libmime's list): such a value is quoted. */
const NEEDS_QUOTES = /[\s'"\\;:/=(),<>@[\]?]|^-/;
/** What libmime writes as RFC 2231 encoded text rather than as it is: controls, DEL and non-ASCII. */
const NOT_PLAIN = /[\x00-\x1f\x7f-\uffff]/;

/**
 * libmime's buildHeaderValue for the values it writes as they are: every parameter
 * plain ASCII text shorter than 75 characters that does not look like an
 * encoded-word, quoted (JSON.stringify, as libmime does) where it is no token.
 * Undefined for anything else, which libmime encodes (RFC 2231). Most messages need
 * nothing more, so libmime is not even loaded for them; test/mime/build-entity.test.ts
 * compares this with libmime on random values.
 */
export function buildPlainHeaderValue(value: string, params: Record<string, string>): string | undefined {
  let out = value.replace(/[\x00-\x1f\x7f]/g, '');
  for (const k of Object.keys(params)) {
    const v = params[k]!;
    if (typeof v !== 'string' || v.length >= 75 || NOT_PLAIN.test(v) || v.includes('=?')) return undefined;
    out += `; ${k.replace(/[\x00-\x1f\x7f]/g, '')}=${v.length === 0 || NEEDS_QUOTES.test(v) ? JSON.stringify(v) : v}`;
  }
  return out;
}

const formattedValues = new Map<string, string>();
/** RFC 2045 section 5.1 token: US-ASCII printable except SPACE and tspecials. */
const PARAMETER_NAME = /^[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+$/;

export function formatHeaderSection(headers: readonly HeaderInput[]): Buffer {
  const chunks: Array<Uint8Array | string> = [];
  pushHeaderSection(chunks, headers);
  return joinChunks(chunks);
}

/** True when `value` needs neither encoding nor folding: short, ASCII, no line breaks. */
function isPlainField(name: string, value: string): boolean {
  if (name.length + value.length + 2 > 76) return false;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c > 0x7f || c === 0x0d || c === 0x0a) return false;
  }
  return true;
}

/** Appends the fields of a header section: raw fields as they are (CRLF-terminated), new ones formatted. */
function pushHeaderSection(chunks: Array<Uint8Array | string>, headers: readonly HeaderInput[]): void {
  for (const h of headers) {
    if ('raw' in h) {
      chunks.push(h.raw);
      // A copied field keeps its bytes, but the last field of a section may arrive without a line break.
      if (h.raw.length === 0 || h.raw[h.raw.length - 1] !== 0x0a) chunks.push('\r\n');
    } else {
      // Plain fields go in as text (formatHeaderField's short-ASCII case, without its Buffer).
      chunks.push(isPlainField(h[0], h[1]) ? `${h[0]}: ${h[1]}\r\n` : formatHeaderField(h[0], h[1]));
    }
  }
}

/**
 * Joins byte chunks and ASCII strings into one Buffer with a single allocation (a
 * message is assembled from many small pieces; Buffer.concat would need a Buffer for
 * every string first). Strings must be ASCII: each character is written as one byte.
 */
/** Buffer's own Latin-1 encoder, without write()'s argument handling (many short strings per message). */
const latin1Write: (this: Buffer, s: string, offset: number, length: number) => number =
  (Buffer.prototype as unknown as { latin1Write?: (this: Buffer, s: string, offset: number, length: number) => number }).latin1Write ??
  function (this: Buffer, s: string, offset: number, length: number): number {
    return this.write(s, offset, length, 'latin1');
  };

export function joinChunks(chunks: ReadonlyArray<Uint8Array | string>): Buffer {
  let length = 0;
  for (const c of chunks) length += c.length;
  const out = Buffer.allocUnsafe(length);
  writeChunks(out, 0, chunks);
  return out;
}

/** joinChunks into a buffer of the caller's, at `pos` (it must have room); returns the position after the chunks. */
export function writeChunks(out: Buffer, pos: number, chunks: ReadonlyArray<Uint8Array | string>): number {
  for (const c of chunks) {
    if (typeof c === 'string') pos += latin1Write.call(out, c, pos, c.length);
    else {
      out.set(c, pos);
      pos += c.length;
    }
  }
  return pos;
}

/** header section + blank line + body. The body is written as given (callers pass canonical CRLF bytes). */
export function buildEntity(headers: readonly HeaderInput[], body: Uint8Array): Buffer {
  return buildEntityFromChunks(headers, [body]);
}

/** buildEntity for a body still in pieces (ASCII strings and bytes, see joinChunks): the entity is written in one allocation. */
export function buildEntityFromChunks(headers: readonly HeaderInput[], body: ReadonlyArray<Uint8Array | string>): Buffer {
  return joinChunks(entityChunks(headers, body));
}

/** What buildEntityFromChunks joins: the header section, the blank line and the body, in pieces (ASCII strings and bytes). */
export function entityChunks(headers: readonly HeaderInput[], body: ReadonlyArray<Uint8Array | string>): Array<Uint8Array | string> {
  const chunks: Array<Uint8Array | string> = [];
  pushHeaderSection(chunks, headers);
  chunks.push('\r\n', ...body);
  return chunks;
}

// Random text for boundaries, drawn from the CSPRNG 4 KiB at a time and kept as
// base64url text: one call per boundary cost a tenth of signing a small message
// (docs/performance.md), and slicing a string allocates no Buffer.
const RANDOM_CHARS = 20; // 120 bits
let randomPool = '';
let randomOffset = 0;

/** A fresh boundary: random, and containing "=_" which quoted-printable and base64 content can never produce (RFC 2045 section 6.7). */
export function createBoundary(): string {
  if (randomOffset + RANDOM_CHARS > randomPool.length) {
    randomPool = randomBytes(4095).toString('base64url');
    randomOffset = 0;
  }
  const chars = randomPool.slice(randomOffset, randomOffset + RANDOM_CHARS);
  randomOffset += RANDOM_CHARS;
  return `----=_Kakitome_${chars}`;
}

/**
 * A multipart body: optional preamble, each part between delimiters, close
 * delimiter, CRLF. The CRLF before each delimiter belongs to the delimiter, so
 * parts are written exactly as given (RFC 2046 section 5.1.1).
 */
export function buildMultipartBody(boundary: string, parts: readonly Uint8Array[], preamble?: string): Buffer {
  const chunks: Array<Uint8Array | string> = [];
  // Boundaries are ASCII (RFC 2046 section 5.1.1 bchars); anything else is written as UTF-8, as before.
  const text = (s: string): Uint8Array | string => (/^[\x00-\x7f]*$/.test(s) ? s : Buffer.from(s));
  if (preamble) chunks.push(Buffer.from(`${preamble}\r\n`));
  for (const [i, p] of parts.entries()) chunks.push(text(`${i === 0 && !preamble ? '' : '\r\n'}--${boundary}\r\n`), p);
  chunks.push(text(`\r\n--${boundary}--\r\n`));
  return joinChunks(chunks);
}
