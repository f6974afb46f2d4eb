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
import { verifyMessageStream } from '../../src/smime/verify-message-stream.ts';
import { decryptMessageStream } from '../../src/smime/decrypt-message-stream.ts';
import { PassThrough, Readable } from 'node:stream';
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

// What the matrix in docs/interop.md proves at the CMS level, held again at the message
// level: micalg and the MIME wrappers are where real mail differs from raw CMS.
const carol = pki.identity('p384', 'carol');
const dave = pki.identity('p521', 'dave');
const micalgOf = (m: Buffer): string | undefined => /micalg="?([^";\s]+)/.exec(m.toString('latin1'))?.[1];
const headed = (cms: Buffer): Buffer => Buffer.concat([Buffer.from('From: alice@example.com\r\n'), cms]);

test('multipart/signed with SHA-384 and SHA-512 (RSA, P-384, P-521): openssl writes micalg sha-384/sha-512 and we trust it; ours verify in openssl smime', async () => {
  const content = file('Content-Type: text/plain\r\n\r\nhash sizes\r\n');
  for (const [id, md, cmd] of [[alice, 'sha384', 'smime'], [alice, 'sha512', 'smime'], [carol, 'sha384', 'cms'], [dave, 'sha512', 'cms']] as const) {
    const out = openssl(cmd, '-sign', '-md', md, '-in', content, '-signer', id.certPath, '-inkey', id.keyPath, '-from', id.email);
    assert.equal(micalgOf(out), md.replace('sha', 'sha-'), `${cmd} ${md}`);
    const v = await verifyMessage(out, { validateSigner });
    assert.equal(v.status, 'trusted', `${cmd} ${id.kind} ${md}: ${v.summary}`);
    assert.equal(v.signers[0]!.algorithms.digest, md);
    const bad = Buffer.from(out.toString('latin1').replace('hash sizes', 'hash sizeS'), 'latin1');
    assert.equal((await verifyMessage(bad, { validateSigner })).status, 'invalid', `${cmd} ${md} tampered`);

    const ours = signMessage(message, { signers: [{ certificate: id.cert, key: id.key, hash: md }] });
    assert.equal(micalgOf(ours), md.replace('sha', 'sha-'));
    openssl('smime', '-verify', '-in', file(ours), '-CAfile', pki.caPath, '-out', '/dev/null');
    const oursBad = Buffer.from(ours.toString('latin1').replace('=E6=B7=BB', '=E6=B7=BC'), 'latin1'); // inside the signed text
    assert.throws(() => openssl('smime', '-verify', '-in', file(oursBad), '-CAfile', pki.caPath, '-out', '/dev/null'), `${id.kind} ${md}: openssl accepted a changed signed part`);
  }
});

test('openssl cms -sign with a receipt request (RFC 2634, what "request a signed receipt" sends): we trust the signature', async () => {
  const content = file('Content-Type: text/plain\r\n\r\nplease confirm\r\n');
  const out = openssl('cms', '-sign', '-in', content, '-signer', alice.certPath, '-inkey', alice.keyPath, '-receipt_request_all', '-receipt_request_to', 'alice@example.com');
  const v = await verifyMessage(headed(out), { validateSigner });
  assert.equal(v.status, 'trusted', v.summary);
  const bad = Buffer.from(headed(out).toString('latin1').replace('please confirm', 'please confirM'), 'latin1');
  assert.equal((await verifyMessage(bad, { validateSigner })).status, 'invalid');
});

test('RSAES-OAEP messages: openssl cms (SHA-256, with and without a label) decrypt with us; ours decrypt in openssl; SHA-512 with MGF1-SHA-256 is refused typed', async () => {
  const content = file('Content-Type: text/plain\r\n\r\nOAEP body\r\n');
  const oaep256 = ['-keyopt', 'rsa_padding_mode:oaep', '-keyopt', 'rsa_oaep_md:sha256', '-keyopt', 'rsa_mgf1_md:sha256'];
  for (const extra of [[], ['-keyopt', 'rsa_oaep_label:6b616b69746f6d65']]) {
    const out = openssl('cms', '-encrypt', '-aes-128-cbc', '-in', content, '-recip', alice.certPath, ...oaep256, ...extra);
    const d = await decryptMessage(headed(out), { keys: [{ key: alice.key, certificate: alice.cert }], allowUnauthenticated: true });
    assert.equal(d.verdict.encryption?.keyManagement, 'rsa-oaep');
    assert.equal(decodeText(parseEntity(d.message)), 'OAEP body\r\n');
  }
  const mixed = openssl('cms', '-encrypt', '-aes-128-cbc', '-in', content, '-recip', alice.certPath, '-keyopt', 'rsa_padding_mode:oaep', '-keyopt', 'rsa_oaep_md:sha512', '-keyopt', 'rsa_mgf1_md:sha256');
  await assert.rejects(decryptMessage(headed(mixed), { keys: [{ key: alice.key, certificate: alice.cert }], allowUnauthenticated: true }), (e: { code?: string }) => e.code === 'UNSUPPORTED_ALG');
  for (const cipher of ['aes-128-cbc', 'aes-256-gcm'] as const) {
    const enc = encryptMessage(message, { recipients: [{ certificate: alice.cert, rsaPadding: 'oaep' }], contentEncryption: cipher, sign: { signers: [{ certificate: alice.cert, key: alice.key }] } });
    const inner = openssl('cms', '-decrypt', '-in', file(enc), '-recip', alice.certPath, '-inkey', alice.keyPath);
    openssl('smime', '-verify', '-in', file(inner), '-CAfile', pki.caPath, '-out', '/dev/null');
  }
});

