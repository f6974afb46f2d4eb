/**
 * Mutation fuzzing of the message layer: parseEntity, inspectMessage,
 * verifyMessage and decryptMessage over whole S/MIME messages from signMessage and
 * encryptMessage, mutated both as bytes (BER inside base64 is mostly destroyed that
 * way) and as text (lines, headers, boundaries, line endings).
 *
 * Oracle:
 * - every failure is a typed KakitomeError; a DECRYPT_FAILED is the one DecryptionError;
 * - a verdict that calls the message signed ('trusted' / 'valid-untrusted') carries
 *   the original body: mutations may only have touched what is outside the signature
 *   and does not change meaning (unsigned outer headers, preamble, base64 line layout);
 * - an authenticated decryption carries the original body.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestPki } from '../helpers/pki.ts';
import { signMessage } from '../../src/smime/sign-message.ts';
import { encryptMessage } from '../../src/smime/encrypt-message.ts';
import { verifyMessage } from '../../src/smime/verify-message.ts';
import { decryptMessage } from '../../src/smime/decrypt-message.ts';
import { inspectMessage } from '../../src/smime/inspect-message.ts';
import { parseEntity } from '../../src/mime/parse-entity.ts';
import { walkEntities, getHeaderValue } from '../../src/mime/entity.ts';
import { decodeHeaderText } from '../../src/mime/decode-header-text.ts';
import { parseAddresses } from '../../src/mime/parse-addresses.ts';
import { decodeBody } from '../../src/mime/decode-body.ts';
import { decodeText } from '../../src/mime/decode-text.ts';
import { createSignerValidator } from '../../src/pki/create-signer-validator.ts';
import { UnauthenticatedContentError, DecryptionError } from '../../src/errors.ts';
import type { MessageVerdict } from '../../src/smime/verdict.ts';
import { fuzz, iterations, mutate, mutateText, seed, timeoutFor, DECRYPTION_MESSAGE, REFUSAL_MESSAGE, type Mutation, type Prng, type Seed, REPLAYING } from './fuzz-kit.ts';

const pki = new TestPki('Kakitome Fuzz Message Root');
after(() => pki.cleanup());
const alice = pki.identity('rsa2048', 'alice');
const bob = pki.identity('p256', 'bob');
const carol = pki.identity('ed25519', 'carol');
const validateSigner = createSignerValidator({ anchors: [pki.caCert], revocation: { mode: 'off' }, fetchCaIssuers: false });
const now = new Date();

const plain = Buffer.from(
  [
    'From: Alice <alice@example.com>',
    'To: Bob <bob@example.com>',
    'Subject: =?UTF-8?B?6KaL56mN5pu4?=',
    'Date: Mon, 23 Nov 2026 10:00:00 +0900',
    'Message-ID: <fuzz@example.com>',
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="b1"',
    '',
    '--b1',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: quoted-printable',
    '',
    'Pay 100 yen to Alice =E2=80=94 today.',
    '--b1',
    'Content-Type: application/octet-stream; name="a.bin"',
    'Content-Transfer-Encoding: base64',
    '',
    Buffer.from(Array.from({ length: 90 }, (_, i) => i)).toString('base64'),
    '--b1--',
    '',
  ].join('\r\n'),
);

const signer = (id: typeof alice) => ({ certificate: id.cert, key: id.key });

/** openssl cms -stream with S/MIME output: indefinite-length BER inside base64, its own MIME layout. */
function opensslMessage(args: string[]): Buffer {
  writeFileSync(join(pki.dir, 'plain.eml'), plain);
  execFileSync('openssl', ['cms', ...args, '-stream', '-in', 'plain.eml', '-out', 'out.eml'], { cwd: pki.dir, stdio: 'ignore' });
  return readFileSync(join(pki.dir, 'out.eml'));
}
const signedSeeds: Seed[] = [
  seed('multipart-signed-rsa', signMessage(plain, { signers: [signer(alice)], now })),
  seed('openssl-signed', Buffer.concat([Buffer.from('From: Alice <alice@example.com>\r\n'), opensslMessage(['-sign', '-signer', alice.certPath, '-inkey', alice.keyPath, '-md', 'sha256', '-crlfeol'])])),
  seed('opaque-signed-ed25519', signMessage(Buffer.from(plain.toString('latin1').replace('Alice <alice@', 'Carol <carol@'), 'latin1'), { signers: [signer(carol)], opaque: true, headerProtection: false, now })),
];
const encryptedSeeds: (Seed & { id: typeof alice })[] = [
  { ...seed('gcm-rsa', encryptMessage(plain, { recipients: [{ certificate: alice.cert }], now })), id: alice },
  { ...seed('cbc-ecdh', encryptMessage(plain, { recipients: [{ certificate: bob.cert }], contentEncryption: 'aes-128-cbc', headerProtection: false, now })), id: bob },
  { ...seed('openssl-cbc-rsa', opensslMessage(['-encrypt', '-aes-256-cbc', '-recip', alice.certPath])), id: alice },
  { ...seed('triple-wrap-chacha', encryptMessage(plain, { recipients: [{ certificate: bob.cert }], contentEncryption: 'chacha20-poly1305', sign: { signers: [signer(alice)] }, tripleWrap: true, now })), id: bob },
  { ...seed('signed-then-gcm', encryptMessage(plain, { recipients: [{ certificate: bob.cert }], sign: { signers: [signer(alice)] }, now })), id: bob },
];
const all: Seed[] = [...signedSeeds, ...encryptedSeeds];

