import { test, after } from 'node:test';
import { execFileSync } from 'node:child_process';
import assert from 'node:assert/strict';
import { TestPki } from '../helpers/pki.ts';
import { signMessage } from '../../src/smime/sign-message.ts';
import { verifyMessage } from '../../src/smime/verify-message.ts';
import { encryptMessage } from '../../src/smime/encrypt-message.ts';
import { decryptMessage } from '../../src/smime/decrypt-message.ts';
import { inspectMessage } from '../../src/smime/inspect-message.ts';
import { verdictExitCode } from '../../src/smime/verdict.ts';
import { createSignerValidator } from '../../src/pki/create-signer-validator.ts';
import { compressData } from '../../src/cms/compressed-data.ts';
import { parseContentInfo } from '../../src/cms/content-info.ts';
import { signData } from '../../src/cms/signed-data/sign.ts';
import { OID } from '../../src/asn1/oids.ts';
import { parseEntity } from '../../src/mime/parse-entity.ts';
import { decodeText } from '../../src/mime/decode-text.ts';
import { decodeBody } from '../../src/mime/decode-body.ts';
import { getHeaderValue } from '../../src/mime/entity.ts';
import { decodeHeaderText } from '../../src/mime/decode-header-text.ts';
import { buildEntity, buildMultipartBody } from '../../src/mime/build-entity.ts';
import { isKakitomeError } from '../../src/errors.ts';

const pki = new TestPki();
after(() => pki.cleanup());
const alice = pki.identity('rsa2048', 'alice');
const bob = pki.identity('p256', 'bob');
const carol = pki.identity('ed25519', 'carol');
const aliceSigner = { certificate: alice.cert, key: alice.key };
const validateSigner = createSignerValidator({ anchors: [pki.caCert], revocation: { mode: 'off' }, fetchCaIssuers: false });

/** An 8-bit UTF-8 Japanese message, LF-only as a mailbox file stores it. */
const japanese = Buffer.from(
  [
    'From: =?UTF-8?B?44Ki44Oq44K5?= <alice@example.com>',
    'To: Bob <bob@example.com>',
    'Subject: =?UTF-8?B?6KaL56mN5pu444Gu6YCB5LuY?=',
    'Date: Mon, 23 Nov 2026 10:00:00 +0900',
    'Message-ID: <m1@example.com>',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 8bit',
    '',
    'お世話になっております。',
    '見積書をお送りします。',
    '',
  ].join('\n'),
);

/** A multipart with an ISO-2022-JP text part and a binary attachment. */
const attachmentBytes = Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7) & 0xff));
const withAttachment = buildEntity(
  [
    ['From', 'alice@example.com'],
    ['To', 'bob@example.com'],
    ['Subject', '添付ファイル'],
    ['MIME-Version', '1.0'],
    ['Content-Type', 'multipart/mixed; boundary="outer"'],
  ],
  buildMultipartBody('outer', [
    Buffer.concat([Buffer.from('Content-Type: text/plain; charset=ISO-2022-JP\r\nContent-Transfer-Encoding: 7bit\r\n\r\n'), Buffer.from('1b2442467c4b5c386c244e4b5c4a38244724391b2842', 'hex'), Buffer.from('\r\n')]),
    Buffer.concat([Buffer.from('Content-Type: application/pdf; name="report.pdf"\r\nContent-Disposition: attachment; filename="report.pdf"\r\nContent-Transfer-Encoding: binary\r\n\r\n'), attachmentBytes]),
  ]),
);

