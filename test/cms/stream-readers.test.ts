import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { TestPki } from '../helpers/pki.ts';
import { readSignedDataStream } from '../../src/cms/stream/read-signed-data-stream.ts';
import { readEnvelopedDataStream } from '../../src/cms/stream/read-enveloped-data-stream.ts';
import { parseSignedData } from '../../src/cms/signed-data/parse.ts';
import { parseContentInfo } from '../../src/cms/content-info.ts';
import { decode, readOctets, Tag } from '../../src/asn1/ber.ts';
import { OID } from '../../src/asn1/oids.ts';
import { sequence, oid, explicit, integer, setOf, octetString } from '../../src/asn1/der.ts';
import { KakitomeError } from '../../src/errors.ts';

const pki = new TestPki();
after(() => pki.cleanup());
const rsa = pki.identity('rsa2048', 'stream-rsa');
const ec = pki.identity('p256', 'stream-ec');
const content = Buffer.concat([Buffer.from('Content-Type: text/plain\r\n\r\n'), randomBytes(70_000)]);
const contentPath = join(pki.dir, 'content.bin');
writeFileSync(contentPath, content);

function openssl(args: string[]): Buffer {
  const out = join(pki.dir, `out-${randomBytes(4).toString('hex')}.der`);
  execFileSync('openssl', [...args, '-in', contentPath, '-binary', '-outform', 'DER', '-out', out], { stdio: ['ignore', 'ignore', 'pipe'] });
  return readFileSync(out);
}

/** The input delivered in chunks of `size` bytes (1 = byte by byte). */
function chunked(buf: Uint8Array, size: number): Readable {
  const parts: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) parts.push(Buffer.from(buf.subarray(i, i + size)));
  return Readable.from(parts);
}

const signedStreamed = openssl(['cms', '-sign', '-nodetach', '-stream', '-signer', rsa.certPath, '-inkey', rsa.keyPath, '-md', 'sha256']);
const signedDer = openssl(['cms', '-sign', '-nodetach', '-signer', ec.certPath, '-inkey', ec.keyPath, '-md', 'sha256']);

test('openssl -stream output (indefinite BER) and DER output give the content and the SignedData fields, at any chunk size', async () => {
  assert.equal(signedStreamed[1], 0x80, 'openssl -stream writes indefinite lengths');
  for (const input of [signedStreamed, signedDer]) {
    const whole = parseSignedData(parseContentInfo(input).content);
    for (const size of [1, 13, 4096, input.length]) {
      if (size === 1 && input === signedDer) continue; // one byte-by-byte run is enough
      const got: Buffer[] = [];
      let announced: string[] = [];
      const parts = await readSignedDataStream(chunked(input, size), {
        onDigestAlgorithms: (algs) => (announced = algs.map((a) => a.oid)),
        onContent: (c) => void got.push(Buffer.from(c)),
      });
      assert.deepEqual(Buffer.concat(got), content);
      assert.equal(parts.hadContent, true);
      assert.equal(parts.contentBytes, content.length);
      assert.deepEqual(announced, [OID.sha256]);
      const detached = parseSignedData(parts.detachedForm);
      assert.equal(detached.eContent, undefined);
      assert.equal(detached.contentType, OID.data);
      assert.deepEqual(detached.signerInfos.map((s) => Buffer.from(s.der)), whole.signerInfos.map((s) => Buffer.from(s.der)));
      assert.equal(detached.certificates.length, whole.certificates.length);
    }
  }
});

test('a detached signature streams no content', async () => {
  const detachedSig = openssl(['cms', '-sign', '-signer', rsa.certPath, '-inkey', rsa.keyPath, '-md', 'sha256']);
  let n = 0;
  const parts = await readSignedDataStream(chunked(detachedSig, 100), { onDigestAlgorithms: () => undefined, onContent: () => void n++ });
  assert.equal(parts.hadContent, false);
  assert.equal(n, 0);
});

const code = async (p: Promise<unknown>): Promise<string> => {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof KakitomeError, `expected KakitomeError, got ${String(e)}`);
    return e.code;
  }
  assert.fail('expected a failure');
};

test('truncated, extended or retyped SignedData streams fail with MALFORMED', async () => {
  const hooks = { onDigestAlgorithms: () => undefined, onContent: () => undefined };
  for (const cut of [5, 40, 1000, signedStreamed.length - 1]) {
    assert.equal(await code(readSignedDataStream(chunked(signedStreamed.subarray(0, cut), 512), hooks)), 'MALFORMED');
  }
  assert.equal(await code(readSignedDataStream(chunked(Buffer.concat([signedDer, Buffer.of(0)]), 512), hooks)), 'MALFORMED');
  const enveloped = openssl(['cms', '-encrypt', '-aes-256-gcm', '-recip', rsa.certPath]);
  assert.equal(await code(readSignedDataStream(chunked(enveloped, 512), hooks)), 'MALFORMED');
});

test('AuthEnvelopedData and EnvelopedData: the ciphertext and the envelope fields, at any chunk size', async () => {
  for (const cipher of ['-aes-256-gcm', '-aes-128-cbc']) {
    for (const stream of [true, false]) {
      const env = openssl(['cms', '-encrypt', cipher, ...(stream ? ['-stream'] : []), '-recip', ec.certPath, '-keyopt', 'ecdh_kdf_md:sha256']);
      // The ciphertext as the in-memory reader sees it.
      const ci = parseContentInfo(env);
      const fields = ci.content.children();
      const eci = fields.find((f, i) => i > 0 && f.tag === Tag.SEQUENCE)!;
      const enc = eci.children()[2]!;
      const expected = enc.constructed ? Buffer.concat(enc.children().map((c) => Buffer.from(readOctets(c)))) : Buffer.from(enc.value);
      for (const size of [7, 65536]) {
        const got: Buffer[] = [];
        const parts = await readEnvelopedDataStream(chunked(env, size), (c) => void got.push(Buffer.from(c)));
        assert.deepEqual(Buffer.concat(got), expected);
        assert.equal(parts.contentType, cipher.includes('gcm') ? OID.authEnvelopedData : OID.envelopedData);
        assert.equal(parts.hadContent, true);
        // Re-assembled envelope: same fields except the content.
        const kids = parts.withoutContent.children();
        assert.equal(kids.length, fields.length);
        assert.deepEqual(Buffer.from(kids[1]!.bytes), Buffer.from(fields[1]!.bytes)); // recipientInfos as received
        assert.equal(decode(parts.contentInfo).tag, Tag.SEQUENCE);
      }
    }
  }
});

test('eContent [0] with no OCTET STRING, or two, is rejected as the in-memory parser does', async () => {
  const hooks = { onDigestAlgorithms: () => undefined, onContent: () => undefined };
  const signer = parseSignedData(parseContentInfo(signedDer).content).signerInfos[0]!.der;
  const build = (inner: Uint8Array[]) =>
    sequence(oid(OID.signedData), explicit(0, sequence(integer(1), setOf([sequence(oid(OID.sha256))]), sequence(oid(OID.data), explicit(0, Buffer.concat(inner))), setOf([signer]))));
  assert.equal(await code(readSignedDataStream(chunked(build([]), 64), hooks)), 'MALFORMED');
  assert.equal(await code(readSignedDataStream(chunked(build([octetString(Buffer.from('a')), octetString(Buffer.from('b'))]), 64), hooks)), 'MALFORMED');
  const ok = await readSignedDataStream(chunked(build([octetString(Buffer.alloc(0))]), 64), hooks);
  assert.equal(ok.hadContent, true);
  assert.equal(ok.contentBytes, 0);
});
