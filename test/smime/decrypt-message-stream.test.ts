import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomInt } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import { TestPki } from '../helpers/pki.ts';
import { encryptMessage } from '../../src/smime/encrypt-message.ts';
import { signMessage } from '../../src/smime/sign-message.ts';
import { encryptMessageStream } from '../../src/smime/encrypt-message-stream.ts';
import { decryptMessage } from '../../src/smime/decrypt-message.ts';
import { decryptMessageStream } from '../../src/smime/decrypt-message-stream.ts';
import { readFileChunks } from '../../src/cms/stream/read-file-chunks.ts';
import { createSignerValidator } from '../../src/pki/create-signer-validator.ts';
import { isKakitomeError } from '../../src/errors.ts';
import type { MessageVerdict } from '../../src/smime/verdict.ts';
import type { ContentEncryptionName } from '../../src/cms/enveloped-data/encrypt.ts';

const pki = new TestPki();
after(() => pki.cleanup());
const alice = pki.identity('rsa2048', 'alice');
const bob = pki.identity('p256', 'bob');
const carol = pki.identity('x25519', 'carol');
const aliceKey = [{ key: alice.key, certificate: alice.cert }];
const bobKey = [{ key: bob.key, certificate: bob.cert }];
const validateSigner = createSignerValidator({ anchors: [pki.caCert], revocation: { mode: 'off' }, fetchCaIssuers: false });

const attachment = Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i * 31 + (i >> 7)) & 0xff));
const message = Buffer.concat([
  Buffer.from(
    'From: alice@example.com\r\nTo: bob@example.com\r\nSubject: =?UTF-8?B?5qmf5a+G?=\r\nKeywords: secret\r\nDate: Mon, 23 Nov 2026 14:00:00 +0000\r\nMIME-Version: 1.0\r\n' +
      'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n極秘の資料\r\n--b\r\n' +
      'Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n',
  ),
  Buffer.from(attachment.toString('base64').replace(/.{76}/g, '$&\r\n')),
  Buffer.from('\r\n--b--\r\n'),
]);
const small = Buffer.from('From: alice@example.com\r\nTo: bob@example.com\r\nSubject: lunch\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n昼食は正午です。\r\n');

/** Chunks of random sizes between 1 and `max` bytes (a new size per chunk). */
function* randomChunks(input: Buffer, max: number): Generator<Buffer> {
  for (let i = 0; i < input.length; ) {
    const n = 1 + randomInt(max);
    yield input.subarray(i, i + n);
    i += n;
  }
}

/** Unsigned CBC content is refused unless allowed (docs/security.md section 3): tests of its decryption allow it. */
const ALLOW = { allowUnauthenticated: true };

async function streamDecrypt(input: Buffer, keys: typeof aliceKey, max = 1 << 16, extra: { limits?: object; allowUnauthenticated?: boolean } = {}): Promise<{ verdict: MessageVerdict; output: Buffer; wrote: boolean }> {
  const out = new PassThrough();
  const parts: Buffer[] = [];
  out.on('data', (c: Buffer) => parts.push(c));
  const verdict = await decryptMessageStream(Readable.from(randomChunks(input, max)), { keys, validateSigner, output: out, ...extra });
  return { verdict, output: Buffer.concat(parts), wrote: parts.length > 0 };
}

/** What decryptMessage says, for comparison; the streaming note aside. */
async function reference(input: Buffer, keys: typeof aliceKey, extra: { allowUnauthenticated?: boolean } = {}) {
  const { message, verdict } = await decryptMessage(input, { keys, validateSigner, ...extra });
  return { message, verdict };
}

function sameVerdict(a: MessageVerdict, b: MessageVerdict, what: string): void {
  const strip = (v: MessageVerdict) => ({ ...v, warnings: v.warnings.filter((w) => !w.startsWith('Streaming ')), output: undefined, signers: v.signers.map((s) => ({ ...s, certificate: s.certificate?.fingerprint256, carried: undefined, trust: s.trust?.status })) });
  assert.deepEqual(strip(a), strip(b), what);
}

async function streamEncrypt(input: Buffer, options: Parameters<typeof encryptMessageStream>[2]): Promise<Buffer> {
  const out = new PassThrough();
  const parts: Buffer[] = [];
  out.on('data', (c: Buffer) => parts.push(c));
  await encryptMessageStream(Readable.from(randomChunks(input, 5000)), out, options);
  return Buffer.concat(parts);
}

