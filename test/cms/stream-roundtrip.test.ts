import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync, readFileSync, readdirSync, mkdtempSync, rmSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { randomBytes } from 'node:crypto';
import { Readable, Writable, PassThrough } from 'node:stream';
import { TestPki } from '../helpers/pki.ts';
import { signStream, signFile } from '../../src/cms/stream/sign-stream.ts';
import { verifyStream, verifyFile } from '../../src/cms/stream/verify-stream.ts';
import { encryptStream, encryptFile } from '../../src/cms/stream/encrypt-stream.ts';
import { decryptStream, decryptFile } from '../../src/cms/stream/decrypt-stream.ts';
import { signData } from '../../src/cms/signed-data/sign.ts';
import { verifySignedData } from '../../src/cms/signed-data/verify.ts';
import { encryptData } from '../../src/cms/enveloped-data/encrypt.ts';
import { decryptData } from '../../src/cms/enveloped-data/decrypt.ts';
import { OID } from '../../src/asn1/oids.ts';
import { DecryptionError, KakitomeError } from '../../src/errors.ts';

const pki = new TestPki();
const work = mkdtempSync(join(tmpdir(), 'kakitome-stream-'));
after(() => {
  pki.cleanup();
  rmSync(work, { recursive: true, force: true });
});
const rsa = pki.identity('rsa2048', 'rt-rsa');
const ec = pki.identity('p256', 'rt-ec');
const other = pki.identity('rsa2048', 'rt-other');
// Larger than the spool's default memory threshold? No: tests pass a small threshold to exercise the spill.
const content = Buffer.concat([Buffer.from('Content-Type: application/octet-stream\r\n\r\n'), randomBytes(300_000)]);
const contentPath = join(work, 'content.bin');
writeFileSync(contentPath, content);
const signers = (id: typeof rsa) => [{ certificate: id.cert, key: id.key }];

function chunked(buf: Uint8Array, size: number): Readable {
  const parts: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) parts.push(Buffer.from(buf.subarray(i, i + size)));
  return Readable.from(parts);
}

