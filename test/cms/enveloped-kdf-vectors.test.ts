/**
 * Key agreement checked against computations written independently in this file
 * (raw node:crypto calls and hand-encoded DER), for what no peer here can check:
 * X25519/X448 with HKDF (RFC 8418) and the ukm (entityUInfo) path of RFC 5753.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, createDecipheriv, createHash, createPublicKey, diffieHellman, generateKeyPairSync, hkdfSync, randomBytes } from 'node:crypto';
import { TestPki } from '../helpers/pki.ts';
import { encryptData } from '../../src/cms/enveloped-data/encrypt.ts';
import { decryptData } from '../../src/cms/enveloped-data/decrypt.ts';
import { parseEnvelopeFromContentInfo } from '../../src/cms/enveloped-data/parse.ts';
import { OID } from '../../src/asn1/oids.ts';
import { encodeContentInfo } from '../../src/cms/content-info.ts';

const pki = new TestPki();
after(() => pki.cleanup());
const WRAP_IV = Buffer.from('a6a6a6a6a6a6a6a6', 'hex');
const h = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const AES256_WRAP = h('300b060960864801650304012d');
const AES128_WRAP = h('300b06096086480165030401 05');

test('X25519 and X448 (RFC 8418): KEK = HKDF(Z, info = ECC-CMS-SharedInfo) recomputed by hand', () => {
  for (const [kind, rawLen, spkiPrefix] of [['x25519', 32, '302a300506032b656e032100'], ['x448', 56, '3042300506032b656f033900']] as const) {
    const id = pki.identity(kind);
    const body = Buffer.from(`independent ${kind}`);
    const der = encryptData(body, { recipients: [{ certificate: id.cert }], contentEncryption: 'aes-256-gcm' });
    const env = parseEnvelopeFromContentInfo(der);
    const kari = env.recipients[0]!;
    if (kari.kind !== 'kari') return assert.fail('not a kari');
    assert.equal(kari.keyEncryptionAlgorithm.oid, OID.dhSinglePass_stdDH_hkdf_sha256);
    assert.equal(kari.originatorKey.length, rawLen);
    const z = diffieHellman({ privateKey: id.key, publicKey: createPublicKey({ key: Buffer.concat([h(spkiPrefix), kari.originatorKey]), format: 'der', type: 'spki' }) });
    // ECC-CMS-SharedInfo { keyInfo aes256-wrap, suppPubInfo [2] { OCTET STRING 00000100 } }
    const info = Buffer.concat([h('3015'), AES256_WRAP, h('a2060404 00000100')]);
    const kek = Buffer.from(hkdfSync('sha256', z, Buffer.alloc(0), info, 32));
    const d = createDecipheriv('id-aes256-wrap', kek, WRAP_IV);
    const cek = Buffer.concat([d.update(kari.recipientEncryptedKeys[0]!.encryptedKey), d.final()]);
    assert.equal(cek.length, 32);
    const g = createDecipheriv('aes-256-gcm', cek, env.contentEncryption.iv, { authTagLength: 16 });
    g.setAuthTag(env.mac!);
    assert.deepEqual(Buffer.concat([g.update(env.encryptedContent!.value), g.final()]), body);
  }
});

test('ECDH P-256 with ukm (RFC 5753 entityUInfo) and the SHA-1 X9.63 KDF, built by hand, opens', () => {
  const id = pki.identity('p256');
  const eph = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const z = diffieHellman({ privateKey: eph.privateKey, publicKey: id.cert.publicKey });
  const ukm = randomBytes(64);
  // SharedInfo { keyInfo aes128-wrap, entityUInfo [0] { OCTET STRING ukm }, suppPubInfo [2] { OCTET STRING 00000080 } }
  const entity = Buffer.concat([h('a042 0440'), ukm]);
  const inner = Buffer.concat([AES128_WRAP, entity, h('a2060404 00000080')]);
  const info = Buffer.concat([Buffer.of(0x30, inner.length), inner]);
  // X9.63: SHA-1(Z || 00000001 || SharedInfo), first 16 bytes.
  const kek = createHash('sha1').update(z).update(h('00000001')).update(info).digest().subarray(0, 16);
  const cek = randomBytes(16);
  const w = createCipheriv('id-aes128-wrap', kek, WRAP_IV);
  const ek = Buffer.concat([w.update(cek), w.final()]);
  const point = eph.publicKey.export({ format: 'der', type: 'spki' }).subarray(-65);
  const iv = randomBytes(16);
  const c = createCipheriv('aes-128-cbc', cek, iv);
  const body = Buffer.from('ukm path');
  const ct = Buffer.concat([c.update(body), c.final()]);
  const tl = (tag: number, ...parts: Buffer[]) => {
    const v = Buffer.concat(parts);
    assert.ok(v.length < 0x10000);
    return Buffer.concat([Buffer.of(tag), v.length < 0x80 ? Buffer.of(v.length) : v.length < 0x100 ? Buffer.of(0x81, v.length) : Buffer.of(0x82, v.length >> 8, v.length & 0xff), v]);
  };
  const issuerSerial = tl(0x30, Buffer.from(id.cert.issuer), tl(0x02, Buffer.from(id.cert.serial)));
  const kari = tl(0xa1,
    h('020103'),
    tl(0xa0, tl(0xa1, h('300906072a8648ce3d0201'), tl(0x03, Buffer.of(0), point))),
    tl(0xa1, tl(0x04, ukm)),
    // dhSinglePass-stdDH-sha1kdf-scheme (1.3.133.16.840.63.0.2) with the wrap algorithm as parameters
    tl(0x30, h('06092b81051086483f0002'), AES128_WRAP),
    tl(0x30, tl(0x30, issuerSerial, tl(0x04, ek))));
  const eci = tl(0x30, h('06092a864886f70d010701'), tl(0x30, h('0609608648016503040102'), tl(0x04, iv)), tl(0x80, ct));
  const der = encodeContentInfo(OID.envelopedData, tl(0x30, h('020102'), tl(0x31, kari), eci));
  const env = parseEnvelopeFromContentInfo(der);
  const r = env.recipients[0]!;
  assert.ok(r.kind === 'kari' && r.ukm?.length === 64);
  assert.equal(r.kind === 'kari' && r.keyEncryptionAlgorithm.oid, OID.dhSinglePass_stdDH_sha1kdf);
  const out = decryptData(der, { keys: [{ key: id.key, certificate: id.cert }] });
  assert.deepEqual(out.content, body);
  assert.ok(out.warnings.some((w) => /SHA-1 KDF/.test(w)));
});
