/**
 * Crafted inputs against the decryptor: every cryptographic failure must be the
 * same DecryptionError; public problems get their own codes.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { constants, createCipheriv, publicEncrypt, randomBytes } from 'node:crypto';
import { TestPki } from '../helpers/pki.ts';
import { sequence, integer, setOf, oid, implicit, octetString, explicit, NULL, retag, tlv } from '../../src/asn1/der.ts';
import { OID } from '../../src/asn1/oids.ts';
import { DecryptionError, isKakitomeError, type ErrorCode } from '../../src/errors.ts';
import { encodeContentInfo } from '../../src/cms/content-info.ts';
import { encodeAttribute } from '../../src/cms/attributes.ts';
import { encodeIdentifier, identifierFor } from '../../src/cms/identifier.ts';
import { encodeAlgorithmIdentifier } from '../../src/cms/algorithm-identifier.ts';
import { encryptData, buildRecipientInfos } from '../../src/cms/enveloped-data/encrypt.ts';
import { decryptData, type DecryptKey } from '../../src/cms/enveloped-data/decrypt.ts';
import { parseEnvelopeFromContentInfo } from '../../src/cms/enveloped-data/parse.ts';
import type { Certificate } from '../../src/x509/certificate.ts';

const pki = new TestPki();
after(() => pki.cleanup());
const rsa = pki.identity('rsa2048');
const rsaKeys: DecryptKey[] = [{ key: rsa.key, certificate: rsa.cert }];
const ec = pki.identity('p256');
const ecKeys: DecryptKey[] = [{ key: ec.key, certificate: ec.cert }];
const plaintext = Buffer.from('attack at dawn, or at least before the deadline\r\n');

// ------------------------------------------------------------ crafting helpers

function gcmAlg(nonce: Uint8Array, icv?: number, name: 'aes128_GCM' | 'aes256_GCM' = 'aes256_GCM'): Buffer {
  return encodeAlgorithmIdentifier(OID[name], icv === undefined ? sequence(octetString(nonce)) : sequence(octetString(nonce), integer(icv)));
}

function cbcAlg(iv: Uint8Array, o = OID.aes256_CBC): Buffer {
  return encodeAlgorithmIdentifier(o, octetString(iv));
}

interface Craft {
  ris: Buffer[];
  alg: Buffer;
  ciphertext?: Uint8Array;
  contentType?: string;
  /** AuthEnvelopedData when a mac is given. */
  mac?: Uint8Array;
  authAttrs?: Buffer;
  version?: number;
}

function craft(c: Craft): Buffer {
  const eci = sequence(oid(c.contentType ?? OID.data), c.alg, ...(c.ciphertext ? [implicit(0, false, c.ciphertext)] : []));
  if (c.mac) {
    const body = sequence(integer(c.version ?? 0), setOf(c.ris), eci, ...(c.authAttrs ? [retag(c.authAttrs, 0xa1)] : []), octetString(c.mac));
    return encodeContentInfo(OID.authEnvelopedData, body);
  }
  return encodeContentInfo(OID.envelopedData, sequence(integer(c.version ?? 2), setOf(c.ris), eci));
}

function gcmSeal(key: Buffer, nonce: Buffer, data: Uint8Array, aad?: Uint8Array, tagLength = 16): { ct: Buffer; tag: Buffer } {
  const c = createCipheriv(key.length === 16 ? 'aes-128-gcm' : 'aes-256-gcm', key, nonce, { authTagLength: tagLength });
  if (aad) c.setAAD(aad);
  const ct = Buffer.concat([c.update(data), c.final()]);
  return { ct, tag: c.getAuthTag() };
}

function cbcSeal(key: Buffer, iv: Buffer, data: Uint8Array, cipher = 'aes-256-cbc', pad = true): Buffer {
  const c = createCipheriv(cipher, key, iv);
  c.setAutoPadding(pad);
  return Buffer.concat([c.update(data), c.final()]);
}

/** A valid AES-256-GCM AuthEnvelopedData for `ris`, sealed with `cek`. */
function gcmEnvelope(cek: Buffer, ris: Buffer[]): Buffer {
  const nonce = randomBytes(12);
  const { ct, tag } = gcmSeal(cek, nonce, plaintext);
  return craft({ ris, alg: gcmAlg(nonce, 16), ciphertext: ct, mac: tag });
}