test('multipart/signed round trip: 8-bit LF-only Japanese text, header protection, trusted with the validator', async () => {
  const signed = signMessage(japanese, { signers: [aliceSigner] });
  const text = signed.toString('latin1');
  assert.match(text, /Content-Type: multipart\/signed; protocol="application\/pkcs7-signature";\s+micalg=sha-256;/);
  assert.ok(!/[\x80-\xff]/.test(text), 'the signed message is 7-bit');
  assert.ok(text.startsWith('From: =?UTF-8?B?44Ki44Oq44K5?= <alice@example.com>\r\nTo: Bob <bob@example.com>\r\n'), 'message headers stay outside, byte for byte');

  const plain = await verifyMessage(signed);
  assert.equal(plain.status, 'valid-untrusted', 'no validator: never trusted');
  assert.equal(plain.code, undefined);
  assert.equal(plain.signers[0]!.identity.status, 'match');
  assert.equal(plain.protectedHeaders?.mode, 'clear');
  assert.deepEqual(plain.protectedHeaders?.mismatches, []);
  assert.deepEqual(plain.protectedHeaders?.headers.find(([n]) => n === 'Subject'), ['Subject', '見積書の送付']);

  const v = await verifyMessage(signed, { validateSigner });
  assert.equal(v.status, 'trusted', v.summary);
  assert.equal(verdictExitCode(v), 0);
  assert.equal(v.signers[0]!.email, 'alice@example.com');
  assert.equal(v.signers[0]!.algorithms.digest, 'sha256');
  const out = parseEntity(v.output);
  assert.equal(decodeText(out), 'お世話になっております。\r\n見積書をお送りします。\r\n');
  assert.equal(getHeaderValue(out, 'message-id'), '<m1@example.com>');
});

test('opaque signed-data with an attachment and ISO-2022-JP text; binary attachment survives as base64', async () => {
  const signed = signMessage(withAttachment, { signers: [aliceSigner], opaque: true });
  assert.match(signed.toString(), /Content-Type: application\/pkcs7-mime; smime-type=signed-data;/);
  const v = await verifyMessage(signed, { validateSigner });
  assert.equal(v.status, 'trusted', v.summary);
  assert.equal(v.layers[0]!.form, 'opaque');
  const out = parseEntity(v.output);
  assert.equal(decodeText(out.children[0]!).trim(), '日本語の本文です');
  assert.equal(out.children[1]!.transferEncoding, 'base64');
  assert.deepEqual(decodeBody(out.children[1]!), attachmentBytes);
});

test('tampering with the signed part gives invalid with a stable code', async () => {
  const signed = signMessage(japanese, { signers: [aliceSigner], headerProtection: false });
  const tampered = Buffer.from(signed.toString('latin1').replace('=E3=81=8A=E4=B8=96', '=E3=81=8A=E4=B8=97'), 'latin1');
  assert.notDeepEqual(tampered, signed);
  const v = await verifyMessage(tampered, { validateSigner });
  assert.equal(v.status, 'invalid');
  assert.equal(v.code, 'DIGEST_MISMATCH');
  assert.equal(verdictExitCode(v), 1);
});

test('signer not matching From gives IDENTITY_MISMATCH, with and without a validator', async () => {
  const forged = Buffer.from(japanese.toString().replace('<alice@example.com>', '<ceo@example.com>'));
  const signed = signMessage(forged, { signers: [aliceSigner] });
  const v1 = await verifyMessage(signed);
  assert.equal(v1.status, 'valid-untrusted');
  assert.equal(v1.code, 'IDENTITY_MISMATCH');
  const v2 = await verifyMessage(signed, { validateSigner });
  assert.equal(v2.status, 'valid-untrusted');
  assert.equal(v2.code, 'IDENTITY_MISMATCH');
});

test('a From display name showing another address is never trusted ("Johnny, you are fired")', async () => {
  // Alice signs validly as herself, but her display name claims to be the CEO.
  const spoof = Buffer.from(japanese.toString().replace(/^From: .*$/m, 'From: "ceo@example.com" <alice@example.com>'));
  const v = await verifyMessage(signMessage(spoof, { signers: [aliceSigner] }), { validateSigner });
  assert.equal(v.status, 'valid-untrusted');
  assert.equal(v.code, 'IDENTITY_MISMATCH');
  assert.match(v.summary, /NOT from ceo@example\.com/);
  assert.ok(v.warnings.some((w) => /display name shows ceo@example\.com, but the message is from alice@example\.com/.test(w)));
  // A display name repeating the real address, or a plain name, stays trusted.
  for (const from of ['"alice@example.com" <alice@example.com>', 'Alice Liddell <alice@example.com>']) {
    const ok = Buffer.from(japanese.toString().replace(/^From: .*$/m, `From: ${from}`));
    const r = await verifyMessage(signMessage(ok, { signers: [aliceSigner] }), { validateSigner });
    assert.equal(r.status, 'trusted', `${from}: ${r.summary}`);
  }
});

