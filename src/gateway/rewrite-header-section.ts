/**
 * Edits the message header section in place of bytes: fields chosen by `remove` are
 * cut out, `prepend` fields are written first (RFC 8601 section 5: a new
 * Authentication-Results goes at the top, like a trace field), and every other byte
 * (the remaining fields, the blank line, the body) is copied unchanged, so a
 * signature over the body still verifies downstream.
 */
import { resolveLimits } from '../limits.ts';
import type { HeaderField } from '../mime/entity.ts';
import { parseHeaderSection } from '../mime/parse-header-section.ts';

export function rewriteHeaderSection(message: Buffer, edit: { remove?: (field: HeaderField) => boolean; prepend?: readonly Buffer[] }): Buffer {
  const section = parseHeaderSection(message, 0, message.length, resolveLimits(), true);
  const chunks: Buffer[] = [...(edit.prepend ?? [])];
  let copied = 0;
  if (edit.remove) {
    for (const field of section.fields) {
      if (!edit.remove(field)) continue;
      const start = field.raw.byteOffset - message.byteOffset;
      chunks.push(message.subarray(copied, start));
      copied = start + field.raw.length;
    }
  }
  chunks.push(message.subarray(copied));
  return Buffer.concat(chunks);
}

/** The header fields of a message (parsed once, bounded by the library's limits). */
export function readHeaderFields(message: Buffer): HeaderField[] {
  return parseHeaderSection(message, 0, message.length, resolveLimits(), true).fields;
}
