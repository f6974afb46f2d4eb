import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { PassThrough, Readable } from 'node:stream';
import { TestPki } from '../helpers/pki.ts';
import { signMessage } from '../../src/smime/sign-message.ts';
import { signMessageStream } from '../../src/smime/sign-message-stream.ts';
import { verifyMessage } from '../../src/smime/verify-message.ts';
import { verifyMessageStream } from '../../src/smime/verify-message-stream.ts';
import { readFileChunks } from '../../src/cms/stream/read-file-chunks.ts';
import { writeFileSync } from 'node:fs';
import { createSignerValidator } from '../../src/pki/create-signer-validator.ts';
import { isKakitomeError } from '../../src/errors.ts';
import { signData } from '../../src/cms/signed-data/sign.ts';
import { buildEntity, buildMultipartBody } from '../../src/mime/build-entity.ts';

const pki = new TestPki();
after(() => pki.cleanup());
const alice = pki.identity('rsa2048', 'alice');
const signers = [{ certificate: alice.cert, key: alice.key }];
const validateSigner = createSignerValidator({ anchors: [pki.caCert], revocation: { mode: 'off' }, fetchCaIssuers: false });

function chunks(input: Buffer, size: number): Readable {
  return Readable.from((function* () {
    for (let i = 0; i < input.length; i += size) yield input.subarray(i, i + size);
  })());
}

async function streamVerify(input: Buffer, size: number) {
  const out = new PassThrough();
  const parts: Buffer[] = [];
  out.on('data', (c: Buffer) => parts.push(c));
  const verdict = await verifyMessageStream(chunks(input, size), { validateSigner, output: out });
  return { verdict, output: Buffer.concat(parts) };
}

const message = Buffer.from('From: alice@example.com\r\nTo: bob@example.com\r\nSubject: =?UTF-8?B?5pel5pys6Kqe?=\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n本文です。\r\n\r\nsecond paragraph\r\n');

test('streaming verification agrees with verifyMessage on verdict and output, at any chunk size', async () => {
  const signed = signMessage(message, { signers });
  const reference = await verifyMessage(signed, { validateSigner });
  assert.equal(reference.status, 'trusted');
  for (const size of [1, 7, 100, 1 << 16]) {
    const { verdict, output } = await streamVerify(signed, size);
    assert.equal(verdict.status, 'trusted', `${size}: ${verdict.summary}`);
    assert.deepEqual(verdict.protectedHeaders, reference.protectedHeaders);
    assert.deepEqual(output, reference.output, `output at chunk size ${size}`);
  }
});

test('streaming verification of a large streamed signature, of openssl smime output, and of tampering', async () => {
  const big = Buffer.concat([Buffer.from('From: alice@example.com\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n'), Buffer.from(Array.from({ length: 3 << 20 }, (_, i) => (i * 7 + (i >> 11)) & 0xff))]);
  const out = new PassThrough();
  const parts: Buffer[] = [];
  out.on('data', (c: Buffer) => parts.push(c));
  await signMessageStream(chunks(big, 1 << 16), out, { signers });
  const signedBig = Buffer.concat(parts);
  const a = await streamVerify(signedBig, 12345);
  assert.equal(a.verdict.status, 'trusted', a.verdict.summary);
  assert.deepEqual(a.output, (await verifyMessage(signedBig)).output);

  const path = `${pki.dir}/content.eml`;
  execFileSync('sh', ['-c', `printf 'Content-Type: text/plain\\r\\n\\r\\nfrom openssl\\r\\n' > ${path}`]);
  const ossl = execFileSync('openssl', ['smime', '-sign', '-in', path, '-signer', alice.certPath, '-inkey', alice.keyPath, '-from', 'alice@example.com']);
  assert.equal((await streamVerify(ossl, 50)).verdict.status, 'trusted');

  const tampered = Buffer.from(signMessage(message, { signers, headerProtection: false }).toString('latin1').replace('second paragraph', 'second Paragraph'), 'latin1');
  const t = await streamVerify(tampered, 64);
  assert.equal(t.verdict.status, 'invalid');
  assert.equal(t.verdict.code, 'DIGEST_MISMATCH');
});

