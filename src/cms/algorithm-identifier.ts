/** AlgorithmIdentifier ::= SEQUENCE { algorithm OBJECT IDENTIFIER, parameters ANY OPTIONAL } */
import { Tag, type Tlv, readOid } from '../asn1/ber.ts';
import { sequence, oid } from '../asn1/der.ts';
import { malformed } from '../errors.ts';

export interface AlgorithmIdentifier {
  oid: string;
  /** The parameters value, absent when omitted. A NULL is kept as a NULL Tlv. */
  parameters: Tlv | undefined;
  /** The original encoding. */
  der: Uint8Array;
}

export function parseAlgorithmIdentifier(t: Tlv, field = 'AlgorithmIdentifier'): AlgorithmIdentifier {
  if (t.tag !== Tag.SEQUENCE) malformed(`${field} is not a SEQUENCE`);
  const f = t.fields(field);
  const id = readOid(f.expect(Tag.OID, 'algorithm'), `${field}.algorithm`);
  const parameters = f.peek() ? f.next('parameters') : undefined;
  f.end();
  return { oid: id, parameters, der: t.bytes };
}

/** True when parameters are absent or NULL (both appear in the wild for the same algorithm). */
export function hasNoParameters(a: AlgorithmIdentifier): boolean {
  return a.parameters === undefined || (a.parameters.tag === Tag.NULL && a.parameters.value.length === 0);
}

/** Encodes an AlgorithmIdentifier; `parameters` undefined omits them. */
export function encodeAlgorithmIdentifier(id: string, parameters?: Uint8Array): Buffer {
  return parameters === undefined ? sequence(oid(id)) : sequence(oid(id), parameters);
}
