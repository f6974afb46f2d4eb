/**
 * Where a header section ends, by the rule parseHeaderSection applies (RFC 5322
 * section 2.1, RFC 2045 lines): lines end at LF, a line is empty when it holds
 * nothing or a lone CR before its LF, and the first empty line ends the section.
 * Line breaks may be mixed ("X: y\n\r\n" ends there): the streaming readers must cut
 * exactly where the in-memory parser does, or the bytes they hand on would differ
 * from the bytes a signature was verified over.
 *
 * `from` must be the start of a line. Returns undefined while no complete empty
 * line is in `buf` (a CR as the last byte may still be followed by its LF).
 */
const LF = 0x0a;
const CR = 0x0d;

export interface BlankLine {
  /** Offset of the empty line: the header section is buf[from, headerEnd). */
  headerEnd: number;
  /** Offset just past the empty line's LF: where the body starts. */
  bodyStart: number;
}

export function findBlankLine(buf: Uint8Array, from = 0): BlankLine | undefined {
  let p = from;
  while (p < buf.length) {
    if (buf[p] === LF) return { headerEnd: p, bodyStart: p + 1 };
    if (buf[p] === CR && buf[p + 1] === LF) return { headerEnd: p, bodyStart: p + 2 };
    const nl = buf.indexOf(LF, p);
    if (nl < 0) return undefined;
    p = nl + 1;
  }
  return undefined;
}
