/**
 * A batch upload as multipart/mixed or multipart/form-data (RFC 2046 5.1, RFC
 * 7578): each body part is one message, read as the bytes arrive (the upload is
 * never held whole, a part at most up to the message limit).
 *
 * A part's Content-Type, when it has one, is message/rfc822 or
 * application/octet-stream (curl -F 'm=@a.eml' sends the latter); any other part
 * (a text form field) is a failed entry, as is a part larger than the message
 * limit: reported at its index, never signed. Framing that breaks (no boundary
 * parameter, no closing delimiter: a truncated upload, part headers over 16 KiB)
 * refuses the whole upload (MALFORMED), since where the parts end is unknown.
 */
import { KakitomeError } from '../../errors.ts';
import { BoundedPieces } from './bounded-pieces.ts';
import { shown } from '../problem.ts';
import type { ChunkEntry } from './chunk-records.ts';

const MAX_PART_HEADER_BYTES = 16 * 1024;
const CRLF_CRLF = Buffer.from('\r\n\r\n');
const TAKEN_TYPES = new Set(['message/rfc822', 'application/octet-stream']);
/** A part's bytes are the message as they are: no transfer encoding to undo (RFC 2046 5.2.1 allows message/rfc822 no other). */
const AS_THEY_ARE = new Set(['7bit', '8bit', 'binary']);

/** The boundary parameter of a multipart Content-Type; MALFORMED when absent or not RFC 2046's (1 to 70 characters). */
export function multipartBoundary(contentType: string): string {
  const m = /;\s*boundary\s*=\s*(?:"([^"]{1,70})"|([0-9A-Za-z'()+_,\-./:=?]{1,70}))\s*(?:;|$)/i.exec(contentType);
  const boundary = m?.[1] ?? m?.[2];
  if (!boundary || / $/.test(boundary)) throw new KakitomeError('MALFORMED', 'The multipart Content-Type has no usable boundary parameter (1 to 70 characters, RFC 2046).');
  return boundary;
}

function partType(headers: string): string | undefined {
  const m = /(?:^|\r\n)content-type[ \t]*:[ \t]*([^;\r\n]*)/i.exec(headers);
  return m ? m[1]!.trim().toLowerCase() : undefined;
}

function partTransferEncoding(headers: string): string | undefined {
  const m = /(?:^|\r\n)content-transfer-encoding[ \t]*:[ \t]*([^\r\n]*)/i.exec(headers);
  return m ? m[1]!.trim().toLowerCase() : undefined;
}

function malformed(what: string): KakitomeError {
  return new KakitomeError('MALFORMED', `The multipart upload is malformed: ${what}; nothing was kept.`);
}

/**
 * The entries of a multipart upload, in order. The stream is read as if it
 * started with CRLF, so the first delimiter is found like the others; the
 * preamble before it and the epilogue after the closing one are ignored.
 */
export async function* splitMultipartMessages(source: AsyncIterable<Buffer>, boundary: string, maxMessageBytes: number): AsyncGenerator<ChunkEntry> {
  const delimiter = Buffer.from(`\r\n--${boundary}`, 'latin1');
  let buf: Buffer = Buffer.from('\r\n');
  // where: before the first delimiter, just after a delimiter, in a part's header section, in its body, after the close.
  let where: 'preamble' | 'delimiter' | 'headers' | 'body' | 'epilogue' = 'preamble';
  let headers = '';
  const body = new BoundedPieces(maxMessageBytes);

  const finishPart = (): ChunkEntry => {
    const type = partType(headers);
    const encoding = partTransferEncoding(headers);
    const { bytes, oversized } = body.take();
    headers = '';
    if (type !== undefined && !TAKEN_TYPES.has(type)) {
      return { envelope: '', error: { code: 'INVALID_ARGUMENT', reason: `The part is ${type ? shown(type) : 'of no type'}, not a message (message/rfc822 or application/octet-stream).` } };
    }
    // Taken as they were, a quoted-printable part's =3D and soft line breaks were signed as the
    // message's text; a part is the message's own bytes, so an encoded one is refused.
    if (encoding !== undefined && !AS_THEY_ARE.has(encoding)) {
      return { envelope: '', error: { code: 'INVALID_ARGUMENT', reason: `The part is sent in Content-Transfer-Encoding ${shown(encoding) || '(empty)'}: a part is taken as the message's bytes as they are (7bit, 8bit or binary), so its encoded form would be signed. Send the message itself (curl -F m=@message.eml).` } };
    }
    if (oversized) return { envelope: '', error: { code: 'LIMIT', reason: `The message is larger than this service accepts (${maxMessageBytes} bytes; --max-message-size).` } };
    if (bytes.length === 0) return { envelope: '', error: { code: 'MALFORMED', reason: 'The part is empty.' } };
    return { envelope: '', message: bytes };
  };

  /** Consumes what it can of `buf`; false when it needs more bytes. */
  const step = function* (final: boolean): Generator<ChunkEntry, boolean> {
    switch (where) {
      case 'epilogue':
        buf = Buffer.alloc(0);
        return false;
      case 'headers': {
        const end = buf[0] === 0x0d && buf[1] === 0x0a ? 0 : buf.indexOf(CRLF_CRLF);
        if (end < 0 || buf.length < 2) {
          if (buf.length > MAX_PART_HEADER_BYTES) throw malformed(`a part's header section is longer than ${MAX_PART_HEADER_BYTES} bytes`);
          return false;
        }
        headers = buf.subarray(0, end).toString('latin1');
        buf = buf.subarray(end === 0 ? 2 : end + 4);
        where = 'body';
        return true;
      }
      case 'delimiter': {
        // After a delimiter: "--" closes; otherwise optional white space, then CRLF opens a part.
        if (buf.length < 2) {
          if (final) throw malformed('it ends inside a delimiter line');
          return false;
        }
        if (buf[0] === 0x2d && buf[1] === 0x2d) {
          where = 'epilogue';
          return true;
        }
        let i = 0;
        while (buf[i] === 0x20 || buf[i] === 0x09) i++;
        if (i > 1024) throw malformed('a delimiter line does not end');
        if (i + 2 > buf.length) {
          if (final) throw malformed('it ends inside a delimiter line');
          return false;
        }
        // The boundary must not begin any other line (RFC 2046 5.1.1): "--boundaryX" is no part's content.
        if (buf[i] !== 0x0d || buf[i + 1] !== 0x0a) throw malformed('a line begins with the boundary but is no delimiter');
        buf = buf.subarray(i + 2);
        where = 'headers';
        return true;
      }
      default: {
        const hit = buf.indexOf(delimiter);
        if (hit < 0) {
          // Everything but the start of a delimiter cut by the chunk's end is body (or preamble, dropped).
          const safe = Math.max(0, buf.length - delimiter.length);
          if (where === 'body') body.add(buf.subarray(0, safe));
          buf = buf.subarray(safe);
          return false;
        }
        if (where === 'body') {
          body.add(buf.subarray(0, hit));
          yield finishPart();
        }
        buf = buf.subarray(hit + delimiter.length);
        where = 'delimiter';
        return true;
      }
    }
  };

  for await (const chunk of source) {
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    for (;;) {
      const more = yield* step(false);
      if (!more) break;
    }
  }
  for (;;) {
    const more = yield* step(true);
    if (!more) break;
  }
  if ((where as string) !== 'epilogue') throw malformed('it ends before its closing delimiter (a truncated upload?)');
}
