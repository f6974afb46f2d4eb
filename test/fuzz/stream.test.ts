/**
 * Mutation fuzzing of the streaming readers (verifyStream, decryptStream), fed in
 * chunks of random sizes so that every header and segment boundary gets split.
 *
 * Oracle:
 * - typed errors only; a DECRYPT_FAILED is the one DecryptionError;
 * - differential: whatever verifyStream calls valid, verifySignedData calls valid,
 *   and the content released is the original content;
 * - AEAD releases no plaintext unless the tag verified: a failed decryptStream of
 *   an AuthEnvelopedData wrote nothing; a successful one wrote the original.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { TestPki } from '../helpers/pki.ts';
import { signData } from '../../src/cms/signed-data/sign.ts';
import { verifySignedData } from '../../src/cms/signed-data/verify.ts';
import { encryptData } from '../../src/cms/enveloped-data/encrypt.ts';
import { verifyStream } from '../../src/cms/stream/verify-stream.ts';
import { decryptStream } from '../../src/cms/stream/decrypt-stream.ts';
import { DecryptionError } from '../../src/errors.ts';
import { fuzz, iterations, seed, timeoutFor, DECRYPTION_MESSAGE, type Prng, type Seed, REPLAYING, sink } from './fuzz-kit.ts';

const pki = new TestPki('Kakitome Fuzz Stream Root');
after(() => pki.cleanup());
const rsa = pki.identity('rsa2048');
const ec = pki.identity('p256');
const content = Buffer.from('Content-Type: text/plain\r\n\r\n' + 'streamed line of text\r\n'.repeat(40));


/** The input in chunks of random sizes (1 to 4096 octets). */
function* chunked(r: Prng, bytes: Buffer): Generator<Buffer> {
  for (let i = 0; i < bytes.length;) {
    const n = 1 + r.int(r.chance(0.3) ? 16 : 4096);
    yield bytes.subarray(i, i + n);
    i += n;
  }
}
async function* asAsync(it: Iterable<Buffer>): AsyncGenerator<Buffer> {
  yield* it;
}

const signedSeeds: Seed[] = [
  seed('rsa-enc', signData(content, { signers: [{ certificate: rsa.cert, key: rsa.key }] })),
  seed('p256-enc', signData(content, { signers: [{ certificate: ec.cert, key: ec.key }] })),
];
const envSeeds: (Seed & { aead: boolean })[] = [
  { ...seed('gcm-rsa', encryptData(content, { recipients: [{ certificate: rsa.cert }] })), aead: true },
  { ...seed('cbc-ecdh', encryptData(content, { recipients: [{ certificate: ec.cert }], contentEncryption: 'aes-128-cbc' })), aead: false },
  { ...seed('gcm-ecdh', encryptData(content, { recipients: [{ certificate: ec.cert }], contentEncryption: 'aes-128-gcm' })), aead: true },
];
const keysFor = (name: string) => (name.endsWith('rsa') ? [{ key: rsa.key, certificate: rsa.cert }] : [{ key: ec.key, certificate: ec.cert }]);

test('verifyStream: typed errors only, and agrees with verifySignedData on what is valid', { timeout: timeoutFor(1000, 20) }, async () => {
  let valid = 0;
  await fuzz('verify-stream', signedSeeds, iterations(1000), async (m, s, r) => {
    const out = sink();
    const v = await verifyStream(asAsync(chunked(r, m.bytes)), { contentOutput: out.writable });
    if (v.status !== 'valid') {
      assert.equal(out.bytes().length, 0, `${s.name}: ${m.what}: content released for an invalid signature`);
      return;
    }
    valid++;
    assert.deepEqual(out.bytes(), content, `${s.name}: ${m.what}: valid with other content`);
    const mem = verifySignedData(m.bytes);
    assert.equal(mem.status, 'valid', `${s.name}: ${m.what}: streaming valid, in-memory ${mem.code}`);
  });
  assert.ok(REPLAYING || valid > 0);
});

test('decryptStream: typed errors only, one DecryptionError, no AEAD plaintext before the tag', { timeout: timeoutFor(1000, 20) }, async () => {
  await fuzz('decrypt-stream', envSeeds, iterations(1000), async (m, base, r) => {
    const s = base as (typeof envSeeds)[number];
    const out = sink();
    try {
      const res = await decryptStream(asAsync(chunked(r, m.bytes)), out.writable, { keys: keysFor(s.name) });
      if (res.authenticated) assert.deepEqual(out.bytes(), content, `${s.name}: ${m.what}: authenticated other plaintext`);
    } catch (e) {
      if (s.aead) assert.equal(out.bytes().length, 0, `${s.name}: ${m.what}: AEAD plaintext released before failing`);
      throw e;
    }
  }, (e, m, s) => {
    if (e.code === 'DECRYPT_FAILED') {
      assert.ok(e instanceof DecryptionError, `${s.name}: ${m.what}: DECRYPT_FAILED that is not a DecryptionError`);
      assert.equal(e.message, DECRYPTION_MESSAGE);
    }
  });
});
