/**
 * A message as it goes on the wire to the next hop (RFC 5321 4.5.2, 2.3.8): every
 * line ending CRLF (a bare LF or a bare CR becomes CRLF, so that no receiver sees a
 * line end the others do not: SMTP smuggling), and after DATA a dot at the start of
 * a line doubled and the message ended by CRLF "." CRLF. BDAT (RFC 3030) carries the
 * bytes without dot-stuffing or terminator, but with the same line endings.
 *
 * The check is one regular expression over the bytes as a latin1 string (a bare CR,
 * a bare LF, and when dot-stuffing a dot after LF), in windows of 64 KiB; only a
 * message that needs a change is copied, byte by byte. nodemailer's DataStream looked
 * at every byte in JavaScript: about 9% of the submission port's relay CPU per 2 KB
 * message in a profile under load (docs/performance.md). Two native indexOf passes
 * (a call per line for LF, another for CR) replaced it in session 7; for a signed 2 KB
 * message (4.2 KB, 95 lines) they cost 6-9.5 µs, the expression 1.8-2.5 µs (session 16).
 */
const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;

/** The byte before a chunk, for a message read in pieces: LF at the start of the message (a dot there starts a line). */
export const START_OF_MESSAGE = LF;

/**
 * What needs rewriting: a CR not followed by LF (a CR ending the window is left to the
 * next, whose `prev` it is), a LF not preceded by CR, and with dot-stuffing a dot
 * starting a line. Global, so that a test starts at lastIndex.
 */
const UNCLEAN = /\r(?!\n|$)|(?<!\r)\n/g;
const UNCLEAN_OR_DOT = /\r(?!\n|$)|(?<!\r)\n|\n\./g;
/** Bytes per window: the latin1 string each test makes stays small. */
const WINDOW = 64 * 1024;

/** True when `chunk` (after the byte `prev`) already has only CRLF line ends and, when dotStuff, no line starting with a dot. */
function isClean(chunk: Uint8Array, prev: number, dotStuff: boolean): boolean {
  const n = chunk.length;
  const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, n);
  const unclean = dotStuff ? UNCLEAN_OR_DOT : UNCLEAN;
  for (let at = 0; at < n; at += WINDOW) {
    const end = Math.min(n, at + WINDOW);
    if (prev === CR && buf[at] !== LF) return false;
    if (dotStuff && prev === LF && buf[at] === DOT) return false;
    // After a CR the window's first LF is its pair: the search starts past it (and a dot after that LF starts a line).
    if (prev === CR && dotStuff && buf[at + 1] === DOT && at + 1 < end) return false;
    unclean.lastIndex = prev === CR ? 1 : 0;
    if (unclean.test(buf.toString('latin1', at, end))) return false;
    prev = buf[end - 1]!;
  }
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
