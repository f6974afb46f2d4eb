/**
 * Prepares an entity for signing so that relays cannot alter it (RFC 8551
 * section 3.1.2, RFC 1847 section 2.1): every leaf whose bytes are not 7-bit
 * with lines of at most 998 octets (RFC 5322 section 2.1.1) is re-encoded,
 * text as quoted-printable (libqp) and everything else as base64 (libbase64).
 * Entities that are already 7-bit keep their exact bytes; multiparts are
 * rebuilt by splicing only the children that changed.
 *
 * Text parts are put in canonical CRLF form before quoted-printable encoding;
 * other parts are base64-encoded byte for byte.
 */
import { KakitomeError } from '../errors.ts';
import { encode as encodeBase64, wrap as wrapBase64 } from 'libbase64';
import { encode as encodeQuotedPrintable, wrap as wrapQuotedPrintable } from 'libqp';
import { buildEntity, type HeaderInput } from './build-entity.ts';
import type { MimeEntity } from './entity.ts';
import { decodeBody } from './decode-body.ts';
import { parseEntity } from './parse-entity.ts';
import { canonicalizeLineBreaks } from './canonicalize-line-breaks.ts';
import type { Limits } from '../limits.ts';

export interface SevenBitResult {
  bytes: Buffer;
  /** True when at least one part was re-encoded. */
  changed: boolean;
}

/** True when `buf` is 7-bit data per RFC 2045 section 2.7: no NUL, no octet above 127, CR and LF only as CRLF, lines of at most 998 octets. */
export function isSevenBitData(buf: Uint8Array): boolean {
  const n = buf.length;
  // The last line (after the last LF) is measured before the loop, not after it: code
  // after a long loop first runs in the loop's on-stack-replacement code, compiled
  // before it ever ran, and V8 kept deoptimising there ("insufficient type feedback
  // for binary operation") and compiling the loop again, on about one message in
  // sixteen of a batch (254 times in 4,272 messages), each a compilation on V8's
  // background threads. Every other line is measured at its LF.
  if (n - (buf.lastIndexOf(0x0a) + 1) > 998) return false;
  // One range test for the common octet; line lengths are measured at each LF, not counted per octet.
  let lineStart = 0;
  for (let i = 0; i < n; i++) {
    const b = buf[i]!;
    if (b > 0x0d && b < 0x80) continue;
    if (b === 0 || b > 0x7f) return false;
    if (b === 0x0d) {
      if (buf[i + 1] !== 0x0a) return false;
    } else if (b === 0x0a) {
      if (i === 0 || buf[i - 1] !== 0x0d || i - 1 - lineStart > 998) return false;
      lineStart = i + 1;
    }
  }
  return true;
}

function withTransferEncoding(headers: readonly HeaderInput[], encoding: string | undefined): HeaderInput[] {
  const kept: HeaderInput[] = headers.filter((h) => ('raw' in h ? h.name : h[0]).toLowerCase() !== 'content-transfer-encoding');
  if (encoding) kept.push(['Content-Transfer-Encoding', encoding]);
  return kept;
}

/** A re-encoded entity before serialisation: its header fields and body. */
export interface SevenBitParts {
  headers: HeaderInput[];
  body: Buffer;
  /** True when at least one part was re-encoded (otherwise headers and body are the entity's own). */
  changed: boolean;
}

/** Re-encodes `entity` (and its descendants) into 7-bit transfer encodings where needed. */
export function encodeSevenBit(entity: MimeEntity, limits?: Partial<Limits>): SevenBitResult {
  const r = encodeSevenBitParts(entity, limits);
  return r.changed ? { bytes: buildEntity(r.headers, r.body), changed: true } : { bytes: entity.raw, changed: false };
}

/**
 * encodeSevenBit without the final serialisation, so a caller that adds header
 * fields (header protection) writes the entity once. `headers` replaces the
 * entity's own fields (a message's content fields without its message fields);
 * the transfer encoding is still read from the entity.
 */
export function encodeSevenBitParts(entity: MimeEntity, limits?: Partial<Limits>, headers: readonly HeaderInput[] = entity.headers): SevenBitParts {
  const same = (): SevenBitParts => ({ headers: [...headers], body: entity.body, changed: false });
  if (entity.contentType.type === 'multipart') {
    const results = entity.children.map((c) => encodeSevenBit(c, limits));
    const cteOk = entity.transferEncoding === '7bit';
    if (!results.some((r) => r.changed) && cteOk) return same();
    // Splice changed children into the original body so delimiters, preamble and epilogue keep their bytes.
    const bodyStart = entity.body.byteOffset;
    const chunks: Uint8Array[] = [];
    let pos = bodyStart;
    for (const [i, child] of entity.children.entries()) {
      const r = results[i]!;
      const childStart = child.raw.byteOffset;
      chunks.push(Buffer.from(entity.body.buffer, pos, childStart - pos), r.bytes);
      pos = childStart + child.raw.length;
    }
    chunks.push(Buffer.from(entity.body.buffer, pos, bodyStart + entity.body.length - pos));
    // RFC 2045 section 6.4: a multipart may only be 7bit, 8bit or binary; once its parts are 7-bit, so is it.
    return { headers: cteOk ? [...headers] : withTransferEncoding(headers, undefined), body: Buffer.concat(chunks), changed: true };
  }
  if (entity.contentType.mediaType === 'message/rfc822' || entity.contentType.mediaType === 'message/global') {
    // RFC 2046 section 5.2.1: message/rfc822 cannot be base64/QP encoded; encode the message inside instead.
    if (isSevenBitData(entity.body) && entity.transferEncoding === '7bit') return same();
    const inner = parseEntity(entity.body, limits ? { limits } : {});
    const r = encodeSevenBit(inner, limits);
    return { headers: withTransferEncoding(headers, '7bit'), body: r.bytes, changed: true };
  }
  const te = entity.transferEncoding;
  const encodedAlready = te === 'base64' || te === 'quoted-printable';
  if (!encodedAlready && te !== '7bit' && te !== '8bit' && te !== 'binary') {
    // An encoding we cannot decode (x-uuencode, a typo) cannot be re-encoded either:
    // relabelling its bytes base64 would hand the recipient the encoded text instead of
    // the content. 7-bit bytes travel safely as they are; anything else is refused, as
    // the streaming signer does (RFC 2045 section 6.4).
    if (isSevenBitData(entity.body)) return same();
    throw new KakitomeError('UNSUPPORTED_ALG', `Unknown Content-Transfer-Encoding "${te}" on a part with 8-bit data: it cannot be re-encoded to 7 bits for signing or encryption.`);
  }
  if (encodedAlready ? isSevenBitData(entity.body) : te === '7bit' && isSevenBitData(entity.body)) return same();
  const content = encodedAlready ? decodeBody(entity) : entity.body;
  if (entity.contentType.type === 'text') {
    // RFC 8551 section 3.1.1: text is signed in canonical form, lines ending in CRLF.
    const qp = wrapQuotedPrintable(encodeQuotedPrintable(canonicalizeLineBreaks(content)), 76).replace(/\r?\n/g, '\r\n');
    return { headers: withTransferEncoding(headers, 'quoted-printable'), body: Buffer.from(qp, 'latin1'), changed: true };
  }
  const b64 = wrapBase64(encodeBase64(content), 76).replace(/\r?\n/g, '\r\n');
  return { headers: withTransferEncoding(headers, 'base64'), body: Buffer.from(`${b64}\r\n`, 'latin1'), changed: true };
}
