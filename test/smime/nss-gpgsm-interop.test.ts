/**
 * Whole-message round trips with NSS 3.87 `cmsutil` and GnuPG gpgsm 2.2, both
 * directions. Neither peer reads or writes MIME (both speak raw CMS only), so the
 * MIME side is done here exactly as a mail client built on them would: the signed
 * first part of a multipart/signed (RFC 8551 section 3.5.3) and the decoded
 * application/pkcs7-mime body go to the peer; the peer's CMS is wrapped into
 * multipart/signed or application/pkcs7-mime (RFC 8551 sections 3.2, 3.4) for Kakitome.
 *
 * Only what both peers support (docs/interop.md): RSA / ECDSA P-256 signatures, RSA
 * PKCS#1 v1.5 key transport with AES-CBC. No GCM, OAEP or ECDH envelopes.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { TestPki, type Identity } from '../helpers/pki.ts';
import { NssPeer } from '../peers/nss.ts';
import { GpgsmPeer } from '../peers/gpgsm.ts';
import type { PeerDecryption, PeerVerdict } from '../peers/openssl.ts';
import { signMessage } from '../../src/smime/sign-message.ts';
import { verifyMessage } from '../../src/smime/verify-message.ts';
import { encryptMessage } from '../../src/smime/encrypt-message.ts';
import { decryptMessage } from '../../src/smime/decrypt-message.ts';
import { decryptMessageStream } from '../../src/smime/decrypt-message-stream.ts';
import { PassThrough, Readable } from 'node:stream';
import { createSignerValidator } from '../../src/pki/create-signer-validator.ts';
import { parseEntity } from '../../src/mime/parse-entity.ts';
import { decodeBody } from '../../src/mime/decode-body.ts';
import { decodeText } from '../../src/mime/decode-text.ts';
import { getHeaderValue, type MimeEntity } from '../../src/mime/entity.ts';

const TEXT = '山田様\n\n請求書を添付いたします。ご確認ください。\n';
const ATTACHMENT = Buffer.from(Array.from({ length: 700 }, (_, i) => (i * 37 + 11) & 0xff));

/** The message as a mail client's composer hands it over: LF-only, 8-bit UTF-8 text. */
const messageFrom = (from: string): Buffer => Buffer.from(
  [
    `From: ${from}`,
    'To: bob@example.com',
    'Subject: =?UTF-8?B?6KuL5rGC5pu4?=',
    'Date: Mon, 23 Nov 2026 10:00:00 +0900',
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="part-b"',
    '',
    '--part-b',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 8bit',
    '',
    TEXT.replace(/\n$/, ''),
    '--part-b',
    'Content-Type: application/octet-stream; name="invoice.bin"',
    'Content-Disposition: attachment; filename="invoice.bin"',
    'Content-Transfer-Encoding: base64',
    '',
    ...(ATTACHMENT.toString('base64').match(/.{1,76}/g) ?? []),
    '--part-b--',
    '',
  ].join('\n'),
);

const MESSAGE = messageFrom('alice@example.com');

/** The inner entity a peer-based client would sign or encrypt: canonical CRLF, 7-bit only. */
const INNER = Buffer.from(
  [
    'Content-Type: multipart/mixed; boundary="inner-b"',
    '',
    '--inner-b',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: base64',
    '',
    Buffer.from(TEXT.replaceAll('\n', '\r\n')).toString('base64'),
    '--inner-b',
    'Content-Type: application/octet-stream; name="invoice.bin"',
    'Content-Disposition: attachment; filename="invoice.bin"',
    'Content-Transfer-Encoding: base64',
    '',
    ...(ATTACHMENT.toString('base64').match(/.{1,76}/g) ?? []),
    '--inner-b--',
    '',
  ].join('\r\n'),
);

const HEADERS = 'From: alice@example.com\r\nTo: bob@example.com\r\nSubject: from a peer\r\nMIME-Version: 1.0\r\n';

const base64Lines = (der: Uint8Array): string => (Buffer.from(der).toString('base64').match(/.{1,76}/g) ?? []).join('\r\n');

