/**
 * A text part's content as a string: transfer encoding removed (decodeBody), then
 * the declared charset converted by libmime (iconv-lite, and encoding-japanese for
 * ISO-2022-JP / Shift_JIS / EUC-JP, which mail in Japan still uses).
 */
import { libmimeCharset } from './libmime.ts';
import type { MimeEntity } from './entity.ts';
import { decodeBody } from './decode-body.ts';

export function decodeText(entity: Pick<MimeEntity, 'body' | 'transferEncoding' | 'contentType'>): string {
  return libmimeCharset().decode(decodeBody(entity), entity.contentType.params.charset ?? 'us-ascii');
}
