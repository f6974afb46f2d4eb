/**
 * Attribute sets (RFC 5652 5.3, 11):
 *   Attribute ::= SEQUENCE { attrType OBJECT IDENTIFIER, attrValues SET OF AttributeValue }
 * Parsing is strict: every attribute has at least one value and no type appears
 * twice (RFC 5652 5.3 for signed attributes; we hold unsigned ones to it too, as
 * duplicates there are ambiguity an attacker can use).
 */
import { Tag, type Tlv, readOid } from '../asn1/ber.ts';
import { sequence, setOf, oid } from '../asn1/der.ts';
import { KakitomeError } from '../errors.ts';
import { DEFAULT_LIMITS } from '../limits.ts';

export interface Attribute {
  type: string;
  values: Tlv[];
}

export function parseAttributes(set: Tlv, what: string, maxAttributes = DEFAULT_LIMITS.maxAttributes): Map<string, Attribute> {
  const out = new Map<string, Attribute>();
  const items = set.children(maxAttributes + 1);
  if (items.length === 0) throw new KakitomeError('ATTR_INVALID', `${what}: an attribute set must not be empty.`);
  if (items.length > maxAttributes) throw new KakitomeError('LIMIT', `${what}: more than ${maxAttributes} attributes.`);
  for (const a of items) {
    if (a.tag !== Tag.SEQUENCE) throw new KakitomeError('ATTR_INVALID', `${what}: an attribute is not a SEQUENCE.`);
    const parts = a.children();
    if (parts.length !== 2 || parts[0]!.tag !== Tag.OID || parts[1]!.tag !== Tag.SET) throw new KakitomeError('ATTR_INVALID', `${what}: an attribute is not { type, SET OF values }.`);
    const type = readOid(parts[0]!);
    const values = parts[1]!.children();
    if (values.length === 0) throw new KakitomeError('ATTR_INVALID', `${what}: attribute ${type} has no value.`);
    if (out.has(type)) throw new KakitomeError('ATTR_INVALID', `${what}: attribute ${type} appears more than once.`);
    out.set(type, { type, values });
  }
  return out;
}

/** The single value of an attribute that RFC 5652/8551 define as single-valued. */
export function singleValue(attrs: Map<string, Attribute>, type: string, what: string): Tlv | undefined {
  const a = attrs.get(type);
  if (!a) return undefined;
  if (a.values.length !== 1) throw new KakitomeError('ATTR_INVALID', `${what} must have exactly one value, found ${a.values.length}.`);
  return a.values[0];
}

export function encodeAttribute(type: string, ...values: Uint8Array[]): Buffer {
  return sequence(oid(type), setOf(values));
}