function wrapMultipartSigned(content: Buffer, signature: Uint8Array, o: { micalg?: string; headers?: string } = {}): Buffer {
  return Buffer.concat([
    Buffer.from(`${o.headers ?? HEADERS}Content-Type: multipart/signed; protocol="application/pkcs7-signature"; micalg=${o.micalg ?? 'sha-256'}; boundary="sig-b"\r\n\r\n--sig-b\r\n`),
    content,
    Buffer.from(`\r\n--sig-b\r\nContent-Type: application/pkcs7-signature; name=smime.p7s\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=smime.p7s\r\n\r\n${base64Lines(signature)}\r\n--sig-b--\r\n`),
  ]);
}

function pkcs7MimeEntity(der: Uint8Array, smimeType: 'signed-data' | 'enveloped-data'): string {
  return `Content-Type: application/pkcs7-mime; smime-type=${smimeType}; name=smime.p7m\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=smime.p7m\r\n\r\n${base64Lines(der)}\r\n`;
}

/** The text and attachment, wherever the multipart/mixed sits in `entity`. */
function assertPayload(entity: MimeEntity, label: string): void {
  let e = entity;
  while (e.contentType.type === 'multipart' && e.contentType.subtype !== 'mixed' && e.children[0]) e = e.children[0];
  assert.equal(`${e.contentType.type}/${e.contentType.subtype}`, 'multipart/mixed', label);
  assert.equal(e.children.length, 2, label);
  // The composer's body lacks the final line break (it belongs to the boundary, RFC 2046 5.1.1).
  assert.equal(decodeText(e.children[0]!).replaceAll('\r\n', '\n').replace(/\n$/, ''), TEXT.replace(/\n$/, ''), label);
  assert.deepEqual(decodeBody(e.children[1]!), ATTACHMENT, label);
}

interface Peer {
  name: string;
  verify(der: Uint8Array, detached?: Uint8Array): Promise<PeerVerdict>;
  sign(content: Uint8Array, id: Identity, detached: boolean): Promise<Buffer>;
  encrypt(content: Uint8Array, to: Identity, cipher: 'AES128' | 'AES256'): Promise<Buffer>;
  decrypt(der: Uint8Array): Promise<PeerDecryption>;
}

const pki = new TestPki();
const alice = pki.identity('rsa2048', 'alice');
const bob = pki.identity('p256', 'bob');
const validateSigner = createSignerValidator({ anchors: [pki.caCert], revocation: { mode: 'off' }, fetchCaIssuers: false });
let nss: NssPeer | undefined;
let gpg: GpgsmPeer | undefined;
const peers: Peer[] = [];

before(async () => {
  nss = await NssPeer.create(pki, [alice]);
  gpg = await GpgsmPeer.create(pki, [alice]);
  const n = nss;
  const g = gpg;
  peers.push(
    {
      name: 'NSS cmsutil',
      verify: (der, c) => n.verify(der, c),
      sign: (c, id, detached) => n.sign(c, id, { hash: 'SHA256', detached }),
      // cmsutil -E picks AES-128-CBC itself: no choice of cipher from the command line.
      encrypt: (c, to) => n.encrypt(c, [to]),
      decrypt: (der) => n.decrypt(der),
    },
    {
      name: 'gpgsm',
      verify: (der, c) => g.verify(der, c),
      sign: (c, id, detached) => g.sign(c, [id], { detached, digest: 'SHA256' }),
      encrypt: (c, to, cipher) => g.encrypt(c, [to], cipher),
      decrypt: (der) => g.decrypt(der),
    },
  );
});

after(async () => {
  nss?.cleanup();
  await gpg?.cleanup();
  pki.cleanup();
});

test('Kakitome multipart/signed (RSA and ECDSA): each peer verifies the first part detached; a changed byte fails', async () => {
  for (const id of [alice, bob]) {
    const signed = signMessage(MESSAGE, { signers: [{ certificate: id.cert, key: id.key }] });
    const top = parseEntity(signed);
    assert.equal(top.contentType.subtype, 'signed');
    const content = top.children[0]!.raw;
    assert.ok(!/(?<!\r)\n/.test(content.toString('latin1')), 'the signed part is canonical CRLF');
    const signature = decodeBody(top.children[1]!);
    const tampered = Buffer.from(content.toString('latin1').replace('invoice.bin', 'invoice.bim'), 'latin1');
    for (const p of peers) {
      const v = await p.verify(signature, content);
      assert.ok(v.verified, `${p.name} ${id.kind}: ${v.detail}`);
      const bad = await p.verify(signature, tampered);
      assert.ok(!bad.verified, `${p.name} ${id.kind} accepted a changed byte: ${bad.detail}`);
    }
  }
});