test('ECDH P-384 and P-521 messages (CBC and GCM, the KDFs openssl writes): both directions', async () => {
  const content = file('Content-Type: text/plain\r\n\r\nECDH body\r\n');
  for (const [id, kdf, cipher] of [[carol, 'sha1', 'aes-256-cbc'], [carol, 'sha384', 'aes-256-gcm'], [dave, 'sha1', 'aes-128-cbc'], [dave, 'sha512', 'aes-256-gcm']] as const) {
    const out = openssl('cms', '-encrypt', `-${cipher}`, '-in', content, '-recip', id.certPath, '-keyopt', `ecdh_kdf_md:${kdf}`);
    const d = await decryptMessage(headed(out), { keys: [{ key: id.key, certificate: id.cert }], allowUnauthenticated: true });
    assert.equal(d.verdict.encryption?.keyManagement, 'ecdh', `${id.kind} ${kdf}`);
    assert.equal(d.verdict.encryption?.contentEncryption, cipher);
    assert.equal(decodeText(parseEntity(d.message)), 'ECDH body\r\n');

    const enc = encryptMessage(message, { recipients: [{ certificate: id.cert }], contentEncryption: cipher, sign: { signers: [{ certificate: id.cert, key: id.key }] } });
    const inner = openssl('cms', '-decrypt', '-in', file(enc), '-recip', id.certPath, '-inkey', id.keyPath);
    openssl('smime', '-verify', '-in', file(inner), '-CAfile', pki.caPath, '-out', '/dev/null');
  }
});

test('older client shapes: 3DES envelopes (Outlook 2010-2016 default), OAEP SHA-384/SHA-512, application/octet-stream smime.p7m (RFC 8551 3.2.1), micalg in other spellings or absent', async () => {
  const content = file('Content-Type: text/plain\r\n\r\nolder client\r\n');
  const keys = [{ key: alice.key, certificate: alice.cert }];
  const des3 = openssl('smime', '-encrypt', '-des3', '-in', content, alice.certPath);
  const d3 = await decryptMessage(headed(des3), { keys, allowUnauthenticated: true });
  assert.equal(d3.verdict.encryption?.contentEncryption, 'des-ede3-cbc');
  // The streaming readers (the gateway's inbound path) must read these shapes alike.
  const sink = () => new PassThrough().resume();
  assert.equal((await decryptMessageStream(Readable.from([headed(des3)]), { keys, allowUnauthenticated: true, output: sink() })).encryption?.contentEncryption, 'des-ede3-cbc');
  assert.equal(decodeText(parseEntity(d3.message)), 'older client\r\n');
  for (const md of ['sha384', 'sha512']) {
    const out = openssl('cms', '-encrypt', '-aes-256-cbc', '-in', content, '-recip', alice.certPath, '-keyopt', 'rsa_padding_mode:oaep', '-keyopt', `rsa_oaep_md:${md}`, '-keyopt', `rsa_mgf1_md:${md}`);
    const d = await decryptMessage(headed(out), { keys, allowUnauthenticated: true });
    assert.equal(d.verdict.encryption?.keyManagement, 'rsa-oaep', md);
    assert.equal(decodeText(parseEntity(d.message)), 'older client\r\n');
  }
  // The body of openssl's application/x-pkcs7-mime, relabelled as a generic attachment.
  const bodyOf = (m: Buffer): string => m.toString('latin1').split('\n\n').slice(1).join('\n\n');
  const asOctetStream = (m: Buffer): Buffer => Buffer.from(`From: alice@example.com\nMIME-Version: 1.0\nContent-Type: application/octet-stream; name="smime.p7m"\nContent-Disposition: attachment; filename="smime.p7m"\nContent-Transfer-Encoding: base64\n\n${bodyOf(m)}`, 'latin1');
  const opaque = openssl('smime', '-sign', '-nodetach', '-in', content, '-signer', alice.certPath, '-inkey', alice.keyPath);
  const v = await verifyMessage(asOctetStream(opaque), { validateSigner });
  assert.equal(v.status, 'trusted', v.summary);
  const vs = await verifyMessageStream(Readable.from([asOctetStream(opaque)]), { validateSigner, output: sink() });
  assert.equal(vs.status, 'trusted', `streaming: ${vs.summary}`);
  const aes = openssl('smime', '-encrypt', '-aes256', '-in', content, alice.certPath);
  const d = await decryptMessage(asOctetStream(aes), { keys, allowUnauthenticated: true });
  assert.equal(decodeText(parseEntity(d.message)), 'older client\r\n');
  assert.equal((await decryptMessageStream(Readable.from([asOctetStream(aes)]), { keys, allowUnauthenticated: true, output: sink() })).encryption?.contentEncryption, 'aes-256-cbc');
  // micalg is advice (RFC 8551 3.5.3): the digest is the SignerInfo's, whatever the parameter says.
  const signed = openssl('smime', '-sign', '-md', 'sha384', '-in', content, '-signer', alice.certPath, '-inkey', alice.keyPath, '-from', 'alice@example.com');
  for (const m of ['micalg=SHA-384', 'micalg=sha384', 'micalg=SHA1', '']) {
    const s = Buffer.from(signed.toString('latin1').replace('micalg="sha-384"', m), 'latin1');
    assert.notDeepEqual(s, signed);
    const vm = await verifyMessage(s, { validateSigner });
    assert.equal(vm.status, 'trusted', `${m}: ${vm.summary}`);
    assert.equal(vm.signers[0]!.algorithms.digest, 'sha384');
    const vms = await verifyMessageStream(Readable.from([s]), { validateSigner, output: sink() });
    assert.equal(vms.status, 'trusted', `streaming ${m}: ${vms.summary}`);
  }
});
