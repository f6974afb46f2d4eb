import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { TestPki } from '../helpers/pki.ts';
import { encryptMessageStream } from '../../src/smime/encrypt-message-stream.ts';
import { decryptMessage } from '../../src/smime/decrypt-message.ts';
import { parseEntity } from '../../src/mime/parse-entity.ts';
import { decodeBody } from '../../src/mime/decode-body.ts';
import { decodeText } from '../../src/mime/decode-text.ts';
import { decodeHeaderText } from '../../src/mime/decode-header-text.ts';
import { getHeaderValue } from '../../src/mime/entity.ts';
import { isKakitomeError } from '../../src/errors.ts';
import { createSignerValidator } from '../../src/pki/create-signer-validator.ts';

const pki = new TestPki();
after(() => pki.cleanup());
const alice = pki.identity('rsa2048', 'alice');
const bob = pki.identity('p256', 'bob');

async function run(input: Buffer, chunk: number, options: Parameters<typeof encryptMessageStream>[2]): Promise<Buffer> {
  const out = new PassThrough();
  const parts: Buffer[] = [];
  out.on('data', (c: Buffer) => parts.push(c));
  const pieces = function* () {
    for (let i = 0; i < input.length; i += chunk) yield input.subarray(i, i + chunk);
  };
  await encryptMessageStream(Readable.from(pieces()), out, options);
  return Buffer.concat(parts);
}

const binary = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 17 + (i >> 9)) & 0xff));
const msg = Buffer.concat([
  Buffer.from('From: alice@example.com\r\nTo: bob@example.com\r\nSubject: =?UTF-8?B?5qmf5a+G?=\r\nKeywords: secret\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n極秘の資料\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n'),
  binary,
  Buffer.from('\r\n--b--\r\n'),
]);

test('streamed encryption (GCM to ECDH and RSA recipients): hidden Subject, decrypted by us and by openssl', async () => {
  const enc = await run(msg, 4093, { recipients: [{ certificate: bob.cert }, { certificate: alice.cert, rsaPadding: 'oaep' }], hideSubject: true });
  const outer = parseEntity(enc);
  assert.equal(getHeaderValue(outer, 'subject'), '[...]');
  assert.equal(getHeaderValue(outer, 'keywords'), undefined);
  assert.equal(outer.contentType.params['smime-type'], 'authEnveloped-data');
  const { message, verdict } = await decryptMessage(enc, { keys: [{ key: bob.key, certificate: bob.cert }] });
  assert.equal(verdict.encryption?.authenticated, true);
  assert.deepEqual(verdict.protectedHeaders?.mismatches, []);
  const m = parseEntity(message);
  assert.equal(getHeaderValue(m, 'subject'), '=?UTF-8?B?5qmf5a+G?=');
  assert.equal(getHeaderValue(m, 'keywords'), 'secret');
  assert.equal(decodeText(m.children[0]!), 'Subject: 機密\r\n\r\n極秘の資料');
  assert.deepEqual(decodeBody(m.children[1]!), binary);
  const path = join(pki.dir, 'enc.eml');
  writeFileSync(path, enc);
  const inner = execFileSync('openssl', ['cms', '-decrypt', '-in', path, '-recip', alice.certPath, '-inkey', alice.keyPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  assert.equal(parseEntity(inner).contentType.params.hp, 'cipher');
});

test('streamed CBC encryption decrypts (when unauthenticated content is allowed) with the UNAUTH_ENC flag', async () => {
  const enc = await run(msg, 65536, { recipients: [{ certificate: alice.cert }], contentEncryption: 'aes-128-cbc' });
  const { verdict } = await decryptMessage(enc, { keys: [{ key: alice.key, certificate: alice.cert }], allowUnauthenticated: true });
  assert.equal(verdict.code, 'UNAUTH_ENC');
});

// Changed on purpose: encryptMessageStream used to refuse `sign`; it now streams sign-then-encrypt.
test('streamed sign-then-encrypt: multipart/signed inside the envelope, verified after decryption by us and by openssl; opaque inner signing and triple wrap are refused', async () => {
  const validateSigner = createSignerValidator({ anchors: [pki.caCert], revocation: { mode: 'off' }, fetchCaIssuers: false });
  const sign = { signers: [{ certificate: alice.cert, key: alice.key }] };
  for (const [chunk, contentEncryption] of [[4093, 'aes-256-gcm'], [65536, 'aes-256-cbc']] as const) {
    const enc = await run(msg, chunk, { recipients: [{ certificate: bob.cert }, { certificate: alice.cert, rsaPadding: 'oaep' }], contentEncryption, sign });
    const { message, verdict } = await decryptMessage(enc, { keys: [{ key: bob.key, certificate: bob.cert }], validateSigner });
    assert.equal(verdict.status, 'trusted', verdict.summary);
    assert.deepEqual(verdict.layers.map((l) => l.kind), [contentEncryption === 'aes-256-gcm' ? 'auth-enveloped' : 'enveloped', 'signed']);
    assert.deepEqual(decodeBody(parseEntity(message).children[1]!), binary);
    const path = join(pki.dir, `sign-enc-${chunk}.eml`);
    writeFileSync(path, enc);
    const inner = execFileSync('openssl', ['cms', '-decrypt', '-in', path, '-recip', alice.certPath, '-inkey', alice.keyPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    const innerPath = join(pki.dir, `sign-enc-${chunk}.inner.eml`);
    writeFileSync(innerPath, inner);
    execFileSync('openssl', ['smime', '-verify', '-in', innerPath, '-CAfile', pki.caPath, '-out', '/dev/null'], { stdio: ['ignore', 'pipe', 'pipe'] });
  }
  await assert.rejects(run(msg, 65536, { recipients: [{ certificate: alice.cert }], sign: { ...sign, opaque: true } }), (e) => isKakitomeError(e, 'INVALID_ARGUMENT'));
  await assert.rejects(run(msg, 65536, { recipients: [{ certificate: alice.cert }], sign, tripleWrap: true } as never), (e) => isKakitomeError(e, 'INVALID_ARGUMENT'));
});

test('streamed encryption at any chunk size: raw UTF-8 header fields are protected as encoded words, 8-bit leaves become base64', async () => {
  const lf = Buffer.from('From: alice@example.com\nTo: bob@example.com\nSubject: Grüße\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nÜberall\n');
  for (const chunk of [1, 5, 4096]) {
    // Changed on purpose (issue 12 item 2): the outer Subject stays readable by default.
    const enc = await run(lf, chunk, { recipients: [{ certificate: bob.cert }] });
    assert.equal(decodeHeaderText(getHeaderValue(parseEntity(enc), 'subject')!), 'Grüße');
    const { message, verdict } = await decryptMessage(enc, { keys: [{ key: bob.key, certificate: bob.cert }] });
    assert.deepEqual(verdict.protectedHeaders?.mismatches, []);
    assert.ok(verdict.protectedHeaders?.headers.some(([n, v]) => n.toLowerCase() === 'subject' && v === 'Grüße'));
    const m = parseEntity(message);
    assert.equal(m.transferEncoding, 'base64');
    assert.equal(decodeBody(m).toString('utf8'), 'Überall\r\n');
  }
});