test('Kakitome opaque signed-data: each peer verifies and outputs the inner MIME entity', async () => {
  for (const id of [alice, bob]) {
    const signed = signMessage(messageFrom(id.email), { signers: [{ certificate: id.cert, key: id.key }], opaque: true });
    const top = parseEntity(signed);
    assert.equal(top.contentType.params['smime-type'], 'signed-data');
    const der = decodeBody(top);
    const ours = await verifyMessage(signed, { validateSigner });
    assert.equal(ours.status, 'trusted', ours.summary);
    for (const p of peers) {
      const v = await p.verify(der);
      assert.ok(v.verified, `${p.name} ${id.kind}: ${v.detail}`);
      const inner = parseEntity(v.content);
      assertPayload(inner, `${p.name} ${id.kind}`);
      // Header protection (RFC 9788): the signed entity carries the message's own header fields.
      assert.equal(getHeaderValue(inner, 'from'), id.email);
    }
  }
});

test('peer-signed detached CMS wrapped in multipart/signed: trusted with Kakitome; one changed byte is invalid', async () => {
  for (const p of peers) {
    const sig = await p.sign(INNER, alice, true);
    const msg = wrapMultipartSigned(INNER, sig);
    const v = await verifyMessage(msg, { validateSigner });
    assert.equal(v.status, 'trusted', `${p.name}: ${v.summary}`);
    assert.equal(v.signers.length, 1);
    assertPayload(parseEntity(v.output), p.name);
    const i = msg.indexOf('invoice.bin');
    const bad = Buffer.from(msg);
    bad[i + 8] = 0x6d; // invoice.bin -> invoice.min, inside the signed part
    const vb = await verifyMessage(bad, { validateSigner });
    assert.equal(vb.status, 'invalid', `${p.name} tampered: ${vb.summary}`);
  }
});

test('Kakitome enveloped-data (AES-128-CBC, AES-256-CBC, RSA): each peer decrypts to the inner MIME entity', async () => {
  for (const cipher of ['aes-128-cbc', 'aes-256-cbc'] as const) {
    const enc = encryptMessage(MESSAGE, { recipients: [{ certificate: alice.cert }], contentEncryption: cipher });
    const top = parseEntity(enc);
    assert.equal(top.contentType.params['smime-type'], 'enveloped-data');
    const der = decodeBody(top);
    for (const p of peers) {
      const d = await p.decrypt(der);
      assert.ok(d.decrypted, `${p.name} ${cipher}: ${d.detail}`);
      assertPayload(parseEntity(d.content), `${p.name} ${cipher}`);
    }
  }
});

test('peer enveloped-data wrapped in application/pkcs7-mime: refused unsigned by default; Kakitome decrypts it when allowed, marked unauthenticated', async () => {
  for (const p of peers) {
    for (const cipher of ['AES128', 'AES256'] as const) {
      if (p.name.startsWith('NSS') && cipher === 'AES256') continue; // cmsutil has no cipher option
      const der = await p.encrypt(INNER, alice, cipher);
      const msg = Buffer.from(HEADERS + pkcs7MimeEntity(der, 'enveloped-data'));
      await assert.rejects(decryptMessage(msg, { keys: [{ key: alice.key, certificate: alice.cert }], validateSigner }), (e: { code?: string }) => e.code === 'UNAUTH_ENC', p.name);
      const d = await decryptMessage(msg, { keys: [{ key: alice.key, certificate: alice.cert }], validateSigner, allowUnauthenticated: true });
      assert.equal(d.verdict.encryption?.contentEncryption, cipher === 'AES128' ? 'aes-128-cbc' : 'aes-256-cbc', p.name);
      assert.equal(d.verdict.encryption?.authenticated, false, p.name);
      assert.equal(d.verdict.code, 'UNAUTH_ENC', `${p.name}: ${d.verdict.summary}`);
      assertPayload(parseEntity(d.message), `${p.name} ${cipher}`);
      assert.equal(getHeaderValue(parseEntity(d.message), 'subject'), 'from a peer');
    }
  }
});

