/**
 * Whole-message round trips with the system OpenSSL (3.0): `openssl smime` writes
 * the legacy x-pkcs7 types and protocol; `openssl cms` writes the RFC 8551 ones and
 * AuthEnvelopedData. Both directions, multipart/signed and opaque, enveloped and
 * authEnveloped, RSA and ECDH recipients, LF-only files.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestPki } from '../helpers/pki.ts';
import { signMessage } from '../../src/smime/sign-message.ts';
import { verifyMessage } from '../../src/smime/verify-message.ts';
import { encryptMessage } from '../../src/smime/encrypt-message.ts';
import { decryptMessage } from '../../src/smime/decrypt-message.ts';
import { inspectMessage } from '../../src/smime/inspect-message.ts';
import { createSignerValidator } from '../../src/pki/create-signer-validator.ts';
import { parseEntity } from '../../src/mime/parse-entity.ts';
import { decodeText } from '../../src/mime/decode-text.ts';
import { decodeBody } from '../../src/mime/decode-body.ts';
import { getHeaderValue } from '../../src/mime/entity.ts';
import { decodeHeaderText } from '../../src/mime/decode-header-text.ts';

const pki = new TestPki();
after(() => pki.cleanup());
const alice = pki.identity('rsa2048', 'alice');
const bob = pki.identity('p256', 'bob');
const validateSigner = createSignerValidator({ anchors: [pki.caCert], revocation: { mode: 'off' }, fetchCaIssuers: false });
let n = 0;
const file = (data: Uint8Array | string): string => {
  const p = join(pki.dir, `m${n++}.eml`);
  writeFileSync(p, data);
  return p;
};
const openssl = (...args: string[]): Buffer => execFileSync('openssl', args, { stdio: ['ignore', 'pipe', 'pipe'] });

const message = Buffer.from(
  [
    'From: =?UTF-8?B?44Ki44Oq44K5?= <alice@example.com>',
    'To: bob@example.com',
    'Subject: =?ISO-2022-JP?B?GyRCOzNFRBsoQg==?= report',
    'Date: Mon, 23 Nov 2026 10:00:00 +0900',
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="zz"',
    '',
    '--zz',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 8bit',
    '',
    '添付をご確認ください。',
    '--zz',
    'Content-Type: application/octet-stream; name="data.bin"',
    'Content-Disposition: attachment; filename="data.bin"',
    'Content-Transfer-Encoding: base64',
    '',
    Buffer.from(Array.from({ length: 600 }, (_, i) => (i * 13) & 0xff)).toString('base64'),
    '--zz--',
    '',
  ].join('\r\n'),
);

test('openssl smime -verify accepts our multipart/signed and opaque messages (RSA and ECDSA)', () => {
  for (const id of [alice, bob]) {
    for (const opaque of [false, true]) {
      const signed = signMessage(message, { signers: [{ certificate: id.cert, key: id.key }], opaque });
      const out = openssl('smime', '-verify', '-in', file(signed), '-CAfile', pki.caPath);
      assert.match(out.toString('utf8'), /hp=clear/);
      assert.match(out.toString('utf8'), /=E6=B7=BB=E4=BB=98/, 'the 8-bit text was signed as quoted-printable');
      openssl('cms', '-verify', '-in', file(signed), '-CAfile', pki.caPath, '-out', '/dev/null');
    }
  }
});

test('openssl smime -sign output (x-pkcs7 types) verifies with us, detached and opaque, also as an LF-only file', async () => {
  const content = file('Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=E3=81=93=E3=82=93=E3=81=AB=E3=81=A1=E3=81=AF\r\n');
  for (const opaque of [false, true]) {
    const out = openssl('smime', '-sign', '-in', content, '-signer', alice.certPath, '-inkey', alice.keyPath, '-from', 'alice@example.com', '-to', 'bob@example.com', '-subject', 'from openssl', ...(opaque ? ['-nodetach'] : []));
    assert.match(out.toString(), opaque ? /application\/x-pkcs7-mime/ : /protocol="application\/x-pkcs7-signature"/);
    const v = await verifyMessage(out, { validateSigner });
    assert.equal(v.status, 'trusted', v.summary);
    assert.equal(decodeText(parseEntity(v.output)), 'こんにちは\r\n');
    const lf = Buffer.from(out.toString('latin1').replaceAll('\r\n', '\n'), 'latin1');
    const vlf = await verifyMessage(lf, { validateSigner });
    assert.equal(vlf.status, 'trusted', vlf.summary);
    assert.ok(vlf.warnings.some((w) => /bare LF/.test(w)));
  }
});

test('openssl cms -sign with RSA-PSS and SHA-384 verifies with us; a modified byte does not', async () => {
  const content = file('Content-Type: text/plain\r\n\r\nPSS signed\r\n');
  const out = openssl('cms', '-sign', '-in', content, '-signer', alice.certPath, '-inkey', alice.keyPath, '-md', 'sha384', '-keyopt', 'rsa_padding_mode:pss', '-keyopt', 'rsa_pss_saltlen:48');
  const headed = Buffer.concat([Buffer.from('From: alice@example.com\r\n'), out]);
  const v = await verifyMessage(headed, { validateSigner });
  assert.equal(v.status, 'trusted', v.summary);
  assert.equal(v.signers[0]!.algorithms.digest, 'sha384');
  const bad = Buffer.from(headed.toString('latin1').replace('PSS signed', 'PSS signeD'), 'latin1');
  assert.equal((await verifyMessage(bad, { validateSigner })).status, 'invalid');
});

test('openssl smime -encrypt (AES-256-CBC, RSA) and openssl cms -encrypt (AES-GCM, ECDH) decrypt with us', async () => {
  const content = file('Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n機密情報\r\n');
  const cbc = openssl('smime', '-encrypt', '-aes256', '-in', content, '-from', 'alice@example.com', '-subject', 'secret', alice.certPath);
  // Unsigned CBC: opened only when unauthenticated content is allowed (docs/security.md section 3).
  const d1 = await decryptMessage(cbc, { keys: [{ key: alice.key, certificate: alice.cert }], allowUnauthenticated: true });
  assert.equal(d1.verdict.encryption?.contentEncryption, 'aes-256-cbc');
  assert.equal(d1.verdict.code, 'UNAUTH_ENC');
  assert.equal(decodeText(parseEntity(d1.message)), '機密情報\r\n');
  assert.equal(getHeaderValue(parseEntity(d1.message), 'subject'), 'secret');
  const gcm = openssl('cms', '-encrypt', '-aes-256-gcm', '-in', content, '-recip', bob.certPath, '-keyopt', 'ecdh_kdf_md:sha256');
  const d2 = await decryptMessage(Buffer.concat([Buffer.from('From: alice@example.com\r\n'), gcm]), { keys: [{ key: bob.key, certificate: bob.cert }] });
  assert.equal(d2.verdict.encryption?.authenticated, true);
  assert.equal(d2.verdict.encryption?.keyManagement, 'ecdh');
  assert.equal(d2.verdict.code, undefined);
  assert.equal(decodeText(parseEntity(d2.message)), '機密情報\r\n');
});

test('openssl decrypts our enveloped (CBC, RSA) and authEnveloped (GCM, ECDH) messages, and verifies the signature inside', () => {
  for (const [id, cipher] of [[alice, 'aes-128-cbc'], [bob, 'aes-256-gcm']] as const) {
    const enc = encryptMessage(message, { recipients: [{ certificate: id.cert }], contentEncryption: cipher, sign: { signers: [{ certificate: alice.cert, key: alice.key }] }, hideSubject: true });
    const outer = parseEntity(enc);
    assert.equal(getHeaderValue(outer, 'subject'), '[...]');
    const inner = openssl('cms', '-decrypt', '-in', file(enc), '-recip', id.certPath, '-inkey', id.keyPath);
    const verified = openssl('smime', '-verify', '-in', file(inner), '-CAfile', pki.caPath);
    const payload = parseEntity(verified);
    assert.equal(payload.contentType.params.hp, 'cipher');
    assert.equal(decodeHeaderText(getHeaderValue(payload, 'subject')!), '山田 report');
    assert.equal(getHeaderValue(payload, 'hp-outer'), 'From: =?UTF-8?B?44Ki44Oq44K5?= <alice@example.com>');
    // The legacy display of the hidden Subject leads the main body part (RFC 9788 section 4.5).
    assert.equal(payload.children[0]!.contentType.params['hp-legacy-display'], '1');
    assert.equal(decodeText(payload.children[0]!), 'Subject: 山田 report\r\n\r\n添付をご確認ください。');
    assert.deepEqual(decodeBody(payload.children[1]!), Buffer.from(Array.from({ length: 600 }, (_, i) => (i * 13) & 0xff)));
  }
});

test('certs-only messages are reported as certificates, never as signatures', async () => {
  const p7 = openssl('crl2pkcs7', '-nocrl', '-certfile', alice.certPath, '-outform', 'DER');
  const msg = Buffer.from(`From: alice@example.com\r\nMIME-Version: 1.0\r\nContent-Type: application/pkcs7-mime; smime-type=certs-only; name=smime.p7c\r\nContent-Transfer-Encoding: base64\r\n\r\n${p7.toString('base64')}\r\n`);
  const v = await verifyMessage(msg, { validateSigner });
  assert.equal(v.status, 'unsigned');
  assert.equal(v.layers[0]!.kind, 'certs-only');
  assert.equal(v.signers.length, 0);
  const r = inspectMessage(msg);
  assert.equal(r.tree.smime?.type, 'certs-only');
  assert.deepEqual(r.tree.smime?.certificates?.[0]?.emails, ['alice@example.com']);
});