test('outer From changed after signing: the protected From wins and the mismatch is flagged', async () => {
  const signed = signMessage(japanese, { signers: [aliceSigner] });
  const altered = Buffer.from(signed.toString('latin1').replace('From: =?UTF-8?B?44Ki44Oq44K5?= <alice@example.com>', 'From: Boss <boss@example.com>'), 'latin1');
  const v = await verifyMessage(altered, { validateSigner });
  assert.equal(v.status, 'valid-untrusted');
  assert.equal(v.code, 'IDENTITY_MISMATCH');
  assert.ok(v.protectedHeaders!.mismatches.some((m) => m.startsWith('Outer from')));
  assert.match(getHeaderValue(parseEntity(v.output), 'from')!, /alice@example\.com/, 'output shows the protected From');
});

test('a signed part inside unsigned content is partial, never signed', async () => {
  const signedInner = signMessage(Buffer.from('Content-Type: text/plain\r\n\r\nsigned words\r\n'), { signers: [aliceSigner], headerProtection: false });
  const innerEntity = parseEntity(signedInner);
  const wrapper = buildEntity(
    [['From', 'alice@example.com'], ['Content-Type', 'multipart/mixed; boundary=w']],
    buildMultipartBody('w', [Buffer.from('Content-Type: text/plain\r\n\r\nPlease wire the money to the account below.\r\n'), buildEntity(innerEntity.headers.filter((h) => h.name.toLowerCase().startsWith('content-')), innerEntity.body)]),
  );
  const v = await verifyMessage(wrapper, { validateSigner });
  assert.equal(v.status, 'partial');
  assert.equal(v.code, 'PARTIAL_SIGNED');
  assert.equal(v.signers.length, 1);
  assert.equal(v.signers[0]!.scope, 'part');
  assert.equal(v.layers[0]!.coversBody, false);
  const unsigned = await verifyMessage(japanese);
  assert.equal(unsigned.status, 'unsigned');
  assert.equal(unsigned.code, undefined);
});

test('x-pkcs7 media types are read; a missing protocol parameter is flagged and never trusted', async () => {
  const opaque = signMessage(japanese, { signers: [aliceSigner], opaque: true }).toString('latin1').replace('application/pkcs7-mime', 'application/x-pkcs7-mime');
  const v1 = await verifyMessage(Buffer.from(opaque, 'latin1'), { validateSigner });
  assert.equal(v1.status, 'trusted');
  assert.ok(v1.warnings.some((w) => /x-pkcs7-mime/.test(w)));
  const detached = signMessage(japanese, { signers: [aliceSigner] }).toString('latin1').replace(/protocol="application\/pkcs7-signature";\s*/, '').replace('application/pkcs7-signature; name', 'application/x-pkcs7-signature; name');
  const v2 = await verifyMessage(Buffer.from(detached, 'latin1'), { validateSigner });
  assert.equal(v2.status, 'valid-untrusted');
  assert.ok(v2.warnings.some((w) => /no protocol parameter/.test(w)));
});

test('Ed25519 signer: micalg sha-512 (RFC 8419)', async () => {
  const msg = Buffer.from(japanese.toString().replace('alice@example.com', 'carol@example.com'));
  const signed = signMessage(msg, { signers: [{ certificate: carol.cert, key: carol.key }] });
  assert.match(signed.toString(), /micalg=sha-512/);
  assert.equal((await verifyMessage(signed, { validateSigner })).status, 'trusted');
});