test('peer sign-then-encrypt (opaque signed-data inside enveloped-data): Kakitome decrypts and trusts the inner signature', async () => {
  for (const p of peers) {
    const signedDer = await p.sign(INNER, alice, false);
    const signedEntity = Buffer.from(pkcs7MimeEntity(signedDer, 'signed-data'));
    const envDer = await p.encrypt(signedEntity, alice, 'AES128');
    const msg = Buffer.from(HEADERS + pkcs7MimeEntity(envDer, 'enveloped-data'));
    const d = await decryptMessage(msg, { keys: [{ key: alice.key, certificate: alice.cert }], validateSigner });
    assert.equal(d.verdict.status, 'trusted', `${p.name}: ${d.verdict.summary}`);
    assert.equal(d.verdict.signers.length, 1);
    assert.equal(d.verdict.encryption?.contentEncryption, 'aes-128-cbc');
    assertPayload(parseEntity(d.message), p.name);
  }
});

// Thunderbird (NSS) and KMail (gpgsm) sign-and-encrypt: the clear-signed multipart/signed
// entity goes inside the envelope (RSA v1.5 + AES-CBC, all either peer writes).
test('Thunderbird/KMail shape: peer multipart/signed (SHA-256, SHA-384, SHA-512) inside its enveloped-data: Kakitome decrypts and trusts; a changed signed byte is invalid', async () => {
  for (const md of ['SHA256', 'SHA384', 'SHA512'] as const) {
    const micalg = md.toLowerCase().replace('sha', 'sha-');
    const signers = [
      { name: 'NSS cmsutil', sign: () => nss!.sign(INNER, alice, { hash: md, detached: true }), encrypt: (c: Uint8Array) => nss!.encrypt(c, [alice]) },
      { name: 'gpgsm', sign: () => gpg!.sign(INNER, [alice], { detached: true, digest: md }), encrypt: (c: Uint8Array) => gpg!.encrypt(c, [alice], 'AES256') },
    ];
    for (const p of signers) {
      const clearSigned = wrapMultipartSigned(INNER, await p.sign(), { micalg, headers: '' });
      for (const [label, entity] of [['good', clearSigned], ['changed', Buffer.from(clearSigned.toString('latin1').replace('invoice.bin', 'invoice.bim'), 'latin1')]] as const) {
        const msg = Buffer.from(HEADERS + pkcs7MimeEntity(await p.encrypt(entity), 'enveloped-data'));
        const d = await decryptMessage(msg, { keys: [{ key: alice.key, certificate: alice.cert }], validateSigner, allowUnauthenticated: true });
        const why = `${p.name} ${md} ${label}: ${d.verdict.summary}`;
        assert.equal(d.verdict.status, label === 'good' ? 'trusted' : 'invalid', why);
        assert.equal(d.verdict.signers[0]?.algorithms.digest, md.toLowerCase(), why);
        if (label === 'good') assertPayload(parseEntity(d.message), why);
        // The gateway's streaming reader must agree (the NSS envelope is indefinite-length BER).
        const out = new PassThrough();
        const parts: Buffer[] = [];
        out.on('data', (c: Buffer) => parts.push(c));
        const ds = await decryptMessageStream(Readable.from([msg.subarray(0, 1000), msg.subarray(1000)]), { keys: [{ key: alice.key, certificate: alice.cert }], validateSigner, allowUnauthenticated: true, output: out });
        assert.equal(ds.status, d.verdict.status, `streaming ${why}: ${ds.summary}`);
        if (label === 'good') assertPayload(parseEntity(Buffer.concat(parts)), `streaming ${why}`);
      }
    }
  }
});

test('Kakitome sign-then-encrypt (multipart/signed inside, RSA v1.5, AES-128-CBC): each peer decrypts and verifies the inner signature detached', async () => {
  const enc = encryptMessage(MESSAGE, { recipients: [{ certificate: alice.cert }], contentEncryption: 'aes-128-cbc', sign: { signers: [{ certificate: alice.cert, key: alice.key, hash: 'sha384' }] } });
  const der = decodeBody(parseEntity(enc));
  for (const p of peers) {
    const d = await p.decrypt(der);
    assert.ok(d.decrypted, `${p.name}: ${d.detail}`);
    const signed = parseEntity(d.content);
    assert.equal(signed.contentType.subtype, 'signed', p.name);
    assert.equal(signed.contentType.params.micalg, 'sha-384', p.name);
    const v = await p.verify(decodeBody(signed.children[1]!), signed.children[0]!.raw);
    assert.ok(v.verified, `${p.name}: ${v.detail}`);
    assertPayload(signed.children[0]!, p.name);
  }
});
