/**
 * Header text for people: RFC 2047 encoded-words decoded (libmime, which converts
 * ISO-2022-JP, Shift_JIS and the other legacy charsets through iconv-lite and
 * encoding-japanese), RFC 6532 UTF-8 taken as is.
 */
import { libmime } from './libmime.ts';

export function decodeHeaderText(value: string): string {
  // Every rewrite libmime.decodeWords makes starts from an encoded-word ("=?"); most
  // header values have none, and skipping its five regular expressions for them is
  // a measurable share of verifying a small message (docs/performance.md).
  if (!value.includes('=?')) return value;
  return libmime().decodeWords(value);
}
