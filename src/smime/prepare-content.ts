/**
 * Turns a message's content into the Cryptographic Payload (RFC 9788 section 1.1):
 * 7-bit transfer encodings everywhere (RFC 8551 section 3.1.2, so relays cannot
 * break the signature), then, with header protection, the protected header fields
 * copied into the root part and hp="clear" or hp="cipher" on its Content-Type.
 */
import { encodeSevenBit, isSevenBitData } from '../mime/encode-seven-bit.ts';
import { buildEntity, formatParameterizedValue, type HeaderInput } from '../mime/build-entity.ts';
import { parseEntity } from '../mime/parse-entity.ts';
import type { Limits } from '../limits.ts';
import { copyFieldsInside, selectProtectedFields } from './header-protection.ts';
import type { SplitMessage } from './split-message.ts';

export interface PrepareContentOptions {
  /** RFC 9788 hp value, or undefined for no header protection. */
  headerProtection?: 'clear' | 'cipher';
  /** HP-Outer fields (encryption). */
  hpOuter?: Buffer[];
}

export function prepareContent(split: SplitMessage, options: PrepareContentOptions, limits: Limits): Buffer {
  const entity = parseEntity(split.content, { limits });
  const sevenBit = encodeSevenBit(entity, limits).bytes;
  if (!options.headerProtection) return sevenBit;
  const payload = parseEntity(sevenBit, { limits });
  const ct = payload.contentType;
  const params: Record<string, string> = { ...ct.params, hp: options.headerProtection };
  // QUIRK: a message without Content-Type whose body is not ASCII is, in practice, UTF-8
  // (RFC 6532 era clients); labelling it us-ascii as RFC 2045 section 5.2 would garble it.
  if (ct.defaulted && !isSevenBitData(entity.body)) params.charset = 'utf-8';
  const headers: HeaderInput[] = [['Content-Type', formatParameterizedValue(ct.mediaType, params)]];
  for (const h of payload.headers) if (h.name.toLowerCase() !== 'content-type') headers.push(h);
  headers.push(...copyFieldsInside(selectProtectedFields(split.messageHeaders)));
  const hpOuter = (options.hpOuter ?? []).map((raw) => ({ name: 'HP-Outer', raw, value: '' }));
  return buildEntity([...headers, ...hpOuter], payload.body);
}
