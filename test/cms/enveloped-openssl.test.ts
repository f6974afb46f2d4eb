/**
 * Smoke interop with the system `openssl cms` (OpenSSL 3.0): it reads what we
 * write and we read what it writes with its defaults (OAEP and ECDH KDF with
 * SHA-1). The full peer matrix lives in test/interop/.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestPki, type Identity } from '../helpers/pki.ts';
import { encryptData, type ContentEncryptionName, type RecipientOptions } from '../../src/cms/enveloped-data/encrypt.ts';
import { decryptData } from '../../src/cms/enveloped-data/decrypt.ts';
import { parseEnvelopeFromContentInfo } from '../../src/cms/enveloped-data/parse.ts';
import { OID } from '../../src/asn1/oids.ts';

const pki = new TestPki();
after(() => pki.cleanup());
const rsa = pki.identity('rsa2048');
const p256 = pki.identity('p256');
const p384 = pki.identity('p384');
const body = Buffer.from('Content-Type: text/plain\r\n\r\nInterop with OpenSSL 3.0\r\n');

function opensslDecrypt(der: Buffer, id: Identity, name: string): Buffer {
  const file = join(pki.dir, `${name}.der`);
  writeFileSync(file, der);
  return execFileSync('openssl', ['cms', '-decrypt', '-binary', '-inform', 'DER', '-in', file, '-recip', id.certPath, '-inkey', id.keyPath], { stdio: ['ignore', 'pipe', 'pipe'] });
}

function opensslEncrypt(id: Identity, name: string, args: string[]): Buffer {
  const input = join(pki.dir, `${name}.in`);
  const out = join(pki.dir, `${name}.der`);
  writeFileSync(input, body);
  // -keyopt applies to the preceding -recip, so the options come after it.
  execFileSync('openssl', ['cms', '-encrypt', '-binary', '-in', input, '-outform', 'DER', '-out', out, '-recip', id.certPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  return readFileSync(out);
}

test('openssl cms -decrypt reads our RSA v1.5, RSA-OAEP, ECDH and AES-GCM/CBC envelopes', () => {
  const cases: [string, Identity, Partial<RecipientOptions>, ContentEncryptionName][] = [
    ['v15-gcm', rsa, {}, 'aes-256-gcm'],
    ['v15-cbc', rsa, {}, 'aes-128-cbc'],
    ['oaep-gcm', rsa, { rsaPadding: 'oaep' }, 'aes-128-gcm'],
    ['oaep-cbc', rsa, { rsaPadding: 'oaep', identifier: 'subjectKeyIdentifier' }, 'aes-256-cbc'],
    ['ecdh-p256-gcm', p256, {}, 'aes-256-gcm'],
    ['ecdh-p384-cbc', p384, { kdfHash: 'sha384', identifier: 'subjectKeyIdentifier' }, 'aes-192-cbc'],
  ];
  for (const [name, id, opts, contentEncryption] of cases) {
    const der = encryptData(body, { recipients: [{ certificate: id.cert, ...opts }], contentEncryption });
    assert.deepEqual(opensslDecrypt(der, id, `ours-${name}`), body, name);
  }
});

test('we read openssl cms -encrypt output with its defaults (v1.5, OAEP SHA-1, ECDH SHA-1 KDF)', () => {
  const v15 = decryptData(opensslEncrypt(rsa, 'v15', ['-aes-256-cbc']), { keys: [{ key: rsa.key, certificate: rsa.cert }] });
  assert.deepEqual(v15.content, body);
  assert.equal(v15.recipient.keyManagement, 'rsa-pkcs1');
  assert.equal(v15.authenticated, false);

  const oaep = decryptData(opensslEncrypt(rsa, 'oaep', ['-aes-128-cbc', '-keyopt', 'rsa_padding_mode:oaep']), { keys: [{ key: rsa.key, certificate: rsa.cert }] });
  assert.deepEqual(oaep.content, body);
  assert.equal(oaep.recipient.keyManagement, 'rsa-oaep');
  assert.ok(oaep.warnings.some((w) => /SHA-1/.test(w)));

  const oaep256 = decryptData(opensslEncrypt(rsa, 'oaep256', ['-aes-256-gcm', '-keyopt', 'rsa_padding_mode:oaep', '-keyopt', 'rsa_oaep_md:sha256']), { keys: [{ key: rsa.key }] });
  assert.deepEqual(oaep256.content, body);
  assert.deepEqual(oaep256.warnings, []);
  assert.equal(oaep256.authenticated, true);

  const ecdh = opensslEncrypt(p256, 'ecdh', ['-aes-128-cbc']);
  const kari = parseEnvelopeFromContentInfo(ecdh).recipients[0]!;
  assert.equal(kari.kind === 'kari' && kari.keyEncryptionAlgorithm.oid, OID.dhSinglePass_stdDH_sha1kdf);
  const e = decryptData(ecdh, { keys: [{ key: p256.key, certificate: p256.cert }] });
  assert.deepEqual(e.content, body);
  assert.equal(e.recipient.keyManagement, 'ecdh');
  assert.ok(e.warnings.some((w) => /SHA-1/.test(w)));

  const ecdhGcm = decryptData(opensslEncrypt(p384, 'ecdh-gcm', ['-aes-256-gcm', '-keyopt', 'ecdh_kdf_md:sha256']), { keys: [{ key: p384.key }] });
  assert.deepEqual(ecdhGcm.content, body);
  assert.equal(ecdhGcm.contentEncryption, 'aes-256-gcm');
});

test('we read openssl cms -encrypt output with an RSAES-OAEP label (-keyopt rsa_oaep_label), SHA-1 and SHA-256', () => {
  // The premise: OpenSSL writes the label into pSourceFunc (id-pSpecified), and reads it back itself.
  const labelled = opensslEncrypt(rsa, 'oaep-label', ['-aes-256-gcm', '-keyopt', 'rsa_padding_mode:oaep', '-keyopt', 'rsa_oaep_md:sha256', '-keyopt', `rsa_oaep_label:${Buffer.from('kakitome').toString('hex')}`]);
  assert.ok(labelled.includes(Buffer.from('kakitome')), 'the label is in the RecipientInfo');
  assert.deepEqual(opensslDecrypt(labelled, rsa, 'oaep-label-back'), body);
  const r = decryptData(labelled, { keys: [{ key: rsa.key, certificate: rsa.cert }] });
  assert.deepEqual(r.content, body);
  assert.equal(r.recipient.keyManagement, 'rsa-oaep');
  const sha1 = decryptData(opensslEncrypt(rsa, 'oaep-label-sha1', ['-aes-128-gcm', '-keyopt', 'rsa_padding_mode:oaep', '-keyopt', 'rsa_oaep_label:00ff10']), { keys: [{ key: rsa.key }] });
  assert.deepEqual(sha1.content, body);
  assert.ok(sha1.warnings.some((w) => /SHA-1/.test(w)));
});
