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
import { checkMultipartEncodings } from '../mime/check-multipart-encoding.ts';
import { pushProtectedFieldsInside } from './header-protection.ts';
import type { SplitMessage } from './split-message.ts';
import type { HeaderField } from '../mime/entity.ts';

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
  // Content with two readings is not signed or encrypted (the readers would refuse it): check-multipart-encoding.ts.
  checkMultipartEncodings(root, true);
  const sevenBit = encodeSevenBitParts(root, limits, split.contentHeaders);
  if (!options.headerProtection) return sevenBit.changed ? buildEntity(sevenBit.headers, sevenBit.body) : split.content;
  const headers: HeaderInput[] = [['Content-Type', protectedContentType(split, options.headerProtection)]];
  for (const h of sevenBit.headers) if (!isContentTypeField(fieldName(h))) headers.push(h);
  pushProtectedFieldsInside(headers, split.messageHeaders);
  for (const raw of options.hpOuter ?? []) headers.push({ name: 'HP-Outer', raw, value: '' });
  return buildEntity(headers, sevenBit.body);
}

function isContentTypeField(name: string): boolean {
  return name.length === 12 && name.toLowerCase() === 'content-type';
}

/**
 * The root's Content-Type value with hp added. A sender writes the same few values over
 * and over (text/plain; charset=utf-8): the result is kept per exact field value, which
 * fixes it (parseContentType of that value, then formatParameterizedValue), so a message
 * costs one lookup instead of the parameters' cache key built and hashed (2% of signing
 * a small message). Bounded, and long values are not kept.
 */
function protectedContentType(split: SplitMessage, hp: 'clear' | 'cipher'): string {
  const ct = split.root.contentType;
  let field: HeaderField | undefined;
  if (!ct.defaulted) for (const h of split.contentHeaders) if (isContentTypeField(h.name)) field = h;
  const kept = field && field.value.length <= 256 ? keptContentTypes[hp] : undefined;
  const hit = kept?.get(field!.value);
  if (hit !== undefined) return hit;
  const params: Record<string, string> = { ...ct.params, hp };
  // QUIRK: a message without Content-Type whose body is not ASCII is, in practice, UTF-8
  // (RFC 6532 era clients); labelling it us-ascii as RFC 2045 section 5.2 would garble it.
  if (ct.defaulted && !isSevenBitData(split.root.body)) params.charset = 'utf-8';
  const value = formatParameterizedValue(ct.mediaType, params);
  if (kept) {
    if (kept.size >= 256) kept.clear();
    kept.set(field!.value, value);
  }
  return value;
}

const keptContentTypes = { clear: new Map<string, string>(), cipher: new Map<string, string>() };
