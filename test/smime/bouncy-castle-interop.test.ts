/**
 * Whole-message round trips with Bouncy Castle 1.72's S/MIME classes (bcjmail on
 * Jakarta Mail 2.0): its multipart/signed and enveloped messages read by us, ours
 * read by it. The peer program is test/smime/peers/BcSmime.java, compiled once.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestPki } from '../helpers/pki.ts';
import { signMessage } from '../../src/smime/sign-message.ts';
import { verifyMessage } from '../../src/smime/verify-message.ts';
import { encryptMessage } from '../../src/smime/encrypt-message.ts';
import { decryptMessage } from '../../src/smime/decrypt-message.ts';
import { createSignerValidator } from '../../src/pki/create-signer-validator.ts';
import { parseEntity } from '../../src/mime/parse-entity.ts';
import { decodeText } from '../../src/mime/decode-text.ts';

const pki = new TestPki();
after(() => pki.cleanup());
const alice = pki.identity('rsa2048', 'alice');
const validateSigner = createSignerValidator({ anchors: [pki.caCert], revocation: { mode: 'off' }, fetchCaIssuers: false });
// Interop notes: jakarta-mail must precede bcjmail on the class path.
const CP = ['jakarta-mail', 'jakarta-activation', 'bcprov', 'bcpkix', 'bcutil', 'bcjmail'].map((j) => `/usr/share/java/${j}.jar`).join(':');
const classes = join(pki.dir, 'classes');
const bc = (...args: string[]): Buffer => execFileSync('java', ['-cp', `${CP}:${classes}`, 'BcSmime', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
const path = (name: string, data?: Uint8Array): string => {
  const p = join(pki.dir, name);
  if (data) writeFileSync(p, data);
  return p;
};

const message = Buffer.from(
  'From: alice@example.com\r\nTo: bob@example.com\r\nSubject: =?UTF-8?B?44OG44K544OI?=\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nBouncy Castle と相互運用\r\n',
);

before(() => {
  execFileSync('javac', ['-nowarn', '-cp', CP, '-d', classes, join(import.meta.dirname, 'peers', 'BcSmime.java')], { stdio: ['ignore', 'pipe', 'pipe'] });
});

test('Bouncy Castle verifies our multipart/signed and opaque messages', () => {
  for (const opaque of [false, true]) {
    const signed = signMessage(message, { signers: [{ certificate: alice.cert, key: alice.key }], opaque });
    assert.match(bc('verify', path(`ours-${opaque}.eml`, signed)).toString(), /^SIGNER-OK .*alice/m);
  }
});

test('we verify a Bouncy Castle multipart/signed message', async () => {
  bc('sign', alice.certPath, alice.keyPath, path('plain.eml', message), path('bc-signed.eml'));
  const v = await verifyMessage(readFileSync(path('bc-signed.eml')), { validateSigner });
  assert.equal(v.status, 'trusted', v.summary);
  assert.match(decodeText(parseEntity(v.output)), /Bouncy Castle と相互運用/);
});

test('Bouncy Castle decrypts our enveloped-data; we decrypt its RSA-OAEP enveloped-data', async () => {
  const enc = encryptMessage(message, { recipients: [{ certificate: alice.cert, rsaPadding: 'oaep' }], contentEncryption: 'aes-128-cbc' });
  const inner = parseEntity(bc('decrypt', alice.certPath, alice.keyPath, path('ours-enc.eml', enc)));
  assert.equal(inner.contentType.params.hp, 'cipher');
  assert.equal(decodeText(inner), 'Bouncy Castle と相互運用\r\n');

  bc('encrypt', alice.certPath, path('plain2.eml', message), path('bc-enc.eml'));
  // Bouncy Castle's enveloped-data is CBC and unsigned: opened only when unauthenticated content is allowed.
  const { message: out, verdict } = await decryptMessage(readFileSync(path('bc-enc.eml')), { keys: [{ key: alice.key, certificate: alice.cert }], allowUnauthenticated: true });
  assert.equal(verdict.encryption?.keyManagement, 'rsa-oaep');
  assert.equal(verdict.code, 'UNAUTH_ENC');
  assert.match(decodeText(parseEntity(out)), /Bouncy Castle と相互運用/);
});
