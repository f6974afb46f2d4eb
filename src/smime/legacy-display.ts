/**
 * The Legacy Display Element of RFC 9788 section 4.5: when encryption obscures a
 * user-facing header field (hcp_baseline puts "[...]" in the outer Subject), the
 * real value is also written at the top of each main body part, so that a client
 * that does not read protected headers (Outlook, Apple Mail, iOS Mail, Gmail, and
 * Thunderbird for S/MIME) still shows it; a client that does read them hides it by
 * the part's hp-legacy-display="1" parameter (text/plain: the lines up to the first
 * empty one; text/html: the div of class header-protection-legacy-display).
 *
 * Main body parts (RFC 9788 section 4.5.2; what a client renders as the message):
 * the root when it is text/plain or text/html, every child of a multipart/alternative,
 * and the first child of any other multipart, down the tree; parts marked
 * Content-Disposition: attachment are not.
 *
 * One transformation for both writers: encryptMessage applies it to the parsed
 * message (withLegacyDisplay), the streaming payload (stream-payload.ts) to each main
 * body part it holds back, so that both write the same decoded text. The part is
 * decoded (transfer encoding; charset when the display needs it), the element is put
 * in front, and the part is written again in base64 with hp-legacy-display="1". A
 * part whose body is larger than LEGACY_DISPLAY_MAX_BODY_BYTES, or whose charset
 * cannot carry the display, is left as it is, and a warning says so.
 */
import { KakitomeError } from '../errors.ts';
import { buildEntity, formatParameterizedValue, type HeaderInput } from '../mime/build-entity.ts';
import { decodeBody } from '../mime/decode-body.ts';
import { isSevenBitData } from '../mime/encode-seven-bit.ts';
import type { ContentType, HeaderField, MimeEntity } from '../mime/entity.ts';
import { base64Lines } from './sign-entity.ts';

/** A main body part larger than this (as encoded) gets no legacy display: the streaming writer holds the part in memory to add it. */
export const LEGACY_DISPLAY_MAX_BODY_BYTES = 1024 * 1024;

/** The HTML class RFC 9788 section 4.5.3.3 names. */
const HTML_CLASS = 'header-protection-legacy-display';

/** Charsets in which an ASCII line is not the ASCII bytes. */
const NOT_ASCII_COMPATIBLE = /^(utf-?16|utf-?32|ucs-?2|ucs-?4|utf-?7|unicode)/i;

/** The display lines for the fields hcp_baseline obscures: the Subject (RFC 9788 section 4.5.1). */
export function legacyDisplayLines(subject: string | undefined): string[] {
  return subject === undefined || subject.trim() === '' ? [] : [`Subject: ${subject.replace(/\s+/g, ' ').trim()}`];
}

/** Said when a main body part is too large to be held for the display. */
export const LEGACY_DISPLAY_TOO_LARGE = `A main body part of more than ${LEGACY_DISPLAY_MAX_BODY_BYTES} bytes got no legacy display of the hidden Subject: clients without header protection (Outlook, Apple Mail, Gmail) will show "[...]" only.`;

/** Multiparts whose parts are signed or encrypted already: changing a part would break that. */
const SEALED = new Set(['signed', 'encrypted']);

/** Where a child of a multipart of this subtype stands: main when its parent is and it is any alternative or the first child (never inside multipart/signed or /encrypted). */
export function isMainChild(parentMain: boolean, parentSubtype: string, index: number): boolean {
  return parentMain && !SEALED.has(parentSubtype) && (parentSubtype === 'alternative' || index === 0);
}

/** The warning for a main multipart whose parts cannot take the display, or undefined. */
export function legacyDisplayBlockedBy(contentType: ContentType): string | undefined {
  return SEALED.has(contentType.subtype) ? `The message is already ${contentType.subtype} inside (${contentType.mediaType}): its body cannot carry the legacy display of the hidden Subject without breaking that, so clients without header protection will show "[...]" only.` : undefined;
}

/** A leaf that, standing where main body parts stand, is one: text/plain or text/html, not an attachment. */
export function isMainBodyLeaf(contentType: ContentType, fields: readonly HeaderField[]): boolean {
  if (contentType.mediaType !== 'text/plain' && contentType.mediaType !== 'text/html') return false;
  const disposition = fields.find((f) => f.name.toLowerCase() === 'content-disposition');
  return !disposition || !/^\s*attachment\b/i.test(disposition.value);
}

export interface LegacyDisplayLeaf {
  headers: HeaderInput[];
  /** The new body, base64 in 76-character lines. */
  body: Buffer;
}

/**
 * One main body part with the legacy display in front, or a warning saying why it
 * has none. `fields` are the part's own header fields (for the root, its content
 * fields), `body` its body as received (transfer-encoded).
 */