/** KeyTransRecipientInfo with a raw encryptedKey and algorithm. */
function ktri(cert: Certificate, alg: Buffer, encryptedKey: Uint8Array): Buffer {
  return sequence(integer(0), encodeIdentifier(identifierFor(cert)), alg, octetString(encryptedKey));
}

const PKCS1 = encodeAlgorithmIdentifier(OID.rsaEncryption, NULL);

function oaepAlg(hash: string | undefined, mgfHash: string | undefined, label?: Uint8Array, pSource: string = OID.pSpecified): Buffer {
  const parts: Buffer[] = [];
  if (hash) parts.push(explicit(0, encodeAlgorithmIdentifier(hash)));
  if (mgfHash) parts.push(explicit(1, encodeAlgorithmIdentifier(OID.mgf1, encodeAlgorithmIdentifier(mgfHash))));
  if (label) parts.push(explicit(2, encodeAlgorithmIdentifier(pSource, octetString(label))));
  return encodeAlgorithmIdentifier(OID.rsaesOaep, sequence(...parts));
}

/** Flips one bit of `part`, which must be a view into `whole` (our parser is zero-copy). */
function tamper(whole: Buffer, part: Uint8Array, at = -1): Buffer {
  const out = Buffer.from(whole);
  const off = part.byteOffset - whole.byteOffset + (at < 0 ? part.length + at : at);
  out[off]! ^= 0x01;
  return out;
}

function failures(cases: [string, () => unknown][]): void {
  const messages = new Set<string>();
  for (const [what, fn] of cases) {
    assert.throws(fn, (e: unknown) => {
      assert.ok(e instanceof DecryptionError, `${what}: ${String(e)}`);
      assert.equal(e.code, 'DECRYPT_FAILED', what);
      messages.add(e.message);
      return true;
    }, what);
  }
  assert.equal(messages.size, 1, 'every failure has the same message');
}

function code(fn: () => unknown, expected: ErrorCode, what: string = expected): void {
  assert.throws(fn, (e: unknown) => isKakitomeError(e, expected) || assert.fail(`${what}: got ${String(e)}`));
}

// ------------------------------------------------------------------- tests