// Changed on purpose (issue 12 item 2): the outer Subject was "[...]" by default; it now stays readable
// (hcp_no_confidentiality: Outlook, Apple Mail and Gmail show only the outer fields), and hideSubject hides it.
test('encrypt (AES-256-GCM) keeps the Subject readable outside by default and hides it with hideSubject; decrypt restores it and reports authenticated encryption', async () => {
  const readable = parseEntity(encryptMessage(japanese, { recipients: [{ certificate: bob.cert }] }));
  assert.equal(decodeHeaderText(getHeaderValue(readable, 'subject')!), '見積書の送付');
  const enc = encryptMessage(japanese, { recipients: [{ certificate: bob.cert }, { certificate: alice.cert }], hideSubject: true });
  const outer = parseEntity(enc);
  assert.equal(getHeaderValue(outer, 'subject'), '[...]');
  assert.match(outer.contentType.params['smime-type']!, /authEnveloped-data/);
  const notDecrypted = await verifyMessage(enc);
  assert.equal(notDecrypted.status, 'unsigned');
  assert.equal(notDecrypted.layers[0]!.decrypted, false);
  for (const id of [bob, alice]) {
    const { message, verdict } = await decryptMessage(enc, { keys: [{ key: id.key, certificate: id.cert }] });
    assert.equal(verdict.encryption?.authenticated, true);
    assert.equal(verdict.encryption?.contentEncryption, 'aes-256-gcm');
    assert.equal(verdict.encryption?.recipients, 2);
    assert.equal(verdict.status, 'unsigned');
    assert.equal(verdict.code, undefined);
    assert.equal(verdict.protectedHeaders?.mode, 'cipher');
    assert.deepEqual(verdict.protectedHeaders?.mismatches, []);
    const m = parseEntity(message);
    assert.equal(decodeHeaderText(getHeaderValue(m, 'subject')!), '見積書の送付');
    assert.equal(m.headers.filter((h) => h.name.toLowerCase() === 'subject').length, 1);
    // The legacy display (RFC 9788 section 4.5) leads the text for clients without header protection.
    assert.equal(m.contentType.params['hp-legacy-display'], '1');
    assert.equal(decodeText(m), 'Subject: 見積書の送付\r\n\r\nお世話になっております。\r\n見積書をお送りします。\r\n');
  }
});

test('signed, then encrypted in a second step: the obscured outer Subject is no mismatch; a forged layer is', async () => {
  const signed = signMessage(japanese, { signers: [aliceSigner] });
  const enc = encryptMessage(signed, { recipients: [{ certificate: bob.cert }], hideSubject: true });
  assert.equal(getHeaderValue(parseEntity(enc), 'subject'), '[...]');
  const { message, verdict } = await decryptMessage(enc, { keys: [{ key: bob.key, certificate: bob.cert }], validateSigner });
  assert.equal(verdict.status, 'trusted', verdict.summary);
  assert.deepEqual(verdict.protectedHeaders?.mismatches, []);
  assert.ok(!verdict.warnings.some((w) => /mismatch/i.test(w)), verdict.warnings.join('; '));
  assert.equal(decodeHeaderText(getHeaderValue(parseEntity(message), 'subject')!), '見積書の送付');
  // The same signed message re-encrypted by someone who changed the Subject on the way:
  // the encryption layer's protected headers disagree with the signed ones.
  const forged = Buffer.from(signed.toString('latin1').replace(/^Subject: .*$/m, 'Subject: =?UTF-8?B?' + Buffer.from('口座変更のお知らせ').toString('base64') + '?='), 'latin1');
  const reEnc = encryptMessage(forged, { recipients: [{ certificate: bob.cert }] });
  const r = await decryptMessage(reEnc, { keys: [{ key: bob.key, certificate: bob.cert }], validateSigner });
  assert.ok(r.verdict.protectedHeaders?.mismatches.some((m) => /^Outer subject /.test(m)), JSON.stringify(r.verdict.protectedHeaders));
});

test('CBC without a signature is refused (UNAUTH_ENC) unless allowed, then flagged; sign-then-encrypt by the sender is not', async () => {
  const cbc = encryptMessage(japanese, { recipients: [{ certificate: bob.cert }], contentEncryption: 'aes-128-cbc' });
  assert.match(cbc.toString(), /smime-type=enveloped-data/);
  const keys = [{ key: bob.key, certificate: bob.cert }];
  await assert.rejects(decryptMessage(cbc, { keys, validateSigner }), (e) => isKakitomeError(e, 'UNAUTH_ENC'));
  const d1 = await decryptMessage(cbc, { keys, allowUnauthenticated: true });
  assert.equal(d1.verdict.status, 'unsigned');
  assert.equal(d1.verdict.code, 'UNAUTH_ENC');
  assert.equal(d1.verdict.encryption?.authenticated, false);
  assert.equal(d1.verdict.encryption?.authenticatedBy, 'none');
  const signedCbc = encryptMessage(japanese, { recipients: [{ certificate: bob.cert }], contentEncryption: 'aes-256-cbc', sign: { signers: [aliceSigner] } });
  const d2 = await decryptMessage(signedCbc, { keys, validateSigner });
  assert.equal(d2.verdict.status, 'trusted', d2.verdict.summary);
  assert.ok(!d2.verdict.warnings.some((w) => /UNAUTH_ENC/.test(w)));
  assert.equal(d2.verdict.encryption?.authenticatedBy, 'signature');
  assert.deepEqual(d2.verdict.layers.map((l) => l.kind), ['enveloped', 'signed']);
});

