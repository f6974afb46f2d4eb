/**
 * A MIME entity rebuilt so that no part of it makes a mail client fetch anything
 * or render anything but text: for content whose bytes nobody vouches for (CBC
 * content without the sender's signature, EFAIL), which a reader may still ask to
 * see. Nothing of the input is copied as it was: every part is decoded and
 * written anew.
 *
 * - multipart/alternative, /related and /mixed keep their shape (any other
 *   multipart becomes mixed); preamble and epilogue go;
 * - text/plain is re-encoded as UTF-8;
 * - text/html goes through neutralizeHtml (no URL survives, a banner on top);
 * - everything else (images, message/rfc822, message/external-body, other text
 *   types, applications) becomes an application/octet-stream attachment, which
 *   no client opens or fetches by itself; its file name is kept, made harmless.
 * Header fields of parts are not copied (Content-ID, Content-Location and
 * Content-Base point clients at other parts or at URLs).
 */
import { decodeBody } from './decode-body.ts';
import { decodeText } from './decode-text.ts';
import { buildEntity, buildMultipartBody, createBoundary, formatParameterizedValue, type HeaderInput } from './build-entity.ts';
import { encodeBase64Lines } from './encode-base64-lines.ts';
import type { MimeEntity } from './entity.ts';
import { readPartFilename } from './read-part-filename.ts';
import { neutralizeHtml, type NeutralizeHtmlOptions } from './neutralize-html.ts';

export interface NeutralizedEntity {
  /** The rebuilt entity: its Content-* header fields, blank line and body. */
  entity: Buffer;
  /** HTML parts rewritten, parts turned into attachments, elements and attributes removed. */
  htmlParts: number;
  attachments: number;
  removed: number;
}

const KEPT_MULTIPART = new Set(['alternative', 'related', 'mixed']);

export type NeutralizeReport = Omit<NeutralizedEntity, 'entity'>;

export function neutralizeEntity(entity: MimeEntity, html: NeutralizeHtmlOptions = {}): NeutralizedEntity {
  const report = { htmlParts: 0, attachments: 0, removed: 0 };
  const write = (e: MimeEntity): Buffer => {
    if (e.contentType.type === 'multipart') {
      const { boundary, headers } = neutralizedMultipart(e.contentType.subtype);
      return buildEntity(headers, buildMultipartBody(boundary, e.children.map(write)));
    }
    const text = neutralizeTextLeaf(e, html, report);
    if (text) return text;
    report.attachments++;
    return buildEntity(attachmentHeaders(e), encodeBase64Lines(decodeBody(e)));
  };
  const out = write(entity);
  return { entity: out, ...report };
}

/** The header fields of a multipart rebuilt (its kind kept or made mixed) under a fresh boundary. */
export function neutralizedMultipart(subtype: string): { boundary: string; headers: HeaderInput[] } {
  const boundary = createBoundary();
  const kind = KEPT_MULTIPART.has(subtype) ? subtype : 'mixed';
  return { boundary, headers: [['Content-Type', formatParameterizedValue(`multipart/${kind}`, { boundary })]] };
}

/** A text/plain or text/html leaf rewritten (counted in `report`); undefined for every other type (an attachment). */
export function neutralizeTextLeaf(e: Pick<MimeEntity, 'body' | 'transferEncoding' | 'contentType'>, html: NeutralizeHtmlOptions, report: NeutralizeReport): Buffer | undefined {
  const { mediaType } = e.contentType;
  if (mediaType === 'text/plain') return textPart('text/plain', decodeText(e));
  if (mediaType !== 'text/html') return undefined;
  const n = neutralizeHtml(decodeText(e), html);
  report.htmlParts++;
  report.removed += n.removed;
  return textPart('text/html', n.html);
}

/** A text part of ours: UTF-8, base64. */
export function textPart(mediaType: string, text: string): Buffer {
  return buildEntity(
    [['Content-Type', `${mediaType}; charset=utf-8`], ['Content-Transfer-Encoding', 'base64']],
    encodeBase64Lines(Buffer.from(text, 'utf8')),
  );
}

/** The header fields of a part made an attachment: application/octet-stream, base64, its file name made harmless. */
export function attachmentHeaders(e: Pick<MimeEntity, 'headers' | 'contentType'>): HeaderInput[] {
  const name = safeFilename(readPartFilename(e)) ?? `part.${e.contentType.subtype.replace(/[^a-z0-9]/g, '').slice(0, 20) || 'bin'}`;
  return [
    ['Content-Type', formatParameterizedValue('application/octet-stream', { name })],
    ['Content-Disposition', formatParameterizedValue('attachment', { filename: name })],
    ['Content-Transfer-Encoding', 'base64'],
  ];
}

/** A name to show: no path, no control or bidi characters, not empty, at most 100 characters. */
function safeFilename(name: string | undefined): string | undefined {
  if (name === undefined) return undefined;
  const base = name.split(/[\\/]/).pop() ?? '';
  const clean = base.replace(/[\p{Cc}\p{Cf}"]/gu, '').trim().slice(0, 100);
  return clean.length > 0 && clean !== '.' && clean !== '..' ? clean : undefined;
}