test('one indistinguishable DecryptionError for every cryptographic failure', () => {
  const cek = randomBytes(32);
  const good = gcmEnvelope(cek, buildRecipientInfos(cek, [{ certificate: rsa.cert }]));
  assert.deepEqual(decryptData(good, { keys: rsaKeys }).content, plaintext);
  const parsed = parseEnvelopeFromContentInfo(good);
  const other = pki.identity('rsa2048', 'other-rsa');
  const k = rsa.cert.publicKey;
  const modLen = 256;

  // RSA PKCS#1 v1.5 block with bad padding (no zero separator), encrypted raw.
  const badBlock = Buffer.concat([Buffer.of(0, 2), Buffer.alloc(modLen - 2, 0x5a)]);
  const badPkcs1 = publicEncrypt({ key: k, padding: constants.RSA_NO_PADDING }, badBlock);
  // Random raw block as OAEP ciphertext: OAEP decoding fails.
  const randomBlock = Buffer.concat([Buffer.of(0), randomBytes(modLen - 1)]);
  const badOaep = publicEncrypt({ key: k, padding: constants.RSA_NO_PADDING }, randomBlock);
  const oaepSha256 = oaepAlg(OID.sha256, OID.sha256);

  // ECDH recipient with a tampered wrapped key: RFC 3394 integrity check fails.
  const ecEnv = encryptData(plaintext, { recipients: [{ certificate: ec.cert }] });
  const ecParsed = parseEnvelopeFromContentInfo(ecEnv);
  const kari = ecParsed.recipients[0]!;
  assert.equal(kari.kind, 'kari');
  const kem = pki.identity('mlkem768');
  const kemEnv = encryptData(plaintext, { recipients: [{ certificate: kem.cert }] });
  const kemParsed = parseEnvelopeFromContentInfo(kemEnv);
  const kemri = kemParsed.recipients[0]!;
  assert.equal(kemri.kind, 'kemri');

  // CBC with a final block whose padding byte is 0 (invalid PKCS#7).
  const iv = randomBytes(16);
  const badPad = cbcSeal(cek, iv, Buffer.alloc(32, 0), 'aes-256-cbc', false);
  const cbcRis = buildRecipientInfos(cek, [{ certificate: rsa.cert }]);
  const cbcGood = cbcSeal(cek, iv, plaintext);

  // Wrong CEK length: 20 bytes transported for an AES-256 content key.
  const shortCek = randomBytes(20);
  const nonce = randomBytes(12);
  const sealed = gcmSeal(cek, nonce, plaintext);

  failures([
    ['wrong key (no certificate)', () => decryptData(good, { keys: [{ key: other.key }] })],
    ['key that does not belong to the certificate', () => decryptData(good, { keys: [{ key: other.key, certificate: rsa.cert }] })],
    ['bad RSA PKCS#1 v1.5 padding', () => decryptData(gcmEnvelope(cek, [ktri(rsa.cert, PKCS1, badPkcs1)]), { keys: rsaKeys })],
    ['bad RSA PKCS#1 v1.5 padding, no certificate', () => decryptData(gcmEnvelope(cek, [ktri(rsa.cert, PKCS1, badPkcs1)]), { keys: [{ key: rsa.key }] })],
    ['tampered RSA v1.5 encryptedKey', () => decryptData(tamper(good, (parsed.recipients[0] as { encryptedKey: Uint8Array }).encryptedKey, 100), { keys: rsaKeys })],
    ['bad OAEP', () => decryptData(gcmEnvelope(cek, [ktri(rsa.cert, oaepSha256, badOaep)]), { keys: rsaKeys })],
    ['key-wrap integrity failure (ECDH)', () => decryptData(tamper(ecEnv, kari.kind === 'kari' ? kari.recipientEncryptedKeys[0]!.encryptedKey : new Uint8Array()), { keys: ecKeys })],
    ['key-wrap integrity failure (ML-KEM)', () => decryptData(tamper(kemEnv, kemri.kind === 'kemri' ? kemri.encryptedKey : new Uint8Array()), { keys: [{ key: kem.key, certificate: kem.cert }] })],
    ['tampered ML-KEM ciphertext', () => decryptData(tamper(kemEnv, kemri.kind === 'kemri' ? kemri.kemct : new Uint8Array(), 7), { keys: [{ key: kem.key, certificate: kem.cert }] })],
    ['CBC padding error', () => decryptData(craft({ ris: cbcRis, alg: cbcAlg(iv), ciphertext: badPad }), { keys: rsaKeys })],
    ['CBC truncated ciphertext', () => decryptData(craft({ ris: cbcRis, alg: cbcAlg(iv), ciphertext: cbcGood.subarray(0, cbcGood.length - 1) }), { keys: rsaKeys })],
    ['CBC empty ciphertext', () => decryptData(craft({ ris: cbcRis, alg: cbcAlg(iv), ciphertext: Buffer.alloc(0) }), { keys: rsaKeys })],
    ['GCM tag failure', () => decryptData(tamper(good, parseEnvelopeFromContentInfo(good).mac!), { keys: rsaKeys })],
    ['GCM ciphertext bit flip', () => decryptData(tamper(good, parseEnvelopeFromContentInfo(good).encryptedContent!.value, 3), { keys: rsaKeys })],
    ['GCM truncated ciphertext', () => decryptData(craft({ ris: cbcRis, alg: gcmAlg(nonce, 16), ciphertext: sealed.ct.subarray(1), mac: sealed.tag }), { keys: rsaKeys })],
    ['mac shorter than the ICV length', () => decryptData(craft({ ris: cbcRis, alg: gcmAlg(nonce, 16), ciphertext: sealed.ct, mac: sealed.tag.subarray(0, 12) }), { keys: rsaKeys })],
    ['ICV length 12 but a 16-byte mac', () => decryptData(craft({ ris: cbcRis, alg: gcmAlg(nonce), ciphertext: sealed.ct, mac: sealed.tag }), { keys: rsaKeys })],
    ['wrong CEK length (RSA v1.5)', () => decryptData(gcmEnvelope(cek, buildRecipientInfos(shortCek, [{ certificate: rsa.cert }])), { keys: rsaKeys })],
    ['wrong CEK length (ECDH, 16 bytes for AES-256)', () => decryptData(gcmEnvelope(cek, buildRecipientInfos(randomBytes(16), [{ certificate: ec.cert }])), { keys: ecKeys })],
    ['missing encryptedContent', () => decryptData(craft({ ris: cbcRis, alg: gcmAlg(nonce, 16), mac: sealed.tag }), { keys: rsaKeys })],
  ]);
});

