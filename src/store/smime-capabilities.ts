/**
 * SMIMECapabilities (RFC 8551 2.5.2) as the certificate directory keeps them:
 *   SMIMECapabilities ::= SEQUENCE OF SMIMECapability
 *   SMIMECapability ::= SEQUENCE { capabilityID OBJECT IDENTIFIER, parameters ANY OPTIONAL }
 * The sender lists them in order of preference. Stored as harvested (DER), decoded
 * here when the cipher is chosen.
 */
import { decode, Tag, readOid } from '../asn1/ber.ts';
import { sequence, oid } from '../asn1/der.ts';
import { KakitomeError, malformed } from '../errors.ts';

export interface SmimeCapability {
  id: string;
  /** parameters, whole DER encoding, if present. */
  parameters?: Uint8Array;
}

/** Bounded: a signer cannot make us keep an unbounded list. */
const MAX_CAPABILITIES = 64;

export function parseSmimeCapabilities(der: Uint8Array): SmimeCapability[] {
  const top = decode(der, { der: false, maxDepth: 8 });
  if (top.tag !== Tag.SEQUENCE) malformed('SMIMECapabilities is not a SEQUENCE');
  const items = top.children();
  if (items.length > MAX_CAPABILITIES) throw new KakitomeError('LIMIT', `More than ${MAX_CAPABILITIES} SMIMECapabilities.`);
  return items.map((c) => {
    const f = c.fields('SMIMECapability');
    const id = readOid(f.expect(Tag.OID, 'capabilityID'));
    const p = f.peek() ? f.next('parameters') : undefined;
    f.end();
    return p ? { id, parameters: p.bytes } : { id };
  });
}

export function encodeSmimeCapabilities(caps: readonly SmimeCapability[]): Buffer {
  return sequence(...caps.map((c) => (c.parameters ? sequence(oid(c.id), c.parameters) : sequence(oid(c.id)))));
}