test('triple wrap (sign, encrypt, sign) and ChaCha20-Poly1305', async () => {
  const tw = encryptMessage(japanese, { recipients: [{ certificate: bob.cert }], contentEncryption: 'chacha20-poly1305', sign: { signers: [aliceSigner] }, tripleWrap: true });
  const { verdict, message } = await decryptMessage(tw, { keys: [{ key: bob.key, certificate: bob.cert }], validateSigner });
  assert.deepEqual(verdict.layers.map((l) => l.kind), ['signed', 'auth-enveloped', 'signed']);
  assert.equal(verdict.signers.length, 2);
  assert.equal(verdict.status, 'trusted', verdict.summary);
  assert.equal(verdict.encryption?.contentEncryption, 'chacha20-poly1305');
  assert.equal(decodeHeaderText(getHeaderValue(parseEntity(message), 'subject')!), '見積書の送付');
  const report = inspectMessage(tw);
  assert.equal(report.layers.length, 2, 'inspect sees the outer signature and the envelope, not inside it (no key)');
  assert.match(report.layers[0]!, /signedData, 1 signer/);
  assert.match(report.layers[1]!, /authEnvelopedData, chacha20-poly1305, 1 recipient/);
});

test('a wrong key fails with NOT_RECIPIENT; a corrupted envelope with the one DECRYPT_FAILED', async () => {
  const enc = encryptMessage(japanese, { recipients: [{ certificate: bob.cert }] });
  await assert.rejects(decryptMessage(enc, { keys: [{ key: alice.key, certificate: alice.cert }] }), (e) => isKakitomeError(e) && (e.code === 'NOT_RECIPIENT' || e.code === 'DECRYPT_FAILED'));
  const outer = parseEntity(enc);
  const der = Buffer.from(decodeBody(outer));
  der[der.length - 20]! ^= 0x01;
  const corrupted = buildEntity(outer.headers.filter((h) => h.name.toLowerCase() !== 'content-transfer-encoding'), Buffer.from(der.toString('base64')));
  const corruptedB64 = Buffer.from(corrupted.toString('latin1').replace('Content-Type: application/pkcs7-mime', 'Content-Transfer-Encoding: base64\r\nContent-Type: application/pkcs7-mime'), 'latin1');
  await assert.rejects(decryptMessage(corruptedB64, { keys: [{ key: bob.key, certificate: bob.cert }] }), (e) => isKakitomeError(e, 'DECRYPT_FAILED'));
});

test('an encrypted part next to unencrypted parts is never decrypted (EFAIL)', async () => {
  const enc = parseEntity(encryptMessage(Buffer.from('Content-Type: text/plain\r\n\r\nsecret\r\n'), { recipients: [{ certificate: bob.cert }], headerProtection: false }));
  const encPart = buildEntity(enc.headers.filter((h) => h.name.toLowerCase().startsWith('content-')), enc.body);
  const mixed = buildEntity(
    [['From', 'mallory@example.com'], ['Content-Type', 'multipart/mixed; boundary=e']],
    buildMultipartBody('e', [Buffer.from('Content-Type: text/html\r\n\r\n<img src="http://evil.example/'), encPart, Buffer.from('Content-Type: text/html\r\n\r\n">\r\n')]),
  );
  const { message, verdict } = await decryptMessage(mixed, { keys: [{ key: bob.key, certificate: bob.cert }] });
  assert.ok(!message.toString().includes('secret'));
  assert.equal(verdict.layers[0]!.decrypted, false);
  assert.ok(verdict.warnings.some((w) => /not decrypted/.test(w)));
});

