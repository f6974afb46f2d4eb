/**
 * The MIME entity model (RFC 2045 section 2.4, RFC 2046). Every entity keeps the
 * exact bytes it was parsed from: a multipart/signed verifier hashes `raw` of the
 * first child, and a writer copies header fields nobody changed byte for byte
 * (style guide, "Raw bytes"). Decoded views (header text, content type, body
 * octets) are computed from those bytes and never written back.
 *
 * This folder never imports src/cms or src/pki: MIME knows nothing of cryptography.
 */

/** One header field as it appeared: name, raw bytes (with folding and its line break), unfolded value. */
export interface HeaderField {
  /** Field name as written (case preserved). */
  name: string;
  /** The field's exact bytes, including continuation lines and the terminating line break. */
  raw: Buffer;
  /** The unfolded field body (RFC 5322 section 2.2.3), leading whitespace removed; UTF-8 when valid (RFC 6532), else Latin-1. */
  value: string;
}

export interface ContentType {
  /** Lower-case "type/subtype". */
  mediaType: string;
  type: string;
  subtype: string;
  /** Parameters with lower-case names; RFC 2231 continuations and charsets already joined and decoded. */
  params: Record<string, string>;
  /** True when the entity had no Content-Type field and the RFC 2045 section 5.2 default applies. */
  defaulted: boolean;
}

export interface MimeEntity {
  /** The entity's exact bytes: header section, separator line and body. */
  raw: Buffer;
  /** Byte offset of `raw` within the buffer given to the parser (for reports). */
  offset: number;
  headers: HeaderField[];
  /** The header section's exact bytes, without the blank separator line. */
  headerBytes: Buffer;
  /** The body's exact bytes (still transfer-encoded). */
  body: Buffer;
  contentType: ContentType;
  /** Lower-case Content-Transfer-Encoding, '7bit' when absent (RFC 2045 section 6.1). */
  transferEncoding: string;
  /** For multipart entities: the body parts in order. Empty otherwise. */
  children: MimeEntity[];
  /** For multipart entities: bytes before the first and after the last delimiter. */
  preamble?: Buffer;
  epilogue?: Buffer;
  /** Depth in the tree: 0 for the message itself. */
  depth: number;
  /** Deviations accepted while parsing (each also marked QUIRK in the parser). */
  warnings: string[];
}

/** All fields named `name` (case-insensitive), in order. */
export function getHeaderFields(entity: Pick<MimeEntity, 'headers'>, name: string): HeaderField[] {
  const lower = name.toLowerCase();
  return entity.headers.filter((h) => h.name.toLowerCase() === lower);
}

/** The single value of field `name`, undefined when absent. Several fields of that name are not merged: the first wins and callers that care check getHeaderFields(). */
export function getHeaderValue(entity: Pick<MimeEntity, 'headers'>, name: string): string | undefined {
  return getHeaderFields(entity, name)[0]?.value;
}

/** Walks the entity tree depth-first, parents before children. */
export function* walkEntities(entity: MimeEntity): Generator<MimeEntity> {
  yield entity;
  for (const c of entity.children) yield* walkEntities(c);
}

export function isMultipart(entity: MimeEntity): boolean {
  return entity.contentType.type === 'multipart';
}
