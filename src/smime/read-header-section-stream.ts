/**
 * The header section of a message arriving as a stream (RFC 5322 section 2.1: up to
 * the first empty line), for the streaming message readers (verifyMessageStream,
 * decryptMessageStream), and an entity known by that header section alone.
 */
import { KakitomeError } from '../errors.ts';
import type { Limits } from '../limits.ts';
import type { MimeEntity } from '../mime/entity.ts';
import { parseContentType } from '../mime/parse-content-type.ts';
import { parseHeaderSection } from '../mime/parse-header-section.ts';
import { findBlankLine } from '../mime/find-blank-line.ts';
import { readTypingFields } from '../mime/check-multipart-encoding.ts';

/**
 * Reads the header section (up to and including the blank line); returns a copy of it
 * (callers may reuse their chunk buffers) and the bytes after it, valid until the
 * next chunk is read.
 */
export async function readHeaderSection(it: AsyncIterator<Buffer>, limits: Limits): Promise<{ head: Buffer; rest: Buffer }> {
  let buf: Buffer = Buffer.alloc(0);
  for (;;) {
    const blank = findBlankLine(buf);
    if (blank) return { head: Buffer.from(buf.subarray(0, blank.bodyStart)), rest: buf.subarray(blank.bodyStart) };
    if (buf.length > limits.maxHeaderBytes) throw new KakitomeError('LIMIT', `A header section of more than ${limits.maxHeaderBytes} bytes exceeds the header limit.`);
    const r = await it.next();
    if (r.done) return { head: Buffer.from(buf), rest: Buffer.alloc(0) };
    buf = buf.length ? Buffer.concat([buf, r.value]) : r.value;
  }
}

/**
 * An entity known by its header section only (its body is still streaming): no
 * multipart split. `first`: the message's own header section (parseHeaderSection's flag).
 */
export function headerOnlyEntity(head: Buffer, limits: Limits, first = false): MimeEntity {
  const section = parseHeaderSection(head, 0, head.length, limits, first);
  const { contentTypeField, transferEncoding } = readTypingFields(section.fields);
  const contentType = parseContentType(contentTypeField?.value);
  const warnings = [...section.warnings];
  // As parseEntity: an unparsable Content-Type is text/plain (RFC 2045 section 5.2), said so; a trailing comment on the encoding is dropped.
  if (contentTypeField && contentType.defaulted) warnings.push(`Unparsable Content-Type "${contentTypeField.value.slice(0, 80)}" read as text/plain.`);
  return {
    raw: head,
    offset: 0,
    headers: section.fields,
    headerBytes: head,
    body: Buffer.alloc(0),
    contentType,
    transferEncoding,
    children: [],
    depth: 0,
    warnings,
  };
}
