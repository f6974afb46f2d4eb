/**
 * Edits the message header section in place of bytes: fields chosen by `remove` are
 * cut out, fields for which `replace` gives new bytes are written in their place,
 * `prepend` fields are written first (RFC 8601 section 5: a new
 * Authentication-Results goes at the top, like a trace field), and every other byte
 * (the remaining fields, the blank line, the body) is copied unchanged, so a
 * signature over the body still verifies downstream.
 */
import { resolveLimits } from '../limits.ts';
import type { HeaderField } from '../mime/entity.ts';
import { parseHeaderSection } from '../mime/parse-header-section.ts';

export interface HeaderEdit {
  remove?: (field: HeaderField) => boolean;
  replace?: (field: HeaderField) => Buffer | undefined;
  prepend?: readonly Buffer[];
}

export function rewriteHeaderSection(message: Buffer, edit: HeaderEdit): Buffer {
  const section = parseHeaderSection(message, 0, message.length, resolveLimits(), true);
  const chunks: Buffer[] = [...(edit.prepend ?? [])];
  let copied = 0;
  if (edit.remove || edit.replace) {
    for (const field of section.fields) {
      const removed = edit.remove?.(field) === true;
      const replacement = removed ? undefined : edit.replace?.(field);
      if (!removed && replacement === undefined) continue;
      const start = field.raw.byteOffset - message.byteOffset;
      chunks.push(message.subarray(copied, start));
      if (replacement) chunks.push(replacement);
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

/** The header section's bytes (every field, without the blank line or the body). */
export function readHeaderSectionBytes(message: Buffer): Buffer {
  return message.subarray(0, parseHeaderSection(message, 0, message.length, resolveLimits(), true).headerEnd);
}
