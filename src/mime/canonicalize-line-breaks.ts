/**
 * Canonical line breaks (RFC 5322 section 2.1, RFC 8551 section 3.1.1): every line
 * ends with CRLF. Signing and verification use the canonical form; relays and
 * mailbox files that store bare LF are the commonest cause of broken signatures.
 */
const LF = 0x0a;
const CR = 0x0d;

/** True when a bare LF occurs (a line break that is not CRLF). */
export function hasBareLineFeed(buf: Uint8Array): boolean {
  let i = -1;
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  while ((i = b.indexOf(LF, i + 1)) >= 0) if (i === 0 || b[i - 1] !== CR) return true;
  return false;
}

/** Converts bare LF to CRLF; CRLF stays; returns the input itself when nothing changes. */
export function canonicalizeLineBreaks(buf: Buffer): Buffer {
  if (!hasBareLineFeed(buf)) return buf;
  const out: Buffer[] = [];
  let start = 0;
  let i = -1;
  while ((i = buf.indexOf(LF, i + 1)) >= 0) {
    if (i > 0 && buf[i - 1] === CR) continue;
    out.push(buf.subarray(start, i), Buffer.from('\r\n'));
    start = i + 1;
  }
  out.push(buf.subarray(start));
  return Buffer.concat(out);
}

/**
 * Converts a whole LF-only input (mailbox exports, Unix tools) to CRLF, and leaves
 * any input that already contains CR unchanged: in a CRLF message a bare LF may be
 * binary content, which conversion would corrupt.
 */
export function canonicalizeLfOnly(buf: Buffer): Buffer {
  return buf.includes(0x0d) || !buf.includes(0x0a) ? buf : canonicalizeLineBreaks(buf);
}
