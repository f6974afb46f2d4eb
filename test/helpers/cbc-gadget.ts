/**
 * The EFAIL attacker's tools (Poddebniak et al., USENIX Security 2018), for tests
 * that prove CBC malleability cannot reach a reader: open an S/MIME enveloped-data
 * message into its parts, splice ciphertext blocks, seal it again. No key involved.
 * Used by test/security/03-efail-cbc.test.ts and the gateway's tests.
 */
import assert from 'node:assert/strict';
import { encodeContentInfo, parseContentInfo } from '../../src/cms/content-info.ts';
import { Tag, readOctets, type Tlv } from '../../src/asn1/ber.ts';
import { implicit, octetString, sequence, setOf } from '../../src/asn1/der.ts';
import { OID } from '../../src/asn1/oids.ts';

/** Every S/MIME entity starts so: the known plaintext block the gadget needs. */
export const KNOWN_FIRST_BLOCK = Buffer.from('Content-Type: te', 'latin1');

export const xor = (...bs: Buffer[]): Buffer => Buffer.from(bs[0]!.map((_, i) => bs.reduce((x, b) => x ^ b[i]!, 0)));

/** The parts of an S/MIME enveloped-data message an attacker rewrites (no key involved). */
export interface Envelope {
  head: string;
  eol: string;
  version: Uint8Array;
  recipientInfos: Tlv[];
  contentType: Uint8Array;
  algorithm: Uint8Array;
  iv: Buffer;
  ciphertext: Buffer;
}

export function openEnvelope(message: Buffer): Envelope {
  const text = message.toString('latin1');
  const eol = text.includes('\r\n') ? '\r\n' : '\n';
  const split = text.indexOf(eol + eol);
  const der = Buffer.from(text.slice(split + 2 * eol.length), 'base64');
  const ci = parseContentInfo(der);
  assert.equal(ci.contentType, OID.envelopedData, 'a CBC message is EnvelopedData');
  const f = ci.content.children();
  const [version, ris, eci] = [f[0]!, f[1]!, f.at(-1)!];
  assert.equal(ris.tag, Tag.SET);
  const [contentType, algorithm, encrypted] = eci.children() as [Tlv, Tlv, Tlv];
  const [algOid, ivTlv] = algorithm.children() as [Tlv, Tlv];
  return {
    head: text.slice(0, split + 2 * eol.length),
    eol,
    version: version.bytes,
    recipientInfos: ris.children(),
    contentType: contentType.bytes,
    algorithm: algOid.bytes,
    iv: Buffer.from(ivTlv.value),
    ciphertext: Buffer.from(encrypted.constructed ? readOctets(encrypted) : encrypted.value),
  };
}

export function sealEnvelope(e: Envelope, change: Partial<Pick<Envelope, 'iv' | 'ciphertext' | 'recipientInfos'>> & { rawRecipientInfos?: Buffer[] } = {}): Buffer {
  const ris = change.rawRecipientInfos ?? (change.recipientInfos ?? e.recipientInfos).map((t) => Buffer.from(t.bytes));
  const eci = sequence(e.contentType, sequence(e.algorithm, octetString(change.iv ?? e.iv)), implicit(0, false, change.ciphertext ?? e.ciphertext));
  const der = encodeContentInfo(OID.envelopedData, sequence(e.version, setOf(ris), eci));
  return Buffer.from(e.head + der.toString('base64').replace(/.{76}/g, `$&${e.eol}`) + e.eol, 'latin1');
}

/**
 * The EFAIL CBC gadget, spliced before the last two blocks: ... C[n-2] | IV^P1^X | C[1] | C[n-1] | C[n]
 * decrypts to ... P[n-2] | garbage | X | garbage | P[n]: attacker-chosen X, and the original (valid) padding.
 */
export function cbcGadget(e: Envelope, known: Buffer, chosen: Buffer): Buffer {
  const block = (i: number) => e.ciphertext.subarray(16 * (i - 1), 16 * i);
  const n = e.ciphertext.length / 16;
  assert.ok(Number.isInteger(n) && n >= 3, 'at least three CBC blocks');
  return sealEnvelope(e, { ciphertext: Buffer.concat([e.ciphertext.subarray(0, 16 * (n - 2)), xor(e.iv, known, chosen), block(1), block(n - 1), block(n)]) });
}

