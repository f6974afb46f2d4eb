/**
 * What the check page shows of a message it decrypted for its recipient: the text
 * only, as characters, never as markup. The text/plain parts in order (charset
 * converted by the MIME layer's decodeText); when the message has none, the HTML
 * parts' source, as text (the page escapes every character, so nothing in it is
 * ever rendered, loaded or run). Attachments (parts with a file name or
 * Content-Disposition: attachment) and other media are counted, not shown. At most
 * MAX_CHARS characters are shown.
 */
import { decodeText } from '../../mime/decode-text.ts';
import { getHeaderValue, walkEntities } from '../../mime/entity.ts';
import { parseEntity } from '../../mime/parse-entity.ts';
import { readPartFilename } from '../../mime/read-part-filename.ts';

export const MAX_CHARS = 200_000;

export interface ReadableText {
  text: string;
  /** The HTML parts' source was shown, as text: the message had no plain text. */
  fromHtml: boolean;
  truncated: boolean;
  /** Parts that are neither text nor the structure around it (files, images...). */
  attachments: number;
}

export function readableText(message: Uint8Array): ReadableText {
  const root = parseEntity(message);
  const plain: string[] = [];
  const html: string[] = [];
  let attachments = 0;
  for (const e of walkEntities(root)) {
    const t = e.contentType;
    if (t.type === 'multipart') continue;
    // The signature of a multipart/signed: structure, not content.
    if (t.mediaType === 'application/pkcs7-signature' || t.mediaType === 'application/x-pkcs7-signature') continue;
    const attached = readPartFilename(e) !== undefined || /^\s*attachment/i.test(getHeaderValue(e, 'content-disposition') ?? '');
    if (!attached && t.mediaType === 'text/plain') plain.push(decodeText(e));
    else if (!attached && t.mediaType === 'text/html') html.push(decodeText(e));
    else attachments++;
  }
  const fromHtml = plain.length === 0 && html.length > 0;
  const all = (fromHtml ? html : plain).join('\n\n');
  const truncated = all.length > MAX_CHARS;
  return { text: truncated ? all.slice(0, MAX_CHARS) : all, fromHtml, truncated, attachments };
}