test('every content cipher and key management: the same message and verdict as decryptMessage', async () => {
  const ciphers: ContentEncryptionName[] = ['aes-128-gcm', 'aes-256-gcm', 'chacha20-poly1305', 'aes-128-cbc', 'aes-256-cbc'];
  const recipients = [
    { id: alice, options: { certificate: alice.cert, rsaPadding: 'pkcs1' as const } },
    { id: alice, options: { certificate: alice.cert, rsaPadding: 'oaep' as const } },
    { id: bob, options: { certificate: bob.cert } },
    { id: carol, options: { certificate: carol.cert } },
  ];
  for (const [i, contentEncryption] of ciphers.entries()) {
    for (const [j, r] of recipients.entries()) {
      // Every cipher with one recipient kind in turn, every recipient kind with GCM.
      if (j !== i % recipients.length && contentEncryption !== 'aes-256-gcm') continue;
      const keys = [{ key: r.id.key, certificate: r.id.cert }];
      // hideSubject (issue 12 item 2 made it opt-in): the outer Subject is "[...]", the real one protected inside.
      const enc = (i + j) % 2 ? encryptMessage(message, { recipients: [r.options], contentEncryption, hideSubject: true }) : await streamEncrypt(message, { recipients: [r.options], contentEncryption, hideSubject: true });
      const what = `${contentEncryption} to ${r.id.kind} ${r.options.rsaPadding ?? ''}`;
      const cbc = contentEncryption.includes('cbc');
      // A maxMessageBytes the message exceeds: only the streaming path can take it.
      const limits = { maxMessageBytes: 100_000 };
      assert.ok(enc.length > 100_000);
      if (cbc) {
        // Unsigned CBC: refused by both paths, nothing written.
        await assert.rejects(reference(enc, keys), (e) => isKakitomeError(e, 'UNAUTH_ENC'), what);
        await assert.rejects(streamDecrypt(enc, keys, 1 << 16, { limits }), (e) => isKakitomeError(e, 'UNAUTH_ENC'), what);
      }
      const ref = await reference(enc, keys, cbc ? ALLOW : {});
      const got = await streamDecrypt(enc, keys, 1 << 16, { limits, ...(cbc ? ALLOW : {}) });
      assert.deepEqual(got.output, ref.message, what);
      sameVerdict(got.verdict, ref.verdict, what);
      assert.equal(got.verdict.encryption?.authenticated, !cbc, what);
      if (cbc) {
        assert.equal(got.verdict.code, 'UNAUTH_ENC', what);
        // Protected header fields are never taken from unauthenticated content: the outer (obscured) Subject stays.
        assert.match(got.output.toString('latin1'), /Subject: \[\.\.\.\]\r\n/, what);
        continue;
      }
      // RFC 9788 hp="cipher": the protected Subject and Keywords are back.
      assert.match(got.output.toString('latin1'), /Subject: =\?UTF-8\?B\?5qmf5a\+G\?=\r\n/, what);
      assert.match(got.output.toString('latin1'), /Keywords: secret\r\n/, what);
    }
  }
});

test('chunk sizes from 1 byte to 1 MiB give the same output', async () => {
  const enc = encryptMessage(message, { recipients: [{ certificate: bob.cert }] });
  const ref = await reference(enc, bobKey);
  for (const max of [1 << 20, 4096, 77]) {
    const got = await streamDecrypt(enc, bobKey, max);
    assert.deepEqual(got.output, ref.message, `chunks up to ${max}`);
  }
  const ones = await decryptMessageStream(Readable.from(randomChunks(encryptMessage(small, { recipients: [{ certificate: bob.cert }] }), 1)), { keys: bobKey });
  assert.equal(ones.status, 'unsigned');
});

