/**
 * A batch upload as NDJSON (application/x-ndjson): one JSON object per line, each
 * one message, read one line at a time (the upload is never held whole):
 *
 *     {"message": "From: news@acme.example\r\nTo: ...\r\n\r\nHello\r\n"}
 *     {"base64": "RnJvbTogbmV3c0BhY21lLmV4YW1wbGUNClRvOiAuLi4NCg0KSGVsbG8NCg=="}
 *
 * `message` is the message as a JSON string (its UTF-8 bytes are signed: for text
 * mail), `base64` its bytes in base64 (RFC 4648, padded: any mail). Exactly one of
 * the two and nothing else. Lines end with LF (a CR before it is dropped); empty
 * lines are skipped and are no message. A line that is not such an object, or
 * whose message is larger than the limit, is one failed entry (MALFORMED, LIMIT),
 * reported at its index and never signed; the lines after it are read as usual.
 * A long line is parsed only once it has that shape (one member, a string, read
 * with indexOf): JSON.parse of deeply nested arrays costs some 150 times a string
 * of the same length, a minute of the batch thread for a line near the limit.
 * A line that is not UTF-8 (RFC 8259 8.1), or a "message" with a lone surrogate
 * ("\ud800"), is MALFORMED: decoded as it was, each bad byte became U+FFFD and the
 * message signed was not the one sent (Shift_JIS or Latin-1 text put in a JSON
 * string as raw bytes; 8-bit mail goes as "base64").
 */
import { isUtf8 } from 'node:buffer';
import { BoundedPieces } from './bounded-pieces.ts';
import type { ChunkEntry } from './chunk-records.ts';

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** JSON white space but LF (a line has none). */
const OPENING = /^[ \t\r]*\{[ \t\r]*"(?:message|base64)"[ \t\r]*:[ \t\r]*"/;
const CLOSING = /[ \t\r]*\}[ \t\r]*$/y;
/** Shorter lines are parsed whatever they hold, for a reason naming their members. */
const SHAPE_CHECKED_FROM = 4096;

/** The line is {"message": "..."} or {"base64": "..."}: one string member, nothing nested. */
function hasFlatShape(line: string): boolean {
  const open = OPENING.exec(line);
  if (open === null) return false;
  let quote = open[0].length;
  for (;;) {
    quote = line.indexOf('"', quote);
    if (quote < 0) return false;
    let b = quote - 1;
    while (line.charCodeAt(b) === 0x5c) b--;
    if ((quote - 1 - b) % 2 === 0) break;
    quote++;
  }
  CLOSING.lastIndex = quote + 1;
  return CLOSING.test(line);
}

function failure(code: 'MALFORMED' | 'LIMIT', reason: string): ChunkEntry {
  return { envelope: '', error: { code, reason } };
}

/** One line's entry. */
export function readNdjsonLine(line: string, maxMessageBytes: number): ChunkEntry {
  if (line.length > SHAPE_CHECKED_FROM && !hasFlatShape(line)) {
    return failure('MALFORMED', 'The line is not {"message": "..."} or {"base64": "..."}: one member, a JSON string, and nothing else (nothing nested).');
  }
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return failure('MALFORMED', 'The line is not JSON: each line is one object, {"message": "..."} or {"base64": "..."}.');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return failure('MALFORMED', 'The line is not a JSON object: give {"message": "..."} or {"base64": "..."}.');
  const keys = Object.keys(value);
  const v = value as Record<string, unknown>;
  if (keys.length !== 1 || (typeof v.message !== 'string' && typeof v.base64 !== 'string')) {
    return failure('MALFORMED', `The object has ${keys.length === 1 ? `only "${keys[0]}"` : `the members ${keys.map((k) => `"${k}"`).join(', ') || 'none'}`}: give exactly one, "message" (a string) or "base64".`);
  }
  if (typeof v.message === 'string' && !v.message.isWellFormed()) return failure('MALFORMED', 'The "message" member holds a lone surrogate (an escape such as \\ud800 with no pair): it is no text. Send 8-bit or binary mail as "base64".');
  if (typeof v.base64 === 'string' && !BASE64.test(v.base64)) return failure('MALFORMED', 'The "base64" member is not padded base64 (RFC 4648, no line breaks).');
  const message = typeof v.message === 'string' ? Buffer.from(v.message, 'utf8') : Buffer.from(v.base64 as string, 'base64');
  if (message.length > maxMessageBytes) return failure('LIMIT', `The message is larger than this service accepts (${maxMessageBytes} bytes; --max-message-size).`);
  if (message.length === 0) return failure('MALFORMED', 'The message is empty.');
  return { envelope: '', message };
}

function isBlank(pieces: readonly Buffer[]): boolean {
  for (const p of pieces) for (const b of p) if (b !== 0x20 && b !== 0x09 && b !== 0x0d) return false;
  return true;
}

/**
 * The entries of an NDJSON upload, in order. A line longer than twice the message
 * limit (base64 and JSON escapes make a message longer, not that much longer) is
 * not kept: it is a LIMIT entry, and its bytes are dropped as they arrive.
 */
export async function* splitNdjsonMessages(source: AsyncIterable<Buffer>, maxMessageBytes: number): AsyncGenerator<ChunkEntry> {
  const maxLine = 2 * maxMessageBytes + 4096;
  const pieces = new BoundedPieces(maxLine);
  const line = function* (): Generator<ChunkEntry> {
    const { bytes, oversized, pieces: parts } = pieces.take();
    if (oversized) {
      yield failure('LIMIT', `The line is longer than ${maxLine} bytes: its message is larger than this service accepts (${maxMessageBytes} bytes; --max-message-size).`);
    } else if (!isBlank(parts)) {
      yield isUtf8(bytes) ? readNdjsonLine(bytes.toString('utf8'), maxMessageBytes) : failure('MALFORMED', 'The line is not UTF-8 (RFC 8259): a message in another charset (Shift_JIS, Latin-1...) goes as "base64", its bytes as they are.');
    }
  };
  for await (const chunk of source) {
    let from = 0;
    for (let nl = chunk.indexOf(0x0a); nl >= 0; nl = chunk.indexOf(0x0a, from)) {
      pieces.add(chunk.subarray(from, nl));
      yield* line();
      from = nl + 1;
    }
    pieces.add(chunk.subarray(from));
  }
  if (pieces.size > 0 || pieces.oversized) yield* line();
}