/** The body of a message (after the header section). */
function bodyOf(msg: Buffer): Buffer {
  const i = msg.indexOf('\r\n\r\n');
  return i < 0 ? Buffer.alloc(0) : msg.subarray(i + 4);
}

const originals = new Map<string, MessageVerdict>();
test('seeds verify and decrypt', async () => {
  for (const s of signedSeeds) {
    const v = await verifyMessage(s.bytes, { validateSigner, now });
    assert.equal(v.status, 'trusted', `${s.name}: ${v.summary}`);
    originals.set(s.name, v);
  }
  for (const s of encryptedSeeds) {
    // The unsigned CBC seeds open only when unauthenticated content is allowed (EFAIL).
    const { verdict } = await decryptMessage(s.bytes, { keys: [{ key: s.id.key, certificate: s.id.cert }], validateSigner, now, allowUnauthenticated: true });
    originals.set(s.name, verdict);
  }
});

/** Half byte-level, half text-level mutations. */
const mixed = (r: Prng, s: Seed, others: readonly Seed[]): Mutation => (r.chance(0.5) ? mutateText(r, s, others) : mutate(r, s, others));

test('parseEntity and inspectMessage fail only with typed errors', { timeout: timeoutFor(1500) }, async () => {
  await fuzz('parse-inspect', all, iterations(1500), (m) => {
    // Everything a reader of the parsed tree calls: header decoding, addresses, bodies, text.
    for (const e of walkEntities(parseEntity(m.bytes))) {
      for (const h of e.headers) {
        const value = getHeaderValue(e, h.name) ?? '';
        decodeHeaderText(value);
        if (/^(from|to|cc|sender|reply-to)$/i.test(h.name)) parseAddresses(value);
      }
      if (e.children.length === 0) {
        decodeBody(e);
        if (e.contentType.type === 'text') decodeText(e);
      }
    }
    inspectMessage(m.bytes);
  }, undefined, mixed);
});

test('verifyMessage: typed errors only; a signed verdict always carries the original body', { timeout: timeoutFor(1500, 10) }, async () => {
  let signed = 0;
  const outcomes = await fuzz('verify-message', signedSeeds, iterations(1500), async (m, s) => {
    const v = await verifyMessage(m.bytes, { validateSigner, now });
    if (v.status === 'trusted' || v.status === 'valid-untrusted') {
      signed++;
      assert.ok(v.signers.length > 0 && v.signers.every((x) => x.status === 'valid'), `${s.name}: ${m.what}: ${v.status} with a failing signer`);
      assert.deepEqual(bodyOf(v.output), bodyOf(originals.get(s.name)!.output), `${s.name}: ${m.what}: ${v.status} with another body`);
    }
  }, undefined, mixed);
  assert.ok(REPLAYING || signed > 0 && outcomes.size > 1, `explores: ${signed} signed, ${[...outcomes]}`);
});

test('decryptMessage: typed errors only, one DecryptionError and one UNAUTH_ENC refusal, authenticated output is the original, unauthenticated output only when allowed', { timeout: timeoutFor(1500, 10) }, async () => {
  await fuzz('decrypt-message', encryptedSeeds, iterations(1500), async (m, base, r) => {
    const s = base as (typeof encryptedSeeds)[number];
    const allowUnauthenticated = r.chance(0.5);
    const { message, verdict } = await decryptMessage(m.bytes, { keys: [{ key: s.id.key, certificate: s.id.cert }], validateSigner, now, allowUnauthenticated });
    const what = `${s.name}: ${m.what}${allowUnauthenticated ? ' (unauthenticated allowed)' : ''}`;
    if (verdict.status === 'invalid') assert.equal(message.length, 0, `${what}: a failing signature, yet the message was released`);
    else if (verdict.encryption?.authenticated) {
      assert.deepEqual(bodyOf(message), bodyOf(originals.get(s.name)!.output), `${what}: authenticated decryption with another body`);
    }
    if (verdict.encryption?.authenticated === false) {
      assert.ok(allowUnauthenticated || verdict.encryption.authenticatedBy === 'signature', `${what}: CBC content released without a trusted signature`);
      assert.ok(verdict.encryption.authenticatedBy !== 'none' || verdict.warnings.some((w) => /UNAUTH_ENC/.test(w)), `${what}: unauthenticated release not flagged`);
    }
  }, (e, m, s) => {
    if (e.code === 'DECRYPT_FAILED') {
      assert.ok(e instanceof DecryptionError, `${s.name}: ${m.what}: DECRYPT_FAILED that is not a DecryptionError`);
      assert.equal(e.message, DECRYPTION_MESSAGE);
    }
    if (e.code === 'UNAUTH_ENC') {
      assert.ok(e instanceof UnauthenticatedContentError, `${s.name}: ${m.what}: UNAUTH_ENC that is not the one refusal`);
      assert.equal(e.message, REFUSAL_MESSAGE);
    }
  }, mixed);
});