test('sign-then-encrypt is verified while streaming; a triple wrap falls back to decryptMessage', async () => {
  const signers = [{ certificate: alice.cert, key: alice.key }];
  for (const contentEncryption of ['aes-256-gcm', 'aes-128-cbc'] as const) {
    const enc = encryptMessage(message, { recipients: [{ certificate: bob.cert }], contentEncryption, sign: { signers } });
    const ref = await reference(enc, bobKey);
    assert.equal(ref.verdict.status, 'trusted');
    const got = await streamDecrypt(enc, bobKey, 10_000);
    assert.deepEqual(got.output, ref.message);
    sameVerdict(got.verdict, ref.verdict, `signed then ${contentEncryption}`);
    assert.deepEqual(got.verdict.layers.map((l) => l.kind), [contentEncryption.includes('gcm') ? 'auth-enveloped' : 'enveloped', 'signed']);
  }
  const triple = encryptMessage(small, { recipients: [{ certificate: bob.cert }], sign: { signers }, tripleWrap: true });
  const ref = await reference(triple, bobKey);
  const got = await streamDecrypt(triple, bobKey, 999);
  assert.deepEqual(got.output, ref.message);
  sameVerdict(got.verdict, ref.verdict, 'triple wrap');
  assert.equal(got.verdict.status, 'trusted');
});

test('a signature inside that does not match is reported as decryptMessage reports it', async () => {
  const signed = signMessage(small, { signers: [{ certificate: alice.cert, key: alice.key }], headerProtection: false });
  const tampered = Buffer.from(signed.toString('latin1').replace('charset=utf-8', 'charset=UTF-8'), 'latin1');
  assert.notDeepEqual(tampered, signed);
  // Some gateways drop the protocol parameter: recognised by the signature part, and flagged.
  const noProtocol = Buffer.from(signed.toString('latin1').replace(/protocol="?application\/pkcs7-signature"?;?\s*/, ''), 'latin1');
  assert.notDeepEqual(noProtocol, signed);
  for (const input of [signed, tampered, noProtocol]) {
    const enc = encryptMessage(input, { recipients: [{ certificate: bob.cert }], headerProtection: false });
    const ref = await reference(enc, bobKey);
    const got = await streamDecrypt(enc, bobKey, 300);
    assert.deepEqual(got.output, ref.message);
    sameVerdict(got.verdict, ref.verdict, input === signed ? 'signed' : input === tampered ? 'tampered' : 'no protocol');
    if (input === noProtocol) assert.ok(got.verdict.warnings.some((w) => w.includes('no protocol parameter')), got.verdict.warnings.join('; '));
  }
  assert.equal((await reference(encryptMessage(tampered, { recipients: [{ certificate: bob.cert }] }), bobKey)).verdict.status, 'invalid');
});

test('tampered ciphertext, a wrong key and a truncated message fail as decryptMessage fails, writing nothing', async () => {
  for (const contentEncryption of ['aes-256-gcm', 'aes-128-cbc', 'chacha20-poly1305'] as const) {
    const enc = encryptMessage(message, { recipients: [{ certificate: bob.cert }, { certificate: alice.cert, rsaPadding: 'oaep' }], contentEncryption });
    // Flip one base64 character in the middle of the body (inside the ciphertext).
    const text = enc.toString('latin1');
    const at = text.length - 2000;
    const tampered = Buffer.from(text.slice(0, at) + (text[at] === 'A' ? 'B' : 'A') + text.slice(at + 1), 'latin1');
    const inMemory = await decryptMessage(tampered, { keys: bobKey }).then((r) => r.message, (e: unknown) => e);
    const out = new PassThrough();
    let wrote = false;
    out.on('data', () => (wrote = true));
    // CBC has no integrity (a changed block may decrypt to garbage with valid padding): every failure is the one UNAUTH_ENC.
    const failure = contentEncryption.includes('cbc') ? 'UNAUTH_ENC' : 'DECRYPT_FAILED';
    assert.ok(isKakitomeError(inMemory, failure), `${contentEncryption}: in memory ${String(inMemory)}`);
    await assert.rejects(decryptMessageStream(Readable.from(randomChunks(tampered, 5000)), { keys: bobKey, output: out }), (e) => isKakitomeError(e, failure), contentEncryption);
    assert.equal(wrote, false);
    // A key that matches no recipient.
    await assert.rejects(decryptMessageStream(Readable.from([enc]), { keys: [{ key: carol.key, certificate: carol.cert }], output: out }), (e) => isKakitomeError(e, 'NOT_RECIPIENT'));
    // The right key type with another recipient's certificate named: wrong key for that recipient.
    const wrongKey = [{ key: pki.identity('rsa2048', 'mallory').key, certificate: alice.cert }];
    await assert.rejects(decryptMessageStream(Readable.from([enc]), { keys: wrongKey, output: out }), (e) => isKakitomeError(e, failure));
    assert.equal(wrote, false);
  }
  // Truncated: the same error code as decryptMessage, nothing written.
  const enc = encryptMessage(message, { recipients: [{ certificate: bob.cert }] });
  const truncatedCodes: string[] = [];
  for (const cut of [enc.length - 40, Math.floor(enc.length / 2)]) {
    const truncated = enc.subarray(0, cut);
    const inMemory = (await decryptMessage(truncated, { keys: bobKey }).then(() => undefined, (e: unknown) => e)) as { code?: string };
    const out = new PassThrough();
    let wrote = false;
    out.on('data', () => (wrote = true));
    const streamed = (await decryptMessageStream(Readable.from(randomChunks(truncated, 3000)), { keys: bobKey, output: out }).then(() => undefined, (e: unknown) => e)) as { code?: string };
    assert.ok(streamed?.code, `truncated at ${cut}: rejected`);
    assert.equal(streamed.code, inMemory?.code, `truncated at ${cut}`);
    truncatedCodes.push(streamed.code!);
    assert.equal(wrote, false);
  }
});