test('ChaCha20-Poly1305: tag failure is the same DecryptionError', () => {
  const der = encryptData(plaintext, { recipients: [{ certificate: ec.cert }], contentEncryption: 'chacha20-poly1305' });
  const p = parseEnvelopeFromContentInfo(der);
  failures([
    ['poly1305 tag', () => decryptData(tamper(der, p.mac!), { keys: ecKeys })],
    ['chacha ciphertext', () => decryptData(tamper(der, p.encryptedContent!.value, 0), { keys: ecKeys })],
  ]);
});

test('authenticated attributes are the AAD: changing them fails the tag; required for non-data content', () => {
  const cek = randomBytes(32);
  const ris = buildRecipientInfos(cek, [{ certificate: rsa.cert }]);
  const nonce = randomBytes(12);
  const attrs = setOf([encodeAttribute(OID.contentType, oid(OID.data))]);
  const { ct, tag } = gcmSeal(cek, nonce, plaintext, attrs);
  assert.deepEqual(decryptData(craft({ ris, alg: gcmAlg(nonce, 16), ciphertext: ct, mac: tag, authAttrs: attrs }), { keys: rsaKeys }).content, plaintext);
  // Same attributes plus one more: a different AAD.
  const more = setOf([encodeAttribute(OID.contentType, oid(OID.data)), encodeAttribute(OID.signingTime, tlv(0x17, Buffer.from('260101000000Z')))]);
  failures([['AAD changed', () => decryptData(craft({ ris, alg: gcmAlg(nonce, 16), ciphertext: ct, mac: tag, authAttrs: more }), { keys: rsaKeys })]]);
  // Attributes dropped: the AEAD check fails too.
  failures([['AAD dropped', () => decryptData(craft({ ris, alg: gcmAlg(nonce, 16), ciphertext: ct, mac: tag }), { keys: rsaKeys })]]);
  // RFC 5083 2.1: non-data content without authAttrs; content-type attribute contradicting the ECI.
  const plain = gcmSeal(cek, nonce, plaintext);
  code(() => decryptData(craft({ ris, alg: gcmAlg(nonce, 16), ciphertext: plain.ct, mac: plain.tag, contentType: OID.signedData }), { keys: rsaKeys }), 'ATTR_INVALID');
  code(() => decryptData(craft({ ris, alg: gcmAlg(nonce, 16), ciphertext: ct, mac: tag, authAttrs: attrs, contentType: OID.signedData }), { keys: rsaKeys }), 'ATTR_INVALID');
});

test('GCM and ChaCha20 parameters: nonce and ICV lengths are checked before any key is used', () => {
  const cek = randomBytes(32);
  const ris = buildRecipientInfos(cek, [{ certificate: rsa.cert }]);
  const t = Buffer.alloc(16);
  code(() => decryptData(craft({ ris, alg: gcmAlg(randomBytes(8), 16), ciphertext: t, mac: t }), { keys: rsaKeys }), 'UNSUPPORTED_ALG', 'nonce 8');
  code(() => decryptData(craft({ ris, alg: gcmAlg(Buffer.alloc(0), 16), ciphertext: t, mac: t }), { keys: rsaKeys }), 'UNSUPPORTED_ALG', 'nonce 0');
  code(() => decryptData(craft({ ris, alg: gcmAlg(randomBytes(12), 11), ciphertext: t, mac: t }), { keys: rsaKeys }), 'MALFORMED', 'icv 11');
  code(() => decryptData(craft({ ris, alg: gcmAlg(randomBytes(12), 17), ciphertext: t, mac: t }), { keys: rsaKeys }), 'MALFORMED', 'icv 17');
  code(() => decryptData(craft({ ris, alg: encodeAlgorithmIdentifier(OID.chacha20Poly1305, octetString(randomBytes(8))), ciphertext: t, mac: t }), { keys: rsaKeys }), 'MALFORMED', 'chacha nonce 8');
  code(() => decryptData(craft({ ris, alg: encodeAlgorithmIdentifier(OID.aes256_GCM), ciphertext: t, mac: t }), { keys: rsaKeys }), 'MALFORMED', 'gcm without parameters');
});

