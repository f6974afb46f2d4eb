/**
 * A message as it goes on the wire to the next hop (RFC 5321 4.5.2, 2.3.8): every
 * line ending CRLF (a bare LF or a bare CR becomes CRLF, so that no receiver sees a
 * line end the others do not: SMTP smuggling), and after DATA a dot at the start of
 * a line doubled and the message ended by CRLF "." CRLF. BDAT (RFC 3030) carries the
 * bytes without dot-stuffing or terminator, but with the same line endings.
 *
 * The scan is two native indexOf passes over the buffer (LF, then CR); only a message
 * that needs a change is copied, byte by byte. nodemailer's DataStream looked at
 * every byte in JavaScript: about 9% of the submission port's relay CPU per 2 KB
 * message in a profile under load (docs/performance.md).
 */
const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;

/** The byte before a chunk, for a message read in pieces: LF at the start of the message (a dot there starts a line). */
export const START_OF_MESSAGE = LF;

/** True when `chunk` (after the byte `prev`) already has only CRLF line ends and, when dot-stuffing, no line starting with a dot. */
function isClean(chunk: Uint8Array, prev: number, dotStuff: boolean): boolean {
  const n = chunk.length;
  if (n === 0) return true;
  if (prev === CR && chunk[0] !== LF) return false;
  if (dotStuff && prev === LF && chunk[0] === DOT) return false;
  const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, n);
  for (let i = buf.indexOf(LF); i >= 0; i = buf.indexOf(LF, i + 1)) {
    if ((i === 0 ? prev : buf[i - 1]) !== CR) return false;
    if (dotStuff && i + 1 < n && buf[i + 1] === DOT) return false;
  }
  // A CR must be followed by LF; the last byte's successor is the next chunk's (checked with it).
  for (let i = buf.indexOf(CR); i >= 0 && i + 1 < n; i = buf.indexOf(CR, i + 1)) if (buf[i + 1] !== LF) return false;
  return true;
}

/** The slow path: bare CR and bare LF become CRLF, and (dot-stuffing) a dot at a line start is doubled. */
function rewrite(chunk: Uint8Array, prev: number, dotStuff: boolean): Buffer {
  const out = Buffer.allocUnsafe(chunk.length * 2 + 2);
  let o = 0;
  let p = prev;
  for (let i = 0; i < chunk.length; i++) {
    const b = chunk[i]!;
    if (p === CR && b !== LF) {
      out[o++] = LF;
      p = LF;
    }
    if (b === LF && p !== CR) out[o++] = CR;
    if (dotStuff && b === DOT && p === LF) out[o++] = DOT;
    out[o++] = b;
    p = b;
  }
  return out.subarray(0, o);
}

/**
 * One piece of a message for the wire; `prev` is the last byte of the piece before
 * (START_OF_MESSAGE for the first). A piece ending in CR leaves its LF, if it was
 * bare, to the next piece or to the end (dataTerminator).
 */
export function encodeChunk(chunk: Uint8Array, prev: number, dotStuff: boolean): Uint8Array {
  return isClean(chunk, prev, dotStuff) ? chunk : rewrite(chunk, prev, dotStuff);
}

const AFTER_LF = Buffer.from('.\r\n');
const AFTER_CR = Buffer.from('\n.\r\n');
const AFTER_TEXT = Buffer.from('\r\n.\r\n');

/** What ends DATA after a message whose last byte (on the wire) was `last`: the line's CRLF if it is missing, then "." CRLF. */
export function dataTerminator(last: number): Buffer {
  return last === LF ? AFTER_LF : last === CR ? AFTER_CR : AFTER_TEXT;
}

/** A whole message after DATA: line ends, dot-stuffing and the terminator, in one buffer for one write. */
export function encodeDataBody(message: Uint8Array): Buffer {
  const body = encodeChunk(message, START_OF_MESSAGE, true);
  const tail = dataTerminator(body.length ? body[body.length - 1]! : START_OF_MESSAGE);
  return Buffer.concat([body, tail], body.length + tail.length);
}

/** A whole message for BDAT: line ends only; a trailing bare CR gets its LF. */
export function encodeChunkedBody(message: Uint8Array): Uint8Array {
  const body = encodeChunk(message, START_OF_MESSAGE, false);
  return body.length && body[body.length - 1] === CR ? Buffer.concat([body, Buffer.from('\n')]) : body;
}