export function addLegacyDisplay(fields: readonly HeaderInput[], contentType: ContentType, transferEncoding: string, body: Buffer, lines: readonly string[]): LegacyDisplayLeaf | { warning: string } {
  if (body.length > LEGACY_DISPLAY_MAX_BODY_BYTES) return { warning: LEGACY_DISPLAY_TOO_LARGE };
  let content: Buffer;
  try {
    content = decodeBody({ body, transferEncoding });
  } catch (e) {
    if (e instanceof KakitomeError) return { warning: `A main body part in transfer encoding "${transferEncoding}" got no legacy display of the hidden Subject.` };
    throw e;
  }
  // QUIRK (as prepare-content.ts): a part without Content-Type whose text is not ASCII is, in practice, UTF-8.
  const charset = contentType.defaulted && !isSevenBitData(content) ? 'utf-8' : (contentType.params.charset ?? 'us-ascii').toLowerCase();
  const html = contentType.subtype === 'html';
  const display = html ? `<div class="${HTML_CLASS}"><pre>${escapeHtml(lines.join('\r\n'))}</pre></div>\r\n` : `${lines.join('\r\n')}\r\n\r\n`;
  const asciiDisplay = !/[^\x00-\x7f]/.test(display);
  let text: Buffer;
  let newCharset = contentType.defaulted ? charset : contentType.params.charset;
  if (charset === 'utf-8' || charset === 'us-ascii' || charset === 'ascii') {
    // us-ascii is a subset of UTF-8: the part is relabelled only when the display needs it.
    if (!asciiDisplay) newCharset = 'utf-8';
    text = insert(content, Buffer.from(display, 'utf8'), html);
  } else if (asciiDisplay && !NOT_ASCII_COMPATIBLE.test(charset)) {
    text = insert(content, Buffer.from(display, 'latin1'), html);
  } else {
    // The display cannot be written in the part's charset as it is: the part becomes UTF-8.
    let decoded: string;
    try {
      decoded = new TextDecoder(charset, { fatal: true }).decode(content);
    } catch {
      return { warning: `A main body part in charset "${charset}" got no legacy display of the hidden Subject (the charset is unknown or the text is not valid in it).` };
    }
    newCharset = 'utf-8';
    text = insert(Buffer.from(decoded, 'utf8'), Buffer.from(display, 'utf8'), html);
  }
  const params: Record<string, string> = { ...contentType.params, 'hp-legacy-display': '1' };
  if (newCharset !== undefined) params.charset = newCharset;
  const headers: HeaderInput[] = [['Content-Type', formatParameterizedValue(contentType.mediaType, params)]];
  for (const f of fields) {
    const name = ('raw' in f ? f.name : f[0]).toLowerCase();
    if (name !== 'content-type' && name !== 'content-transfer-encoding') headers.push(f);
  }
  headers.push(['Content-Transfer-Encoding', 'base64']);
  return { headers, body: base64Lines(text) };
}

/** The display at the top of the text; in HTML right after the <body> start tag when there is one. */
function insert(content: Buffer, display: Buffer, html: boolean): Buffer {
  if (!html) return Buffer.concat([display, content]);
  const m = /<body\b[^>]*>/i.exec(content.toString('latin1'));
  if (!m) return Buffer.concat([display, content]);
  const at = m.index + m[0].length;
  return Buffer.concat([content.subarray(0, at), Buffer.from('\r\n'), display, content.subarray(at)]);
}

function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/**
 * The message's content entity (the root with its content fields, `rootFields`)
 * with the legacy display in every main body part: the bytes of the new entity, or
 * undefined when no part changed. Warnings go to `warnings`.
 */
export function withLegacyDisplay(root: MimeEntity, rootFields: readonly HeaderInput[], lines: readonly string[], warnings: string[]): { headers: HeaderInput[]; body: Buffer } | undefined {
  return rewrite(root, rootFields, true, lines, warnings);
}

function rewrite(entity: MimeEntity, fields: readonly HeaderInput[], main: boolean, lines: readonly string[], warnings: string[]): { headers: HeaderInput[]; body: Buffer } | undefined {
  if (!main) return undefined;
  if (entity.contentType.type === 'multipart') {
    const blocked = legacyDisplayBlockedBy(entity.contentType);
    if (blocked) {
      warnings.push(blocked);
      return undefined;
    }
    let changed = false;
    const chunks: Buffer[] = [];
    const bodyStart = entity.body.byteOffset;
    let pos = bodyStart;
    for (const [i, child] of entity.children.entries()) {
      const r = rewrite(child, child.headers, isMainChild(true, entity.contentType.subtype, i), lines, warnings);
      if (!r) continue;
      changed = true;
      const childStart = child.raw.byteOffset;
      // Splice the changed child in: delimiters, preamble, epilogue and the other children keep their bytes.
      chunks.push(Buffer.from(entity.body.buffer, pos, childStart - pos), buildEntity(r.headers, r.body));
      pos = childStart + child.raw.length;
    }
    if (!changed) return undefined;
    chunks.push(Buffer.from(entity.body.buffer, pos, bodyStart + entity.body.length - pos));
    return { headers: [...fields], body: Buffer.concat(chunks) };
  }
  if (!isMainBodyLeaf(entity.contentType, entity.headers)) return undefined;
  const r = addLegacyDisplay(fields, entity.contentType, entity.transferEncoding, entity.body, lines);
  if ('warning' in r) {
    warnings.push(r.warning);
    return undefined;
  }
  return r;
}
