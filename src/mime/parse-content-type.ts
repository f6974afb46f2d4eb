/**
 * Content-Type (RFC 2045 section 5, RFC 2231 parameter continuations and charsets).
 * The parameter grammar and RFC 2231 decoding are libmime's; this file adds the
 * RFC 2045 section 5.2 defaults and the lower-casing of names.
 */
import libmime from 'libmime';
import type { ContentType } from './entity.ts';

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;

/**
 * Parses a Content-Type field value. `undefined` or an unparsable value gives the
 * default (text/plain; charset=us-ascii, or message/rfc822 inside multipart/digest)
 * with `defaulted` set, as RFC 2045 section 5.2 requires.
 */
export function parseContentType(value: string | undefined, digestParent = false): ContentType {
  const fallback = (): ContentType =>
    digestParent
      ? { mediaType: 'message/rfc822', type: 'message', subtype: 'rfc822', params: {}, defaulted: true }
      : { mediaType: 'text/plain', type: 'text', subtype: 'plain', params: { charset: 'us-ascii' }, defaulted: true };
  if (value === undefined) return fallback();
  const parsed = libmime.parseHeaderValue(value);
  const mediaType = String(parsed.value ?? '').trim().toLowerCase();
  const slash = mediaType.indexOf('/');
  if (slash <= 0) return fallback();
  const type = mediaType.slice(0, slash);
  const subtype = mediaType.slice(slash + 1);
  if (!TOKEN.test(type) || !TOKEN.test(subtype)) return fallback();
  const params: Record<string, string> = Object.create(null);
  for (const [k, v] of Object.entries(parsed.params ?? {})) params[k.toLowerCase()] = String(v);
  return { mediaType, type, subtype, params, defaulted: false };
}
