/**
 * Turns a message's content into the Cryptographic Payload (RFC 9788 section 1.1):
 * 7-bit transfer encodings everywhere (RFC 8551 section 3.1.2, so relays cannot
 * break the signature), then, with header protection, the protected header fields
 * copied into the root part and hp="clear" or hp="cipher" on its Content-Type.
 *
 * The message is parsed once (splitMessage): its root entity, with the message
 * header fields set aside, is the content entity, so the payload is written once
 * from the root's content fields and (re-encoded) body. test/smime/prepare-content.test.ts
 * checks the bytes against the general composition (parse the content entity on its
 * own, encodeSevenBit, parse again, add the fields).
 */
import { encodeSevenBitParts, isSevenBitData } from '../mime/encode-seven-bit.ts';
import { buildEntity, formatParameterizedValue, type HeaderInput } from '../mime/build-entity.ts';
import type { Limits } from '../limits.ts';
import { copyFieldsInside, selectProtectedFields } from './header-protection.ts';
import type { SplitMessage } from './split-message.ts';

export interface PrepareContentOptions {
  /** RFC 9788 hp value, or undefined for no header protection. */
  headerProtection?: 'clear' | 'cipher';
  /** HP-Outer fields (encryption). */
  hpOuter?: Buffer[];
}

function fieldName(h: HeaderInput): string {
  return 'raw' in h ? h.name : h[0];
}

export function prepareContent(split: SplitMessage, options: PrepareContentOptions, limits: Limits): Buffer {
  const root = split.root;
  const sevenBit = encodeSevenBitParts(root, limits, split.contentHeaders);
  if (!options.headerProtection) return sevenBit.changed ? buildEntity(sevenBit.headers, sevenBit.body) : split.content;
  const ct = root.contentType;
  const params: Record<string, string> = { ...ct.params, hp: options.headerProtection };
  // QUIRK: a message without Content-Type whose body is not ASCII is, in practice, UTF-8
  // (RFC 6532 era clients); labelling it us-ascii as RFC 2045 section 5.2 would garble it.
  if (ct.defaulted && !isSevenBitData(root.body)) params.charset = 'utf-8';
  const headers: HeaderInput[] = [['Content-Type', formatParameterizedValue(ct.mediaType, params)]];
  for (const h of sevenBit.headers) if (fieldName(h).toLowerCase() !== 'content-type') headers.push(h);
  headers.push(...copyFieldsInside(selectProtectedFields(split.messageHeaders)));
  for (const raw of options.hpOuter ?? []) headers.push({ name: 'HP-Outer', raw, value: '' });
  return buildEntity(headers, sevenBit.body);
}
