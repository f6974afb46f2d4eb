/**
 * The sender address of a message, for choosing a signing identity or a copy for
 * the sender: the first address of the From field (RFC 5322 3.6.2). Only the
 * header section is parsed.
 */
import { KakitomeError } from '../errors.ts';
import { resolveLimits } from '../limits.ts';
import { getHeaderFields } from '../mime/entity.ts';
import { parseAddresses } from '../mime/parse-addresses.ts';
import { parseHeaderSection } from '../mime/parse-header-section.ts';

export function readMessageFrom(message: Buffer): string {
  const from = readMessageFromIfAny(message);
  if (from === undefined) throw new KakitomeError('INVALID_ARGUMENT', 'The message has no From address: give --from ADDRESS (or --cert/--key).');
  return from;
}

/** The first From address, or undefined when the message has none. */
export function readMessageFromIfAny(message: Buffer): string | undefined {
  const section = parseHeaderSection(message, 0, message.length, resolveLimits(), true);
  return getHeaderFields({ headers: section.fields }, 'from').flatMap((f) => parseAddresses(f.value))[0];
}