test('LF-only input, x-pkcs7-mime and an openssl smime envelope', async () => {
  const enc = encryptMessage(small, { recipients: [{ certificate: alice.cert }], contentEncryption: 'aes-128-cbc' });
  const lf = Buffer.from(enc.toString('latin1').replace(/\r\n/g, '\n'), 'latin1');
  const ref = await reference(lf, aliceKey, ALLOW);
  const got = await streamDecrypt(lf, aliceKey, 100, ALLOW);
  assert.deepEqual(got.output, ref.message);
  sameVerdict(got.verdict, ref.verdict, 'LF-only');
  assert.ok(got.verdict.warnings.some((w) => w.includes('bare LF')));

  const legacy = Buffer.from(enc.toString('latin1').replace('application/pkcs7-mime', 'application/x-pkcs7-mime').replace(/smime-type=[^;\r\n]+;?\s*/, ''), 'latin1');
  const refLegacy = await reference(legacy, aliceKey, ALLOW);
  const gotLegacy = await streamDecrypt(legacy, aliceKey, 500, ALLOW);
  assert.deepEqual(gotLegacy.output, refLegacy.message);
  sameVerdict(gotLegacy.verdict, refLegacy.verdict, 'x-pkcs7-mime');
  assert.ok(gotLegacy.verdict.warnings.some((w) => w.includes('x-pkcs7-mime')));

  const dir = pki.dir;
  const content = join(dir, 'content.txt');
  writeFileSync(content, 'Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n機密情報\n二行目\n');
  const ossl = execFileSync('openssl', ['smime', '-encrypt', '-aes256', '-in', content, '-from', 'alice@example.com', '-subject', 'secret', alice.certPath]);
  const refOssl = await reference(ossl, aliceKey, ALLOW);
  const gotOssl = await streamDecrypt(ossl, aliceKey, 64, ALLOW);
  assert.deepEqual(gotOssl.output, refOssl.message);
  sameVerdict(gotOssl.verdict, refOssl.verdict, 'openssl smime');
  assert.equal(gotOssl.verdict.code, 'UNAUTH_ENC');
  const gcm = execFileSync('openssl', ['cms', '-encrypt', '-aes-256-gcm', '-in', content, '-recip', bob.certPath, '-keyopt', 'ecdh_kdf_md:sha256']);
  const withFrom = Buffer.concat([Buffer.from('From: alice@example.com\r\n'), gcm]);
  const refGcm = await reference(withFrom, bobKey);
  const gotGcm = await streamDecrypt(withFrom, bobKey, 200);
  assert.deepEqual(gotGcm.output, refGcm.message);
  sameVerdict(gotGcm.verdict, refGcm.verdict, 'openssl cms gcm');
});

