/**
 * A multipart body that ends without its close delimiter (RFC 2046 section
 * 5.1.1), decided in one place for the in-memory parser (parse-entity.ts), the
 * streaming walker (walk-mime-stream.ts) and the streaming multipart/signed scanner
 * (src/smime/scan-signed-body.ts), so that they agree on every input.
 */
import { malformed } from '../errors.ts';

/**
 * multipart/signed (RFC 1847 section 2.1: exactly the content and the signature)
 * without a close delimiter is MALFORMED: it was truncated, or text was added after
 * the signature part, and either way it is not the message that was signed (issue 9
 * item 6).
 */
export function refuseUnclosedSigned(): never {
  malformed('multipart/signed body has no close delimiter (RFC 2046 section 5.1.1): the message was truncated, or something was added after its signature');
}

/** Called when a multipart of `mediaType` ended without a close delimiter. */
export function noteUnclosedMultipart(mediaType: string, warnings: string[]): void {
  if (mediaType === 'multipart/signed') refuseUnclosedSigned();
  // QUIRK: other multiparts (truncated mail) end their last part at the end of the body.
  warnings.push('The multipart has no close delimiter; its last part runs to the end of the body.');
}
