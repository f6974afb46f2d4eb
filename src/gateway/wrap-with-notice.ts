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
  const outer: HeaderInput[] = readHeaderFields(original).filter((f) => {
    const n = f.name.toLowerCase();
    return n !== 'mime-version' && !n.startsWith('content-');
  });
  const noticePart = buildEntity(
    [['Content-Type', 'text/plain; charset=utf-8'], ['Content-Transfer-Encoding', '8bit']],
    Buffer.from(`${notice.replace(/\r?\n/g, '\r\n')}\r\n`, 'utf8'),
  );
  const originalPart = content ?? buildEntity(
    [['Content-Type', 'message/rfc822'], ['Content-Disposition', 'attachment; filename="original.eml"'], ['Content-Transfer-Encoding', isSevenBitData(original) ? '7bit' : '8bit']],
    original,
  );
  const boundary = createBoundary();
  return buildEntity([...outer, ['MIME-Version', '1.0'], ['Content-Type', formatParameterizedValue('multipart/mixed', { boundary })]], buildMultipartBody(boundary, [noticePart, originalPart]));
}