test('compressed-data is opened (RFC 3274) within the decompression bound', async () => {
  const inner = Buffer.from(`Content-Type: text/plain\r\n\r\n${'compress me '.repeat(1000)}\r\n`);
  const der = compressData(inner);
  const msg = buildEntity([['From', 'alice@example.com'], ['Content-Type', 'application/pkcs7-mime; smime-type=compressed-data; name=smime.p7z'], ['Content-Transfer-Encoding', 'base64']], Buffer.from(der.toString('base64')));
  const v = await verifyMessage(msg);
  assert.equal(v.layers[0]!.kind, 'compressed');
  assert.equal(decodeBody(parseEntity(v.output)).toString(), `${'compress me '.repeat(1000)}\r\n`);
  await assert.rejects(verifyMessage(msg, { limits: { maxDecompressedBytes: 1000 } }), (e) => isKakitomeError(e, 'LIMIT'));
});

test('nested layers are bounded by limits.maxLayers', async () => {
  let m: Buffer = japanese;
  for (let i = 0; i < 3; i++) m = signMessage(m, { signers: [aliceSigner], opaque: true, headerProtection: false });
  const ok = await verifyMessage(m);
  assert.equal(ok.layers.length, 3);
  await assert.rejects(verifyMessage(m, { limits: { maxLayers: 2 } }), (e) => isKakitomeError(e, 'LIMIT'));
});

test('inspectMessage describes the MIME tree, the signature and recipients without keys', () => {
  const signed = signMessage(withAttachment, { signers: [aliceSigner] });
  const r = inspectMessage(signed);
  assert.equal(r.tree.mediaType, 'multipart/signed');
  assert.equal(r.tree.smime?.type, 'signedData');
  assert.equal(r.tree.smime?.signed?.detached, true);
  assert.equal(r.tree.smime?.signed?.signers[0]?.digestAlgorithm, 'sha256');
  assert.ok(r.tree.smime?.signed?.signers[0]?.signingTime instanceof Date);
  assert.deepEqual(r.tree.smime?.signed?.certificates[0]?.emails, ['alice@example.com']);
  assert.equal(r.tree.children[0]?.children[1]?.filename, 'report.pdf');
  const enc = inspectMessage(encryptMessage(withAttachment, { recipients: [{ certificate: bob.cert }, { certificate: alice.cert }], contentEncryption: 'aes-128-gcm', hideSubject: true }));
  assert.equal(enc.tree.smime?.type, 'authEnvelopedData');
  assert.equal(enc.tree.smime?.enveloped?.contentEncryption, 'aes-128-gcm');
  assert.deepEqual(enc.tree.smime?.enveloped?.recipients.map((x) => x.kind).sort(), ['kari', 'ktri']);
  assert.ok(enc.headers.some(([n, v]) => n === 'Subject' && v === '[...]'));
});

test('RFC 9788 details: hcp_baseline drops Keywords and Comments, records HP-Outer; a false hp="cipher" claim is flagged', async () => {
  const msg = Buffer.from('From: alice@example.com\r\nTo: bob@example.com\r\nSubject: plans\r\nKeywords: merger\r\nComments: confidential\r\nContent-Type: text/plain\r\n\r\nbody\r\n');
  // The default (hcp_no_confidentiality) leaves them outside, as it leaves the Subject.
  const kept = parseEntity(encryptMessage(msg, { recipients: [{ certificate: bob.cert }] }));
  assert.equal(getHeaderValue(kept, 'keywords'), 'merger');
  assert.equal(getHeaderValue(kept, 'subject'), 'plans');
  const enc = encryptMessage(msg, { recipients: [{ certificate: bob.cert }], hideSubject: true });
  const outer = parseEntity(enc);
  assert.equal(getHeaderValue(outer, 'keywords'), undefined);
  assert.equal(getHeaderValue(outer, 'comments'), undefined);
  const { message, verdict } = await decryptMessage(enc, { keys: [{ key: bob.key, certificate: bob.cert }] });
  assert.deepEqual(verdict.protectedHeaders?.mismatches, []);
  const m = parseEntity(message);
  assert.equal(getHeaderValue(m, 'keywords'), 'merger');
  assert.equal(getHeaderValue(m, 'subject'), 'plans');
  assert.equal(getHeaderValue(m, 'hp-outer'), undefined, 'HP-Outer is not shown to the reader');
  // A signed-only payload claiming hp="cipher" claims a confidentiality it never had.
  const signed = signMessage(msg, { signers: [aliceSigner] }).toString('latin1').replace('hp=clear', 'hp=cipher');
  const v = await verifyMessage(Buffer.from(signed, 'latin1'));
  assert.equal(v.status, 'invalid', 'changing the signed part breaks the signature');
  const opaque = signMessage(Buffer.from(msg.toString().replace('Content-Type: text/plain', 'Content-Type: text/plain; hp=cipher')), { signers: [aliceSigner], headerProtection: false, opaque: true });
  const v2 = await verifyMessage(opaque);
  assert.ok(v2.protectedHeaders?.mismatches.some((x) => /hp="cipher"/.test(x)));
});