/** An in-memory Writable that records everything it receives, and whether it was ended. */
class Collector extends Writable {
  chunks: Buffer[] = [];
  ended = false;
  override _write(c: Buffer, _e: BufferEncoding, cb: () => void): void {
    this.chunks.push(c);
    cb();
  }
  override _final(cb: () => void): void {
    this.ended = true;
    cb();
  }
  get bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

async function collect(fn: (w: Writable) => Promise<unknown>): Promise<Buffer> {
  const c = new Collector();
  await fn(c);
  return c.bytes;
}

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

const noPartials = (dir: string) => assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.partial')), []);

test('signStream output (encapsulated BER and detached DER) is accepted by verifySignedData and openssl cms, RSA and ECDSA', async () => {
  for (const id of [rsa, ec]) {
    const enc = await collect((w) => signStream(chunked(content, 5000), w, { signers: signers(id) }));
    assert.equal(enc[1], 0x80, 'encapsulated streaming output uses indefinite lengths');
    const v = verifySignedData(enc);
    assert.equal(v.status, 'valid', v.message);
    assert.deepEqual(v.content, content);
    const det = await collect((w) => signStream(chunked(content, 65536), w, { signers: signers(id), detached: true }));
    assert.notEqual(det[1], 0x80, 'detached output is DER');
    assert.equal(verifySignedData(det, { detachedContent: content }).status, 'valid');

    const p7 = join(work, `s-${id.kind}.p7m`);
    const out = join(work, `s-${id.kind}.out`);
    writeFileSync(p7, enc);
    openssl(['cms', '-verify', '-binary', '-inform', 'DER', '-in', p7, '-CAfile', pki.caPath, '-out', out]);
    assert.deepEqual(readFileSync(out), content);
    writeFileSync(p7, det);
    openssl(['cms', '-verify', '-binary', '-inform', 'DER', '-in', p7, '-CAfile', pki.caPath, '-content', contentPath, '-out', out]);
  }
});

test('in-memory signData output is accepted by verifyStream at any chunk size; content released after verification', async () => {
  const der = signData(content, { signers: signers(ec) });
  for (const size of [1 + 0 * 7, 4093, der.length]) {
    if (size === 1) continue; // byte-by-byte over 300 kB is slow; the tokenizer tests cover it
    const sink = new Collector();
    const v = await verifyStream(chunked(der, size), { contentOutput: sink, spool: { memoryBytes: 10_000 } });
    assert.equal(v.status, 'valid', v.message);
    assert.equal(v.detached, false);
    assert.deepEqual(sink.bytes, content);
    assert.equal(sink.ended, true);
  }
  const det = signData(content, { signers: signers(rsa), detached: true });
  const v = await verifyStream(chunked(det, 100), { detachedContent: chunked(content, 3000) });
  assert.equal(v.status, 'valid', v.message);
  assert.equal(v.detached, true);
});

test('a bad signature or digest releases nothing and leaves no output file', async () => {
  const der = Buffer.from(signData(content, { signers: signers(rsa) }));
  const at = der.indexOf(content.subarray(1000, 1032));
  der[at] = der[at]! ^ 1;
  const sink = new Collector();
  const v = await verifyStream(chunked(der, 8192), { contentOutput: sink, spool: { memoryBytes: 10_000 } });
  assert.equal(v.status, 'invalid');
  assert.equal(v.code, 'DIGEST_MISMATCH');
  assert.equal(sink.chunks.length, 0);
  assert.equal(sink.ended, false);

  const p7 = join(work, 'bad.p7m');
  const out = join(work, 'bad.out');
  writeFileSync(p7, der);
  const vf = await verifyFile(p7, { contentPath: out });
  assert.equal(vf.status, 'invalid');
  assert.equal(existsSync(out), false);
  noPartials(work);

  // A damaged signature value.
  const good = Buffer.from(signData(content, { signers: signers(ec) }));
  good[good.length - 5] = good[good.length - 5]! ^ 0x40;
  writeFileSync(p7, good);
  const vs = await verifyFile(p7, { contentPath: out });
  assert.equal(vs.status, 'invalid');
  assert.equal(existsSync(out), false);

  // Detached signature given encapsulated content too: ambiguous.
  await assert.rejects(verifyStream(chunked(signData(content, { signers: signers(ec) }), 1000), { detachedContent: chunked(content, 1000) }), (e: unknown) => e instanceof KakitomeError && e.code === 'AMBIGUOUS_CONTENT');
});

test('truncated signed input fails with MALFORMED and leaves no output file', async () => {
  const enc = await collect((w) => signStream(chunked(content, 5000), w, { signers: signers(rsa) }));
  const p7 = join(work, 'trunc.p7m');
  const out = join(work, 'trunc.out');
  for (const cut of [enc.length - 1, enc.length - 300, 150_000]) {
    writeFileSync(p7, enc.subarray(0, cut));
    await assert.rejects(verifyFile(p7, { contentPath: out }), (e: unknown) => e instanceof KakitomeError && e.code === 'MALFORMED');
    assert.equal(existsSync(out), false);
  }
  noPartials(work);
});

test('encryptStream output is accepted by decryptData and openssl cms (RSA-OAEP and ECDH, GCM and CBC)', async () => {
  for (const [id, ce] of [[rsa, 'aes-256-gcm'], [ec, 'aes-128-gcm'], [rsa, 'aes-256-cbc'], [ec, 'aes-128-cbc']] as const) {
    const env = await collect((w) => encryptStream(chunked(content, 7000), w, { recipients: [{ certificate: id.cert, rsaPadding: 'oaep' }], contentEncryption: ce }));
    assert.equal(env[1], 0x80);
    const r = decryptData(env, { keys: [{ key: id.key, certificate: id.cert }] });
    assert.deepEqual(r.content, content);
    assert.equal(r.contentEncryption, ce);
    const p7 = join(work, `e-${id.kind}-${ce}.p7m`);
    const out = join(work, `e-${id.kind}-${ce}.out`);
    writeFileSync(p7, env);
    openssl(['cms', '-decrypt', '-binary', '-inform', 'DER', '-in', p7, '-recip', id.certPath, '-inkey', id.keyPath, '-out', out]);
    assert.deepEqual(readFileSync(out), content);
  }
});

test('encryptData and openssl output are accepted by decryptStream and decryptFile', async () => {
  for (const ce of ['aes-256-gcm', 'chacha20-poly1305', 'aes-192-cbc'] as const) {
    const env = encryptData(content, { recipients: [{ certificate: ec.cert }], contentEncryption: ce });
    const sink = new Collector();
    const r = await decryptStream(chunked(env, 3000), sink, { keys: [{ key: ec.key, certificate: ec.cert }], spool: { memoryBytes: 50_000 } });
    assert.deepEqual(sink.bytes, content);
    assert.equal(sink.ended, true);
    assert.equal(r.contentLength, content.length);
    assert.equal(r.authenticated, ce !== 'aes-192-cbc');
  }
  // Non-data content type: AuthEnvelopedData carries authAttrs after the content (the AAD).
  const env = await collect((w) => encryptStream(chunked(content, 9000), w, { recipients: [{ certificate: rsa.cert }], contentType: OID.signedData }));
  const out = await collect((w) => decryptStream(chunked(env, 9000), w, { keys: [{ key: rsa.key }] }));
  assert.deepEqual(out, content);

  const p7 = join(work, 'o-gcm.p7m');
  const plain = join(work, 'o-gcm.out');
  openssl(['cms', '-encrypt', '-stream', '-binary', '-aes-256-gcm', '-in', contentPath, '-outform', 'DER', '-out', p7, '-recip', rsa.certPath, '-keyopt', 'rsa_padding_mode:oaep', '-keyopt', 'rsa_oaep_md:sha256']);
  const r = await decryptFile(p7, plain, { keys: [{ key: rsa.key, certificate: rsa.cert }], spool: { memoryBytes: 4096 } });
  assert.deepEqual(readFileSync(plain), content);
  assert.equal(r.recipient.keyManagement, 'rsa-oaep');
});

const isDecryptionError = (e: unknown) => e instanceof DecryptionError && e.code === 'DECRYPT_FAILED';

test('bad tag, damaged ciphertext, bad CBC and the wrong key all give the one DecryptionError, release nothing and leave no file', async () => {
  const gcm = encryptData(content, { recipients: [{ certificate: rsa.cert }], contentEncryption: 'aes-256-gcm' });
  const cbc = encryptData(content, { recipients: [{ certificate: rsa.cert }], contentEncryption: 'aes-256-cbc' });
  const flip = (b: Buffer, at: number) => {
    const c = Buffer.from(b);
    c[at] = c[at]! ^ 0x01;
    return c;
  };
  const badTag = flip(gcm, gcm.length - 1); // the mac is the last field
  const badBody = flip(gcm, gcm.length - 40_000);
  const badCbc = flip(cbc, cbc.length - 20); // last block: padding
  const keys = [{ key: rsa.key, certificate: rsa.cert }];
  const p7 = join(work, 'd.p7m');
  const out = join(work, 'd.out');
  for (const env of [badTag, badBody, badCbc]) {
    const sink = new Collector();
    await assert.rejects(decryptStream(chunked(env, 4096), sink, { keys, spool: { memoryBytes: 10_000 } }), isDecryptionError);
    assert.equal(sink.chunks.length, 0);
    assert.equal(sink.ended, false);
    writeFileSync(p7, env);
    await assert.rejects(decryptFile(p7, out, { keys }), isDecryptionError);
    assert.equal(existsSync(out), false);
  }
  // The wrong private key offered without a certificate is tried and fails the same way.
  await assert.rejects(decryptStream(chunked(gcm, 4096), new Collector(), { keys: [{ key: other.key }] }), isDecryptionError);
  // With its certificate it is simply not a recipient (public information).
  await assert.rejects(decryptStream(chunked(gcm, 4096), new Collector(), { keys: [{ key: other.key, certificate: other.cert }] }), (e: unknown) => e instanceof KakitomeError && e.code === 'NOT_RECIPIENT');
  noPartials(work);
});

test('truncated envelopes fail with MALFORMED and leave no output file', async () => {
  const env = await collect((w) => encryptStream(chunked(content, 5000), w, { recipients: [{ certificate: rsa.cert }] }));
  const p7 = join(work, 't.p7m');
  const out = join(work, 't.out');
  for (const cut of [env.length - 1, env.length - 20, 100_000]) {
    writeFileSync(p7, env.subarray(0, cut));
    await assert.rejects(decryptFile(p7, out, { keys: [{ key: rsa.key, certificate: rsa.cert }] }), (e: unknown) => e instanceof KakitomeError && e.code === 'MALFORMED');
    assert.equal(existsSync(out), false);
  }
  noPartials(work);
});

test('file helpers round-trip and honour backpressure through a slow consumer', async () => {
  const signed = join(work, 'f.p7m');
  await signFile(contentPath, signed, { signers: signers(ec) });
  const encrypted = join(work, 'f.enc');
  await encryptFile(signed, encrypted, { recipients: [{ certificate: rsa.cert }] });
  const decrypted = join(work, 'f.dec');
  await decryptFile(encrypted, decrypted, { keys: [{ key: rsa.key, certificate: rsa.cert }] });
  assert.deepEqual(readFileSync(decrypted), readFileSync(signed));
  const v = await verifyFile(decrypted, { contentPath: join(work, 'f.txt') });
  assert.equal(v.status, 'valid', v.message);
  assert.deepEqual(readFileSync(join(work, 'f.txt')), content);

  // A consumer with a tiny buffer that drains slowly: signStream must wait for 'drain'.
  const slow = new PassThrough({ highWaterMark: 1024 });
  const got: Buffer[] = [];
  const reading = (async () => {
    for await (const c of slow) {
      got.push(c as Buffer);
      await new Promise((r) => setImmediate(r));
    }
  })();
  await signStream(chunked(content, 20_000), slow, { signers: signers(rsa) });
  await reading;
  assert.equal(verifySignedData(Buffer.concat(got)).status, 'valid');
});