test('unencrypted and opaque-signed messages fall back to decryptMessage', async () => {
  const opaque = encryptMessage(small, { recipients: [{ certificate: bob.cert }], sign: { signers: [{ certificate: alice.cert, key: alice.key }], opaque: true } });
  const refOpaque = await reference(opaque, bobKey);
  assert.equal(refOpaque.verdict.status, 'trusted');
  const gotOpaque = await streamDecrypt(opaque, bobKey, 70);
  assert.deepEqual(gotOpaque.output, refOpaque.message);
  sameVerdict(gotOpaque.verdict, refOpaque.verdict, 'opaque signed inside');
  const plain = await streamDecrypt(small, bobKey, 50);
  const ref = await reference(small, bobKey);
  assert.deepEqual(plain.output, ref.message);
  sameVerdict(plain.verdict, ref.verdict, 'plain');
  await assert.rejects(decryptMessageStream(Readable.from([small]), { keys: [] }), (e) => isKakitomeError(e, 'INVALID_ARGUMENT'));
  // A streaming limit smaller than the message.
  const enc = encryptMessage(message, { recipients: [{ certificate: bob.cert }] });
  await assert.rejects(decryptMessageStream(Readable.from([enc]), { keys: bobKey, limits: { maxStreamMessageBytes: 10_000 } }), (e) => isKakitomeError(e, 'LIMIT'));
});

test('input read with reused buffers (readFileChunks) gives the same output', async () => {
  const signers = [{ certificate: alice.cert, key: alice.key }];
  for (const enc of [encryptMessage(message, { recipients: [{ certificate: bob.cert }] }), encryptMessage(message, { recipients: [{ certificate: bob.cert }], sign: { signers } })]) {
    const path = join(pki.dir, 'reused.eml');
    writeFileSync(path, enc);
    const ref = await reference(enc, bobKey);
    for (const size of [4096, 65_536]) {
      const out = new PassThrough();
      const parts: Buffer[] = [];
      out.on('data', (c: Buffer) => parts.push(c));
      const verdict = await decryptMessageStream(readFileChunks(path, size), { keys: bobKey, validateSigner, output: out });
      assert.deepEqual(Buffer.concat(parts), ref.message, `chunks of ${size}`);
      sameVerdict(verdict, ref.verdict, `reused chunks of ${size}`);
    }
  }
});

test('findKeys: asked once with the envelope (RecipientInfos readable, no encrypted content), its keys open the message; what it throws is thrown; a message read into memory needs keys', async () => {
  const { recipientIdentifiers } = await import('../../src/cms/recipients/recipient-info.ts');
  const { parseEnvelopeFromContentInfo } = await import('../../src/cms/enveloped-data/parse.ts');
  const sealed = encryptMessage(message, { recipients: [{ certificate: alice.cert }, { certificate: bob.cert }] });
  const asked: number[] = [];
  const out = new PassThrough();
  const parts: Buffer[] = [];
  out.on('data', (c: Buffer) => parts.push(c));
  const verdict = await decryptMessageStream(Readable.from(randomChunks(sealed, 1 << 14)), {
    findKeys: async (envelope) => {
      const recipients = parseEnvelopeFromContentInfo(envelope).recipients.flatMap(recipientIdentifiers);
      asked.push(recipients.length);
      assert.ok(envelope.length < 4096, 'the envelope without its encrypted content');
      return bobKey;
    },
    validateSigner,
    output: out,
  });
  assert.deepEqual(asked, [2], 'asked once, with both RecipientInfos');
  assert.equal(verdict.encryption?.recipients, 2);
  assert.deepEqual(Buffer.concat(parts), (await decryptMessage(sealed, { keys: bobKey, validateSigner })).message);

  // The store failing: thrown as it is, not as a decryption failure.
  const down = new Error('the key store is down');
  await assert.rejects(decryptMessageStream(Readable.from([sealed]), { findKeys: async () => { throw down; }, validateSigner }), (e) => e === down);
  // No key found: as for keys that match no recipient.
  await assert.rejects(decryptMessageStream(Readable.from([sealed]), { findKeys: async () => [], validateSigner }), (e) => isKakitomeError(e, 'NOT_RECIPIENT'));
  // Not an envelope read as a stream (opaque signing): decryptMessage's path, which needs keys.
  const opaque = signMessage(small, { signers: [{ certificate: alice.cert, key: alice.key }], opaque: true });
  await assert.rejects(decryptMessageStream(Readable.from([opaque]), { findKeys: async () => aliceKey, validateSigner }), (e) => isKakitomeError(e, 'INVALID_ARGUMENT'));
  await assert.rejects(decryptMessageStream(Readable.from([opaque]), { validateSigner }), (e) => isKakitomeError(e, 'INVALID_ARGUMENT'));
});