test('smime-type disagreeing with the CMS content is reported; the CMS content decides', async () => {
  const enc = encryptMessage(japanese, { recipients: [{ certificate: bob.cert }] }).toString('latin1').replace('smime-type=authEnveloped-data', 'smime-type=signed-data');
  const { verdict } = await decryptMessage(Buffer.from(enc, 'latin1'), { keys: [{ key: bob.key, certificate: bob.cert }] });
  assert.ok(verdict.warnings.some((w) => /smime-type=signed-data but the content is authenveloped-data/.test(w)));
  assert.equal(verdict.layers[0]!.kind, 'auth-enveloped');
});

test('a detached signature with encapsulated content, or with no signer, makes the message invalid', async () => {
  const opaque = parseEntity(signMessage(japanese, { signers: [aliceSigner], opaque: true }));
  const encapsulated = decodeBody(opaque);
  const wrap = (der: Buffer): Buffer =>
    buildEntity(
      [['From', 'alice@example.com'], ['Content-Type', 'multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256; boundary=s']],
      buildMultipartBody('s', [Buffer.from('Content-Type: text/plain\r\n\r\nsomething else\r\n'), Buffer.concat([Buffer.from('Content-Type: application/pkcs7-signature\r\nContent-Transfer-Encoding: base64\r\n\r\n'), Buffer.from(der.toString('base64'))])]),
    );
  const v1 = await verifyMessage(wrap(encapsulated), { validateSigner });
  assert.equal(v1.status, 'invalid');
  assert.equal(v1.code, 'AMBIGUOUS_CONTENT');
  // A SignedData with no SignerInfo (what certs-only messages carry).
  const certsOnly = execFileSync('openssl', ['crl2pkcs7', '-nocrl', '-certfile', alice.certPath, '-outform', 'DER']);
  const v2 = await verifyMessage(wrap(certsOnly), { validateSigner });
  assert.equal(v2.status, 'invalid');
  assert.equal(v2.code, 'NO_SIGNERS');
});

test('CMS nested directly in CMS (RFC 3274: SignedData over CompressedData) is opened layer by layer', async () => {
  const inner = Buffer.from('Content-Type: text/plain\r\n\r\ncompressed then signed\r\n');
  const compressed = parseContentInfo(compressData(inner)).content.bytes;
  const der = signData(compressed, { signers: [aliceSigner], contentType: OID.compressedData });
  const msg = buildEntity([['From', 'alice@example.com'], ['Content-Type', 'application/pkcs7-mime; smime-type=signed-data; name=smime.p7m'], ['Content-Transfer-Encoding', 'base64']], Buffer.from(der.toString('base64')));
  const v = await verifyMessage(msg, { validateSigner });
  assert.deepEqual(v.layers.map((l) => l.kind), ['signed', 'compressed']);
  assert.equal(v.status, 'trusted', v.summary);
  assert.equal(decodeBody(parseEntity(v.output)).toString(), 'compressed then signed\r\n');
});

test('two signers with different digests: micalg lists both (RFC 8551 section 3.5.3.2) and both are reported', async () => {
  const signed = signMessage(japanese, { signers: [aliceSigner, { certificate: carol.cert, key: carol.key }] });
  assert.match(signed.toString(), /micalg="sha-256,sha-512"/);
  const v = await verifyMessage(signed, { validateSigner });
  assert.equal(v.signers.length, 2);
  assert.ok(v.signers.every((s) => s.status === 'valid'));
  // carol@example.com is not the From address: one signer not matching the sender keeps the message from 'trusted'.
  assert.equal(v.status, 'valid-untrusted');
  assert.equal(v.code, 'IDENTITY_MISMATCH');
});