test('one reading per input: AEAD only in AuthEnvelopedData, CBC only in EnvelopedData', () => {
  const cek = randomBytes(32);
  const ris = buildRecipientInfos(cek, [{ certificate: rsa.cert }]);
  const iv = randomBytes(16);
  const ct = cbcSeal(cek, iv, plaintext);
  code(() => decryptData(craft({ ris, alg: cbcAlg(iv), ciphertext: ct, mac: Buffer.alloc(16) }), { keys: rsaKeys }), 'MALFORMED', 'AuthEnvelopedData with CBC');
  const nonce = randomBytes(12);
  const g = gcmSeal(cek, nonce, plaintext);
  code(() => decryptData(craft({ ris, alg: gcmAlg(nonce, 16), ciphertext: Buffer.concat([g.ct, g.tag]) }), { keys: rsaKeys }), 'MALFORMED', 'EnvelopedData with GCM');
});

test('3DES decrypts with a warning; RC2 and DES are refused with UNSUPPORTED_ALG', () => {
  const cek = randomBytes(24);
  const ris = buildRecipientInfos(cek, [{ certificate: rsa.cert }]);
  const iv = randomBytes(8);
  const ct = cbcSeal(cek, iv, plaintext, 'des-ede3-cbc');
  const r = decryptData(craft({ ris, alg: encodeAlgorithmIdentifier(OID.des_ede3_cbc, octetString(iv)), ciphertext: ct, version: 0 }), { keys: rsaKeys });
  assert.deepEqual(r.content, plaintext);
  assert.equal(r.contentEncryption, 'des-ede3-cbc');
  assert.equal(r.authenticated, false);
  assert.ok(r.warnings.some((w) => /3DES/.test(w)));
  const rc2 = encodeAlgorithmIdentifier(OID.rc2_cbc, sequence(integer(58), octetString(iv)));
  code(() => decryptData(craft({ ris, alg: rc2, ciphertext: ct }), { keys: rsaKeys }), 'UNSUPPORTED_ALG', 'RC2');
  code(() => decryptData(craft({ ris, alg: encodeAlgorithmIdentifier('1.3.14.3.2.7', octetString(iv)), ciphertext: ct }), { keys: rsaKeys }), 'UNSUPPORTED_ALG', 'DES');
});

