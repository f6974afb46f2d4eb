/**
 * A message the gateway delivers with a notice the recipient sees (issue 13,
 * unauthenticated encryption): multipart/mixed of a text/plain notice and either
 * the original message, byte for byte, as message/rfc822 (RFC 2046 section 5.2.1:
 * never base64, so 7bit or 8bit by its bytes), or `content`, an entity built for
 * it (the neutralised decrypted content). The original's header fields are kept
 * outside except the MIME ones, so the message still shows who sent it and what
 * it is about.
 */
import { buildEntity, buildMultipartBody, createBoundary, formatParameterizedValue, type HeaderInput } from '../mime/build-entity.ts';
import { isSevenBitData } from '../mime/encode-seven-bit.ts';
import { readHeaderFields } from './rewrite-header-section.ts';

export function wrapWithNotice(original: Buffer, notice: string, content?: Buffer): Buffer {
  if (content) return buildWrapped(original, notice, content).whole;
  const { before, after } = noticeFrame(original, notice, isSevenBitData(original) ? '7bit' : '8bit');
  return Buffer.concat([before, original, after]);
}

/**
 * The message around an original that streams (the gateway's large messages): what
 * comes before its bytes and after them. `head` is the original's header section (or
 * all of it); `encoding` what its bytes are: '8bit' when unknown (it also covers 7-bit
 * data, RFC 2045 section 2.8).
 */
export function noticeFrame(head: Buffer, notice: string, encoding: '7bit' | '8bit'): { before: Buffer; after: Buffer } {
  return frameAround(head, notice, buildEntity([['Content-Type', 'message/rfc822'], ['Content-Disposition', 'attachment; filename="original.eml"'], ['Content-Transfer-Encoding', encoding]], Buffer.alloc(0)));
}

/** wrapWithNotice(head, notice, content) for a `content` entity that streams: what comes before it and after it. */
export function contentFrame(head: Buffer, notice: string): { before: Buffer; after: Buffer } {
  return frameAround(head, notice, Buffer.alloc(0));
}

function frameAround(head: Buffer, notice: string, partStart: Buffer): { before: Buffer; after: Buffer } {
  const { whole, boundary } = buildWrapped(head, notice, partStart);
  // The part built without the streamed bytes: they go where it ends, before the close delimiter.
  const after = Buffer.from(`\r\n--${boundary}--\r\n`);
  return { before: whole.subarray(0, whole.length - after.length), after };
}

function buildWrapped(original: Buffer, notice: string, originalPart: Buffer): { whole: Buffer; boundary: string } {
  const outer: HeaderInput[] = readHeaderFields(original).filter((f) => {
    const n = f.name.toLowerCase();
    return n !== 'mime-version' && !n.startsWith('content-');
  });
  const noticePart = buildEntity(
    [['Content-Type', 'text/plain; charset=utf-8'], ['Content-Transfer-Encoding', '8bit']],
    Buffer.from(`${notice.replace(/\r?\n/g, '\r\n')}\r\n`, 'utf8'),
  );
  const boundary = createBoundary();
  return { whole: buildEntity([...outer, ['MIME-Version', '1.0'], ['Content-Type', formatParameterizedValue('multipart/mixed', { boundary })]], buildMultipartBody(boundary, [noticePart, originalPart])), boundary };
}
