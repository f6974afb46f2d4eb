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
      return decodeBase64(entity.body.toString('latin1'));
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