test('OAEP: SHA-1 defaults read with a warning; MGF1 hash mismatch refused; a label is used, and a wrong one is the one DecryptionError', () => {
  const cek = randomBytes(32);
  const k = rsa.cert.publicKey;
  const sha1Key = publicEncrypt({ key: k, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, cek);
  for (const alg of [encodeAlgorithmIdentifier(OID.rsaesOaep), encodeAlgorithmIdentifier(OID.rsaesOaep, sequence()), oaepAlg(OID.sha1, OID.sha1)]) {
    const r = decryptData(gcmEnvelope(cek, [ktri(rsa.cert, alg, sha1Key)]), { keys: rsaKeys });
    assert.deepEqual(r.content, plaintext);
    assert.equal(r.recipient.keyManagement, 'rsa-oaep');
    assert.ok(r.warnings.some((w) => /SHA-1/.test(w)));
  }
  const sha384Key = publicEncrypt({ key: k, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha384' }, cek);
  const r384 = decryptData(gcmEnvelope(cek, [ktri(rsa.cert, oaepAlg(OID.sha384, OID.sha384), sha384Key)]), { keys: rsaKeys });
  assert.deepEqual(r384.warnings, []);
  code(() => decryptData(gcmEnvelope(cek, [ktri(rsa.cert, oaepAlg(OID.sha256, OID.sha1), sha1Key)]), { keys: rsaKeys }), 'UNSUPPORTED_ALG', 'mgf mismatch');
  // Changed on purpose (issue 12 item 7): a non-empty label was UNSUPPORTED_ALG; OpenSSL writes and reads it.
  const labelled = publicEncrypt({ key: k, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256', oaepLabel: Buffer.from('label') }, cek);
  assert.deepEqual(decryptData(gcmEnvelope(cek, [ktri(rsa.cert, oaepAlg(OID.sha256, OID.sha256, Buffer.from('label')), labelled)]), { keys: rsaKeys }).content, plaintext);
  // The label the envelope names is the one the padding is checked against: another one, or none, fails as every decryption failure does.
  for (const named of [Buffer.from('lab3l'), undefined]) {
    assert.throws(() => decryptData(gcmEnvelope(cek, [ktri(rsa.cert, oaepAlg(OID.sha256, OID.sha256, named), labelled)]), { keys: rsaKeys }), (e: unknown) => e instanceof DecryptionError, `label ${String(named)}`);
  }
  code(() => decryptData(gcmEnvelope(cek, [ktri(rsa.cert, oaepAlg(OID.sha256, OID.sha256, Buffer.from('label'), '1.2.3.4'), labelled)]), { keys: rsaKeys }), 'UNSUPPORTED_ALG', 'pSource other than id-pSpecified');
  // An explicitly empty label is the default and fine.
  const sha256Key = publicEncrypt({ key: k, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, cek);
  assert.deepEqual(decryptData(gcmEnvelope(cek, [ktri(rsa.cert, oaepAlg(OID.sha256, OID.sha256, Buffer.alloc(0)), sha256Key)]), { keys: rsaKeys }).content, plaintext);
});

test('ECDH: originator key off the curve, small-order X25519 point; cofactorDH accepted on P-curves', () => {
  const der = encryptData(plaintext, { recipients: [{ certificate: ec.cert }] });
  const p = parseEnvelopeFromContentInfo(der);
  const kari = p.recipients[0]!;
  assert.ok(kari.kind === 'kari');
  const x = pki.identity('x25519');
  const xd = encryptData(plaintext, { recipients: [{ certificate: x.cert }] });
  const xp = parseEnvelopeFromContentInfo(xd).recipients[0]!;
  assert.ok(xp.kind === 'kari');
  const zeroPoint = Buffer.from(xd);
  zeroPoint.fill(0, xp.originatorKey.byteOffset - xd.byteOffset, xp.originatorKey.byteOffset - xd.byteOffset + 32);
  failures([
    ['point off the curve', () => decryptData(tamper(der, kari.originatorKey), { keys: ecKeys })],
    ['X25519 all-zero shared secret', () => decryptData(zeroPoint, { keys: [{ key: x.key, certificate: x.cert }] })],
  ]);
  // stdDH-sha256kdf 1.3.132.1.11.1 -> cofactorDH-sha256kdf 1.3.132.1.14.1 (same length): equal for cofactor-1 curves.
  const schemeOid = kari.keyEncryptionAlgorithm.der;
  const idx = Buffer.from(schemeOid).indexOf(Buffer.from([0x2b, 0x81, 0x04, 0x01, 0x0b, 0x01]));
  assert.ok(idx > 0);
  const cof = Buffer.from(der);
  cof[schemeOid.byteOffset - der.byteOffset + idx + 4] = 0x0e;
  assert.deepEqual(decryptData(cof, { keys: ecKeys }).content, plaintext);
  // An originator key from another curve (P-384 point for a P-256 recipient) never agrees.
  const p384 = pki.identity('p384');
  const other = parseEnvelopeFromContentInfo(encryptData(plaintext, { recipients: [{ certificate: p384.cert }] })).recipients[0]!;
  assert.ok(other.kind === 'kari');
  assert.equal(other.originatorKey.length, 97);
});

test('limits: recipients, CMS size; an envelope with unsupported recipient kinds still opens', () => {
  const ids = Array.from({ length: 5 }, (_, i) => pki.identity('p256', `lim-${i}`));
  const der = encryptData(plaintext, { recipients: ids.map((i) => ({ certificate: i.cert })) });
  code(() => decryptData(der, { keys: ecKeys, limits: { maxRecipients: 4 } }), 'LIMIT', 'maxRecipients');
  code(() => decryptData(der, { keys: ecKeys, limits: { maxCmsBytes: der.length - 1 } }), 'LIMIT', 'maxCmsBytes');
  // Trial decryption (no certificate): 5 candidates over a limit of 4, refused before any key is used.
  code(() => decryptData(der, { keys: [{ key: ids[0]!.key }], limits: { maxKeyAttempts: 4 } }), 'LIMIT', 'maxKeyAttempts');
  assert.deepEqual(decryptData(der, { keys: [{ key: ids[4]!.key }], limits: { maxKeyAttempts: 5 } }).content, plaintext);
  assert.deepEqual(decryptData(der, { keys: [{ key: ids[4]!.key, certificate: ids[4]!.cert }], limits: { maxKeyAttempts: 1 } }).content, plaintext);
  // A pwri ([3]) beside our KTRI: skipped, not an error (RFC 5652 6.2.4 recipients we cannot use).
  const cek = randomBytes(32);
  const pwri = implicit(3, true, integer(0), encodeAlgorithmIdentifier(OID.aes256_wrap), octetString(randomBytes(40)));
  const mixed = gcmEnvelope(cek, [...buildRecipientInfos(cek, [{ certificate: rsa.cert }]), pwri]);
  const r = decryptData(mixed, { keys: rsaKeys });
  assert.equal(r.recipients, 2);
  assert.deepEqual(r.content, plaintext);
});

// ----------------------------------------------------------- BER input

function indef(tag: number, ...children: Uint8Array[]): Buffer {
  return Buffer.concat([Buffer.of(tag, 0x80), ...children, Buffer.of(0, 0)]);
}

function segments(data: Uint8Array, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < data.length; i += size) out.push(octetString(data.subarray(i, i + size)));
  return out;
}

test('BER: indefinite lengths and constructed OCTET STRING encryptedContent (as NSS, gpgsm, BC write)', () => {
  const cek = randomBytes(32);
  const ris = buildRecipientInfos(cek, [{ certificate: rsa.cert }, { certificate: ec.cert }]);
  const nonce = randomBytes(12);
  const { ct, tag } = gcmSeal(cek, nonce, plaintext);
  const eci = indef(0x30, oid(OID.data), gcmAlg(nonce, 16), indef(0xa0, ...segments(ct, 7)));
  const auth = indef(0x30, oid(OID.authEnvelopedData), indef(0xa0, indef(0x30, integer(0), indef(0x31, ...ris), eci, octetString(tag))));
  assert.deepEqual(decryptData(auth, { keys: rsaKeys }).content, plaintext);
  assert.deepEqual(decryptData(auth, { keys: ecKeys }).content, plaintext);

  const iv = randomBytes(16);
  const cbc = cbcSeal(cek, iv, plaintext);
  // Nested constructed segments, definite lengths (node-forge style) inside indefinite ones.
  const nested = tlv(0xa0, tlv(0x24, ...segments(cbc.subarray(0, 20), 5)), octetString(cbc.subarray(20)));
  const env = indef(0x30, oid(OID.envelopedData), indef(0xa0, indef(0x30, integer(2), setOf(ris), indef(0x30, oid(OID.data), cbcAlg(iv), nested))));
  const r = decryptData(env, { keys: ecKeys });
  assert.deepEqual(r.content, plaintext);
  assert.equal(r.authenticated, false);
  // A constructed encryptedContent with a non-OCTET STRING segment is malformed.
  const bad = indef(0x30, oid(OID.envelopedData), indef(0xa0, indef(0x30, integer(2), setOf(ris), indef(0x30, oid(OID.data), cbcAlg(iv), tlv(0xa0, tlv(0x02, Buffer.of(1)))))));
  code(() => decryptData(bad, { keys: ecKeys }), 'MALFORMED');
});

test('malformed structures are MALFORMED, not decryption failures', () => {
  const der = encryptData(plaintext, { recipients: [{ certificate: rsa.cert }] });
  code(() => decryptData(Buffer.concat([der, Buffer.of(0)]), { keys: rsaKeys }), 'MALFORMED', 'trailing data');
  code(() => decryptData(der.subarray(0, der.length - 3), { keys: rsaKeys }), 'MALFORMED', 'truncated');
  const cek = randomBytes(32);
  code(() => decryptData(craft({ ris: [], alg: gcmAlg(randomBytes(12), 16), ciphertext: Buffer.alloc(1), mac: Buffer.alloc(16) }), { keys: rsaKeys }), 'MALFORMED', 'no recipients');
  code(() => decryptData(craft({ ris: buildRecipientInfos(cek, [{ certificate: rsa.cert }]), alg: gcmAlg(randomBytes(12), 16), ciphertext: Buffer.alloc(1), mac: Buffer.alloc(16), version: 2 }), { keys: rsaKeys }), 'MALFORMED', 'AuthEnvelopedData version 2');
  // KTRI version 2 with an issuerAndSerialNumber rid.
  const ek = publicEncrypt({ key: rsa.cert.publicKey, padding: constants.RSA_PKCS1_PADDING }, cek);
  const v2 = sequence(integer(2), encodeIdentifier(identifierFor(rsa.cert)), PKCS1, octetString(ek));
  code(() => decryptData(gcmEnvelope(cek, [v2]), { keys: rsaKeys }), 'MALFORMED', 'ktri version');
});
