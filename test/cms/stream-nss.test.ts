/**
 * The streaming reader against a peer that writes indefinite-length BER (NSS
 * cmsutil, Thunderbird's engine), and the streaming writers' BER read by NSS.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { TestPki } from '../helpers/pki.ts';
import { NssPeer } from '../peers/nss.ts';
import { signStream } from '../../src/cms/stream/sign-stream.ts';
import { verifyStream } from '../../src/cms/stream/verify-stream.ts';
import { encryptStream } from '../../src/cms/stream/encrypt-stream.ts';
import { decryptStream } from '../../src/cms/stream/decrypt-stream.ts';

const pki = new TestPki();
const rsa = pki.identity('rsa2048', 'nss-stream-rsa');
const ec = pki.identity('p256', 'nss-stream-ec');
let nss: NssPeer;
before(async () => {
  nss = await NssPeer.create(pki, [rsa, ec]);
});
after(() => {
  nss?.cleanup();
  pki.cleanup();
});
const content = Buffer.concat([Buffer.from('Content-Type: text/plain\r\n\r\n'), Buffer.from(randomBytes(90_000).toString('base64'))]);

function chunked(buf: Uint8Array, size: number): Readable {
  const parts: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) parts.push(Buffer.from(buf.subarray(i, i + size)));
  return Readable.from(parts);
}
function collector(): Writable & { bytes(): Buffer } {
  const chunks: Buffer[] = [];
  const w = new Writable({
    write(c: Buffer, _e, cb) {
      chunks.push(c);
      cb();
    },
  });
  return Object.assign(w, { bytes: () => Buffer.concat(chunks) });
}

test('NSS signatures (indefinite BER) verify with verifyStream, encapsulated and detached', async () => {
  for (const id of [rsa, ec]) {
    const enc = await nss.sign(content, id, { hash: 'SHA256', detached: false });
    const out = collector();
    const v = await verifyStream(chunked(enc, 1000), { contentOutput: out });
    assert.equal(v.status, 'valid', v.message);
    assert.deepEqual(out.bytes(), content);
    const det = await nss.sign(content, id, { hash: 'SHA256', detached: true });
    assert.equal((await verifyStream(chunked(det, 333), { detachedContent: chunked(content, 4096) })).status, 'valid');
  }
});

test('NSS envelopes (AES-128-CBC, RSA v1.5) decrypt with decryptStream', async () => {
  const env = await nss.encrypt(content, [rsa]);
  const out = collector();
  const r = await decryptStream(chunked(env, 777), out, { keys: [{ key: rsa.key, certificate: rsa.cert }] });
  assert.deepEqual(out.bytes(), content);
  assert.equal(r.authenticated, false);
  assert.equal(r.contentEncryption, 'aes-128-cbc');
});

test('NSS reads signStream (BER) and encryptStream CBC output', async () => {
  for (const id of [rsa, ec]) {
    const signed = collector();
    await signStream(chunked(content, 5000), signed, { signers: [{ certificate: id.cert, key: id.key }] });
    const v = await nss.verify(signed.bytes());
    assert.ok(v.verified, v.detail);
    assert.deepEqual(v.content, content);
  }
  const env = collector();
  await encryptStream(chunked(content, 5000), env, { recipients: [{ certificate: rsa.cert }], contentEncryption: 'aes-128-cbc' });
  const d = await nss.decrypt(env.bytes());
  assert.ok(d.decrypted, d.detail);
  assert.deepEqual(d.content, content);
});
