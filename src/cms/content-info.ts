/**
 * ContentInfo (RFC 5652 section 3): the outer wrapper of every CMS object.
 *   ContentInfo ::= SEQUENCE { contentType OBJECT IDENTIFIER, content [0] EXPLICIT ANY }
 */
import { decode, Tag, type Tlv, readOid } from '../asn1/ber.ts';
import { sequence, oid, explicit } from '../asn1/der.ts';
import { malformed, KakitomeError } from '../errors.ts';
import { resolveLimits, type Limits } from '../limits.ts';

export interface ContentInfo {
  contentType: string;
  /** The value inside [0] EXPLICIT (for SignedData: the SignedData SEQUENCE). */
  content: Tlv;
}

/** Parses a whole CMS object; trailing bytes, bad lengths and deep nesting are rejected. */
export function parseContentInfo(input: Uint8Array, limits?: Partial<Limits>): ContentInfo {
  const l = resolveLimits(limits);
  if (input.length > l.maxCmsBytes) throw new KakitomeError('LIMIT', `CMS object of ${input.length} bytes exceeds the ${l.maxCmsBytes}-byte limit.`);
  const root = decode(input, { maxDepth: l.maxAsn1Depth });
  if (root.tag !== Tag.SEQUENCE) malformed('ContentInfo is not a SEQUENCE');
  const f = root.fields('ContentInfo');
  const contentType = readOid(f.expect(Tag.OID, 'contentType'), 'contentType');
  const wrapper = f.expect(0xa0, 'content');
  f.end();
  const inner = wrapper.children();
  if (inner.length !== 1) malformed('ContentInfo content must hold exactly one value');
  return { contentType, content: inner[0]! };
}

/** A CMS object as bytes (DER/BER ContentInfo), or already read (parseContentInfo, readNestedContentInfo). */
export type CmsInput = Uint8Array | ContentInfo;

/** The ContentInfo of `input`, parsed unless it already is one. */
export function toContentInfo(input: CmsInput, limits?: Partial<Limits>): ContentInfo {
  return input instanceof Uint8Array ? parseContentInfo(input, limits) : input;
}

/**
 * CMS content nested directly in CMS (an encapsulated or encrypted content type
 * other than id-data, RFC 5652 5.2 and RFC 3274 1.1: e.g. SignedData over
 * CompressedData), read in place as the ContentInfo it stands for: no re-encoding,
 * so no copy of a layer's content. Limits as parseContentInfo (the depth counts
 * the two levels of the ContentInfo wrapper it does not have).
 */
export function readNestedContentInfo(contentType: string, content: Uint8Array, limits?: Partial<Limits>): ContentInfo {
  const l = resolveLimits(limits);
  if (content.length > l.maxCmsBytes) throw new KakitomeError('LIMIT', `CMS object of ${content.length} bytes exceeds the ${l.maxCmsBytes}-byte limit.`);
  return { contentType, content: decode(content, { maxDepth: Math.max(1, l.maxAsn1Depth - 2) }) };
}

export function encodeContentInfo(contentType: string, content: Uint8Array): Buffer {
  return sequence(oid(contentType), explicit(0, content));
}
