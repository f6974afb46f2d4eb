import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { TestPki } from '../helpers/pki.ts';
import { decode } from '../../src/asn1/ber.ts';
import { sequence, oid, octetString, implicit, integer, NULL, tlv } from '../../src/asn1/der.ts';
import { OID } from '../../src/asn1/oids.ts';
import {
  DEFAULT_CAPABILITIES,
  encodeSmimeCapabilities,
  parseSmimeCapabilities,
  encodeEncryptionKeyPreference,
  parseEncryptionKeyPreference,
} from '../../src/cms/capabilities.ts';
import { isKakitomeError } from '../../src/errors.ts';

const pki = new TestPki();
after(() => pki.cleanup());

test('SMIMECapabilities round-trip keeps order and parameters; the default prefers AEAD', () => {
  const parsed = parseSmimeCapabilities(decode(encodeSmimeCapabilities(DEFAULT_CAPABILITIES), { der: true }));
  assert.equal(parsed.length, DEFAULT_CAPABILITIES.length);
  assert.deepEqual(parsed.slice(0, 3).map((c) => c.capabilityId), [OID.aes256_GCM, OID.aes128_GCM, OID.chacha20Poly1305]);
  const oaep = parsed.find((c) => c.capabilityId === OID.rsaesOaep);
  assert.ok(oaep?.parameters);
  // RSAES-OAEP-params announcing SHA-256 (RFC 4055 4.1): [0] hashFunc contains id-sha256.
  assert.ok(Buffer.from(oaep.parameters).includes(oid(OID.sha256)));
  const custom = [{ capabilityId: '1.2.3.4', parameters: NULL }, { capabilityId: OID.aes128_CBC }];
  const again = parseSmimeCapabilities(decode(encodeSmimeCapabilities(custom), { der: true }));
  assert.equal(again[0]!.capabilityId, '1.2.3.4');
  assert.deepEqual(Buffer.from(again[0]!.parameters!), NULL);
  assert.equal(again[1]!.parameters, undefined);
});

test('malformed SMIMECapabilities are ATTR_INVALID; too many are LIMIT', () => {
  const bad = [octetString(Buffer.from('x')), sequence(octetString(Buffer.from('x'))), sequence(sequence(integer(1))), sequence(sequence(oid(OID.aes128_GCM), NULL, NULL))];
  for (const b of bad) assert.throws(() => parseSmimeCapabilities(decode(b)), (e) => isKakitomeError(e, 'ATTR_INVALID'));
  const many = sequence(...Array.from({ length: 300 }, () => sequence(oid(OID.aes128_GCM))));
  assert.throws(() => parseSmimeCapabilities(decode(many)), (e) => isKakitomeError(e, 'LIMIT'));
});

test('SMIMEEncryptionKeyPreference: issuerAndSerialNumber round-trips, the key-identifier choices parse, others are ATTR_INVALID', () => {
  const id = pki.identity('p256');
  const ekp = parseEncryptionKeyPreference(decode(encodeEncryptionKeyPreference(id.cert), { der: true }));
  assert.equal(ekp.kind, 'issuerAndSerialNumber');
  assert.ok(ekp.kind === 'issuerAndSerialNumber' && id.cert.matchesIssuerSerial(ekp.issuer, ekp.serial));
  const ski = id.cert.subjectKeyIdentifier!;
  const alt = parseEncryptionKeyPreference(decode(implicit(2, false, ski)));
  assert.deepEqual(alt.kind === 'subjectKeyIdentifier' && Buffer.from(alt.keyId), Buffer.from(ski));
  const rkid = parseEncryptionKeyPreference(decode(implicit(1, true, octetString(ski))));
  assert.deepEqual(rkid.kind === 'subjectKeyIdentifier' && Buffer.from(rkid.keyId), Buffer.from(ski));
  for (const b of [tlv(0x83, Buffer.of(1)), implicit(2, false, Buffer.alloc(0)), implicit(0, true, integer(1)), implicit(1, true)]) {
    assert.throws(() => parseEncryptionKeyPreference(decode(b)), (e) => isKakitomeError(e, 'ATTR_INVALID'));
  }
});