test('other structures fall back to verifyMessage; a third part is MALFORMED', async () => {
  const opaque = signMessage(message, { signers, opaque: true });
  const { verdict, output } = await streamVerify(opaque, 333);
  assert.equal(verdict.status, 'trusted');
  assert.deepEqual(output, (await verifyMessage(opaque)).output);
  const three = Buffer.from(signMessage(message, { signers }).toString('latin1').replace(/(\r\n--([^\r\n]+)--\r\n)$/, '\r\n--$2\r\nContent-Type: text/plain\r\n\r\nextra\r\n--$2--\r\n'), 'latin1');
  await assert.rejects(streamVerify(three, 100), (e) => isKakitomeError(e, 'MALFORMED'));
});

test('lines that start like the boundary but are not delimiters stay content, at every chunk size', async () => {
  const content = Buffer.from('Content-Type: text/plain\r\n\r\n--bnd-x is not a delimiter\r\n--bnd\tpadding then text\r\n--bnd--x\r\nend\r\n');
  const der = signData(content, { signers, detached: true });
  const msg = buildEntity(
    [['From', 'alice@example.com'], ['Content-Type', 'multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256; boundary=bnd']],
    buildMultipartBody('bnd', [content, Buffer.concat([Buffer.from('Content-Type: application/pkcs7-signature\r\nContent-Transfer-Encoding: base64\r\n\r\n'), Buffer.from(der.toString('base64').replace(/.{76}/g, '$&\r\n'))])]),
  );
  const reference = await verifyMessage(msg, { validateSigner });
  assert.equal(reference.status, 'trusted');
  for (let size = 1; size <= 23; size += 2) {
    const { verdict, output } = await streamVerify(msg, size);
    assert.equal(verdict.status, 'trusted', `${size}: ${verdict.summary}`);
    assert.deepEqual(output, reference.output);
  }
});

test('a signed part whose header section ends with mixed line breaks is cut where verifyMessage cuts it (no signed text dropped)', async () => {
  // Found by test/fuzz/message-stream.test.ts: "\n\r\n" ends the header section for parseHeaderSection;
  // a reader that looks only for "\r\n\r\n" would skip the first paragraph under a trusted verdict.
  for (const head of ['Content-Type: text/plain\n\r\n', 'Content-Type: text/plain\r\n\n', 'Content-Type: text/plain\n\n', '\n', '\r\n']) {
    const content = Buffer.from(`${head}Do NOT pay Mallory.\r\n\r\nRegards, Alice\r\n`);
    const der = signData(content, { signers, detached: true });
    const msg = buildEntity(
      [['From', 'alice@example.com'], ['Content-Type', 'multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256; boundary=bnd']],
      buildMultipartBody('bnd', [content, Buffer.concat([Buffer.from('Content-Type: application/pkcs7-signature\r\nContent-Transfer-Encoding: base64\r\n\r\n'), Buffer.from(der.toString('base64').replace(/.{76}/g, '$&\r\n'))])]),
    );
    const reference = await verifyMessage(msg, { validateSigner });
    assert.equal(reference.status, 'trusted', JSON.stringify(head));
    assert.match(reference.output.toString('latin1'), /Do NOT pay Mallory/);
    for (const size of [1, 3, 64, 1 << 16]) {
      const { verdict, output } = await streamVerify(msg, size);
      assert.equal(verdict.status, 'trusted', `${JSON.stringify(head)} at ${size}`);
      assert.deepEqual(output, reference.output, `${JSON.stringify(head)} at ${size}`);
    }
  }
});

test('input read with reused buffers (readFileChunks) gives the same verdict and output', async () => {
  const big = Buffer.concat([Buffer.from('From: alice@example.com\r\nContent-Type: text/plain\r\n\r\n'), Buffer.from('line of text\r\n'.repeat(40_000))]);
  const signed = signMessage(big, { signers });
  const reference = await verifyMessage(signed, { validateSigner });
  const path = `${pki.dir}/reused.eml`;
  writeFileSync(path, signed);
  for (const size of [4096, 65_536]) {
    const out = new PassThrough();
    const parts: Buffer[] = [];
    out.on('data', (c: Buffer) => parts.push(c));
    const verdict = await verifyMessageStream(readFileChunks(path, size), { validateSigner, output: out });
    assert.equal(verdict.status, 'trusted', verdict.summary);
    assert.deepEqual(Buffer.concat(parts), reference.output, `chunks of ${size}`);
  }
});
