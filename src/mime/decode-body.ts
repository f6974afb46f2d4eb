/**
 * Removes the Content-Transfer-Encoding (RFC 2045 section 6) from an entity body.
 * Base64 and quoted-printable are libbase64's and libqp's; identity encodings
 * return the body bytes unchanged.
 */
import { decode as decodeBase64 } from 'libbase64';
import { decode as decodeQuotedPrintable } from 'libqp';
import { KakitomeError } from '../errors.ts';
import type { MimeEntity } from './entity.ts';

/** The entity's content octets. Unknown encodings fail with UNSUPPORTED_ALG rather than being guessed. */
export function decodeBody(entity: Pick<MimeEntity, 'body' | 'transferEncoding'>): Buffer {
  switch (entity.transferEncoding) {
    case 'base64':
      return decodeBase64Text(entity.body.toString('latin1'));
    case 'quoted-printable':
      return decodeQuotedPrintable(entity.body);
    case '7bit':
    case '8bit':
    case 'binary':
      return entity.body;
    default:
      throw new KakitomeError('UNSUPPORTED_ALG', `Unknown Content-Transfer-Encoding "${entity.transferEncoding}".`);
  }
}

/**
 * libbase64's decode for Latin-1 text (what a body read as Latin-1 is): the usual
 * body, padded only at its end, goes straight to Buffer.from; padding followed by
 * more base64 (segments padded one by one) takes libbase64's segment decoder. Skips
 * libbase64's scan for characters above U+00FF, which Latin-1 text cannot contain
 * (test/mime/decode-body.test.ts compares the two).
 */
export function decodeBase64Text(text: string): Buffer {
  const pad = text.indexOf('=');
  if (pad < 0 || !/[a-zA-Z0-9+/\-_]/.test(text.slice(pad))) return Buffer.from(text, 'base64');
  return decodeBase64(text);
}
