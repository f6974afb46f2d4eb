/**
 * RFC 2045 section 6.4: a multipart (and so a multipart/signed) is never in a
 * transfer encoding; only 7bit, 8bit and binary, which say what it holds, may be
 * named. One that names base64 or quoted-printable has two readings: Python's
 * email package ignores the field (recording InvalidMultipartContentTransferEncoding-
 * Defect), a reader that decodes the body shows bytes other than the parts
 * verified.
 *
 * The parsers read such a multipart as its parts (as Python does), so unsigned mail
 * from a broken mailer is read as before; the readers refuse it (MALFORMED) where
 * two readings matter: a multipart/signed and every multipart in signed, encrypted
 * or compressed content (open-message.ts, verify-message-stream.ts,
 * decrypt-message-stream.ts), and the content given to the signers
 * (prepare-content.ts, sign-message-stream.ts).
 */
import { malformed } from '../errors.ts';
import { walkEntities, type ContentType, type HeaderField, type MimeEntity } from './entity.ts';

/** What the writers add: the mail program's message is at fault, and how to send it. */
const TO_SIGN = '; it is not signed or encrypted as it would read differently to different mail programs: remove the field from the multipart (or make it 7bit) and send it again';

/** MALFORMED for a multipart in a transfer encoding; `writing`: said to whoever gave it to be signed or encrypted, with the remedy. */
export function checkMultipartEncoding(entity: { contentType: ContentType; transferEncoding: string }, writing = false): void {
  const { contentType, transferEncoding } = entity;
  if (contentType.type !== 'multipart') return;
  if (transferEncoding === '7bit' || transferEncoding === '8bit' || transferEncoding === 'binary') return;
  malformed(`a ${contentType.mediaType} in Content-Transfer-Encoding ${transferEncoding.slice(0, 40)} (RFC 2045 section 6.4: a multipart is never encoded, its parts are)${writing ? TO_SIGN : ''}`);
}

/** checkMultipartEncoding for `entity` and every entity inside it. */
export function checkMultipartEncodings(entity: MimeEntity, writing = false): void {
  for (const e of walkEntities(entity)) checkMultipartEncoding(e, writing);
}

/** A Content-Transfer-Encoding field's value as the parsers read it: lower case, a trailing comment dropped; '7bit' when absent (RFC 2045 section 6.1). */
export function readTransferEncoding(value: string | undefined): string {
  if (value === undefined) return '7bit';
  const v = value.toLowerCase();
  // Only a "(" can start a comment.
  return (v.includes('(') ? v.replace(/\s*\(.*\)\s*$/, '') : v).trim();
}

/**
 * An entity's typing fields from its header section: MALFORMED when Content-Type or
 * Content-Transfer-Encoding is given twice (two readings); the Content-Type field
 * (parsed by the caller, whose context may matter) and the normalised encoding.
 */
export function readTypingFields(fields: readonly HeaderField[]): { contentTypeField: HeaderField | undefined; transferEncoding: string } {
  let contentTypeField: HeaderField | undefined;
  let encodingField: HeaderField | undefined;
  for (const f of fields) {
    const name = f.name.toLowerCase();
    if (name === 'content-type') {
      if (contentTypeField) malformed('an entity has more than one Content-Type field');
      contentTypeField = f;
    } else if (name === 'content-transfer-encoding') {
      if (encodingField) malformed('an entity has more than one Content-Transfer-Encoding field');
      encodingField = f;
    }
  }
  return { contentTypeField, transferEncoding: readTransferEncoding(encodingField?.value) };
}
