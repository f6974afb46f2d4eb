/**
 * Kakitome <-> OpenSSL 3.0 `openssl cms`, both directions, every algorithm OpenSSL 3.0
 * supports in CMS. Not supported by this peer (recorded in docs/interop.md, not
 * asserted): Ed25519/Ed448 signatures, ChaCha20-Poly1305, X25519/X448 key agreement.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { TestPki, type Identity } from '../helpers/pki.ts';
import { Workdir } from '../peers/run-peer.ts';
import { opensslSign, opensslVerify, opensslEncrypt, opensslDecrypt, type OpensslCipher, type OpensslDigest, type OpensslRecipient } from '../peers/openssl.ts';
import {
  interopContent, standardIdentities, type StandardIdentities, kakitomeSign, kakitomeEncrypt, assertKakitomeVerifies, assertKakitomeRejectsTampered, assertKakitomeDecrypts, tamperInside,
  type KCipher, type KHash, type KRecipient,
} from '../peers/kakitome-side.ts';
import { isKakitomeError } from '../../src/errors.ts';
import { decryptData } from '../../src/cms/enveloped-data/decrypt.ts';
import { verifySignedData } from '../../src/cms/signed-data/verify.ts';

const { content: CONTENT, tampered: TAMPERED } = interopContent('OpenSSL 3.0');

let pki: TestPki;
let w: Workdir;
let ids: StandardIdentities;

before(() => {
  pki = new TestPki();
  w = new Workdir('openssl');
  ids = standardIdentities(pki);
});

after(() => {
  w?.cleanup();
  pki?.cleanup();
});

interface SignCase { name: string; id: () => Identity; hash: KHash; pss?: boolean }
const SIGN_CASES: SignCase[] = [
  { name: 'RSA PKCS#1 v1.5 SHA-256', id: () => ids.rsa, hash: 'sha256' },
  { name: 'RSA PKCS#1 v1.5 SHA-384', id: () => ids.rsa, hash: 'sha384' },
  { name: 'RSA PKCS#1 v1.5 SHA-512', id: () => ids.rsa, hash: 'sha512' },
  { name: 'RSASSA-PSS SHA-256', id: () => ids.rsa, hash: 'sha256', pss: true },
  { name: 'RSASSA-PSS SHA-384', id: () => ids.rsa, hash: 'sha384', pss: true },
  { name: 'RSASSA-PSS SHA-512', id: () => ids.rsaB, hash: 'sha512', pss: true },
  { name: 'ECDSA P-256 SHA-256', id: () => ids.p256, hash: 'sha256' },
  { name: 'ECDSA P-384 SHA-384', id: () => ids.p384, hash: 'sha384' },
  { name: 'ECDSA P-521 SHA-512', id: () => ids.p521, hash: 'sha512' },
];

for (const c of SIGN_CASES) {
  for (const detached of [true, false]) {
    const mode = detached ? 'detached' : 'encapsulated';

    test(`sign ${c.name} ${mode}: Kakitome -> OpenSSL verifies; tampered fails`, async () => {
      const id = c.id();
      const der = await kakitomeSign(CONTENT, [{ id, hash: c.hash, rsaPadding: c.pss ? 'pss' : 'pkcs1' }], detached);
      const v = await opensslVerify(w, der, { caPath: pki.caPath, ...(detached ? { detachedContent: CONTENT } : {}) });
      assert.ok(v.verified, v.detail);
      assert.deepEqual(v.content, CONTENT);
      const bad = detached
        ? await opensslVerify(w, der, { caPath: pki.caPath, detachedContent: TAMPERED })
        : await opensslVerify(w, tamperInside(der, Buffer.from('OpenSSL 3.0.')), { caPath: pki.caPath });
      assert.ok(!bad.verified, `tampered accepted: ${bad.detail}`);
    });

    test(`sign ${c.name} ${mode}: OpenSSL -> Kakitome verifies; tampered fails`, async () => {
      const id = c.id();
      const der = await opensslSign(w, CONTENT, { signers: [{ id, pss: !!c.pss }], md: c.hash as OpensslDigest, detached });
      await assertKakitomeVerifies(der, { content: CONTENT, detached, signers: 1, label: c.name });
      if (detached) {
        await assertKakitomeRejectsTampered(der, TAMPERED, c.name);
      } else {
        const r = await verifySignedData(tamperInside(der, Buffer.from('OpenSSL 3.0.')), {});
        assert.equal(r.status, 'invalid');
        assert.equal(r.signers[0]?.code, 'DIGEST_MISMATCH');
      }
    });
  }
}

test('sign with three signers (RSA, P-256, P-384): Kakitome -> OpenSSL verifies all', async () => {
  const der = await kakitomeSign(CONTENT, [{ id: ids.rsa, hash: 'sha256' }, { id: ids.p256, hash: 'sha256' }, { id: ids.p384, hash: 'sha384' }], true);
  const v = await opensslVerify(w, der, { caPath: pki.caPath, detachedContent: CONTENT });
  assert.ok(v.verified, v.detail);
  const bad = await opensslVerify(w, der, { caPath: pki.caPath, detachedContent: TAMPERED });
  assert.ok(!bad.verified);
});

test('sign with three signers (RSA PSS, P-256, P-521): OpenSSL -> Kakitome verifies all', async () => {
  for (const detached of [true, false]) {
    const der = await opensslSign(w, CONTENT, { signers: [{ id: ids.rsa, pss: true }, { id: ids.p256 }, { id: ids.p521 }], md: 'sha256', detached });
    await assertKakitomeVerifies(der, { content: CONTENT, detached, signers: 3, label: 'three signers' });
  }
});

// ---------------------------------------------------------------- envelopes

interface KeyCase { name: string; k: () => KRecipient; o: () => OpensslRecipient }
/** Kakitome -> OpenSSL: what Kakitome sends (OAEP SHA-256, KDF SHA-256 or longer). */
const SEND_KEYS: KeyCase[] = [
  { name: 'RSA PKCS#1 v1.5', k: () => ({ id: ids.rsa, rsaPadding: 'pkcs1' }), o: () => ({ id: ids.rsa }) },
  { name: 'RSAES-OAEP SHA-256', k: () => ({ id: ids.rsaB, rsaPadding: 'oaep' }), o: () => ({ id: ids.rsaB }) },
  { name: 'ECDH P-256 KDF SHA-256', k: () => ({ id: ids.p256, kdfHash: 'sha256' }), o: () => ({ id: ids.p256 }) },
  { name: 'ECDH P-384 KDF SHA-384', k: () => ({ id: ids.p384, kdfHash: 'sha384' }), o: () => ({ id: ids.p384 }) },
  { name: 'ECDH P-521 KDF SHA-512', k: () => ({ id: ids.p521, kdfHash: 'sha512' }), o: () => ({ id: ids.p521 }) },
  { name: 'ECDH P-521 KDF SHA-256', k: () => ({ id: ids.p521, kdfHash: 'sha256' }), o: () => ({ id: ids.p521 }) },
];
/** OpenSSL -> Kakitome: OpenSSL's SHA-1 defaults too (receive what is still in use). */
const RECEIVE_KEYS: Array<{ name: string; r: () => OpensslRecipient }> = [
  { name: 'RSA PKCS#1 v1.5', r: () => ({ id: ids.rsa }) },
  { name: 'RSAES-OAEP SHA-1 (OpenSSL default)', r: () => ({ id: ids.rsa, rsa: 'oaep' }) },
  { name: 'RSAES-OAEP SHA-256', r: () => ({ id: ids.rsaB, rsa: 'oaep-sha256' }) },
  { name: 'ECDH P-256 KDF SHA-1 (OpenSSL default)', r: () => ({ id: ids.p256 }) },
  { name: 'ECDH P-256 KDF SHA-256', r: () => ({ id: ids.p256, kdf: 'sha256' }) },
  { name: 'ECDH P-384 KDF SHA-1 (OpenSSL default)', r: () => ({ id: ids.p384 }) },
  { name: 'ECDH P-521 KDF SHA-1 (OpenSSL default)', r: () => ({ id: ids.p521 }) },
  { name: 'ECDH P-384 KDF SHA-256', r: () => ({ id: ids.p384, kdf: 'sha256' }) },
  { name: 'ECDH P-384 KDF SHA-384', r: () => ({ id: ids.p384, kdf: 'sha384' }) },
  { name: 'ECDH P-521 KDF SHA-256', r: () => ({ id: ids.p521, kdf: 'sha256' }) },
  { name: 'ECDH P-521 KDF SHA-512', r: () => ({ id: ids.p521, kdf: 'sha512' }) },
];
const SEND_CIPHERS: KCipher[] = ['aes-128-gcm', 'aes-192-gcm', 'aes-256-gcm', 'aes-128-cbc', 'aes-192-cbc', 'aes-256-cbc'];
const RECEIVE_CIPHERS: OpensslCipher[] = ['aes-128-gcm', 'aes-192-gcm', 'aes-256-gcm', 'aes-128-cbc', 'aes-192-cbc', 'aes-256-cbc'];

for (const kc of SEND_KEYS) {
  test(`encrypt ${kc.name} (AES-256-GCM and AES-128-CBC): Kakitome -> OpenSSL decrypts`, async () => {
    for (const cipher of ['aes-256-gcm', 'aes-128-cbc'] as const) {
      const der = await kakitomeEncrypt(CONTENT, [kc.k()], cipher);
      const d = await opensslDecrypt(w, der, kc.o().id);
      assert.ok(d.decrypted, `${cipher}: ${d.detail}`);
      assert.deepEqual(d.content, CONTENT);
    }
  });
}

for (const cipher of SEND_CIPHERS) {
  test(`encrypt ${cipher} to RSA and P-256: Kakitome -> OpenSSL decrypts; tampered fails`, async () => {
    const der = await kakitomeEncrypt(CONTENT, [{ id: ids.rsa }, { id: ids.p256 }], cipher);
    for (const id of [ids.rsa, ids.p256]) {
      const d = await opensslDecrypt(w, der, id);
      assert.ok(d.decrypted, d.detail);
      assert.deepEqual(d.content, CONTENT);
    }
    if (cipher.endsWith('gcm')) {
      // The last bytes of a DER AuthEnvelopedData are the MAC: flip one, OpenSSL must refuse.
      const bad = Buffer.from(der);
      bad[bad.length - 1]! ^= 0x01;
      const d = await opensslDecrypt(w, bad, ids.rsa);
      assert.ok(!d.decrypted, `tampered GCM accepted: ${d.detail}`);
    }
  });
}

for (const kc of RECEIVE_KEYS) {
  test(`encrypt ${kc.name} (AES-128-GCM and AES-256-CBC): OpenSSL -> Kakitome decrypts`, async () => {
    for (const cipher of ['aes-128-gcm', 'aes-256-cbc'] as const) {
      const r = kc.r();
      const der = await opensslEncrypt(w, CONTENT, { recipients: [r], cipher });
      await assertKakitomeDecrypts(der, r.id, { content: CONTENT, label: `${kc.name} ${cipher}`, contentEncryption: cipher, authenticated: cipher.endsWith('gcm') });
    }
  });
}

for (const cipher of RECEIVE_CIPHERS) {
  test(`encrypt ${cipher} to RSA and P-384: OpenSSL -> Kakitome decrypts; tampered fails`, async () => {
    const der = await opensslEncrypt(w, CONTENT, { recipients: [{ id: ids.rsa }, { id: ids.p384, kdf: 'sha256' }], cipher });
    for (const id of [ids.rsa, ids.p384]) {
      await assertKakitomeDecrypts(der, id, { content: CONTENT, label: cipher, contentEncryption: cipher, authenticated: cipher.endsWith('gcm') });
    }
    if (cipher.endsWith('gcm')) {
      // DER AuthEnvelopedData ends with the MAC (RFC 5083 2.1): a flipped bit must fail as DECRYPT_FAILED.
      const bad = Buffer.from(der);
      bad[bad.length - 1]! ^= 0x01;
      await assert.rejects(
        async () => decryptData(bad, { keys: [{ key: ids.rsa.key, certificate: ids.rsa.cert }] }),
        (e: unknown) => isKakitomeError(e, 'DECRYPT_FAILED'),
      );
    }
  });
}

test('encrypt to five recipients (RSA v1.5, OAEP, P-256, P-384, P-521): both directions', async () => {
  const k = await kakitomeEncrypt(CONTENT, [
    { id: ids.rsa }, { id: ids.rsaB, rsaPadding: 'oaep' }, { id: ids.p256 }, { id: ids.p384 }, { id: ids.p521 },
  ], 'aes-256-gcm');
  for (const id of Object.values(ids)) {
    const d = await opensslDecrypt(w, k, id);
    assert.ok(d.decrypted, `${id.kind}: ${d.detail}`);
    assert.deepEqual(d.content, CONTENT);
  }
  const o = await opensslEncrypt(w, CONTENT, {
    recipients: [{ id: ids.rsa }, { id: ids.rsaB, rsa: 'oaep-sha256' }, { id: ids.p256, kdf: 'sha256' }, { id: ids.p384 }, { id: ids.p521, kdf: 'sha512' }],
    cipher: 'aes-128-cbc',
  });
  for (const id of Object.values(ids)) {
    await assertKakitomeDecrypts(o, id, { content: CONTENT, label: `five recipients, ${id.kind}`, contentEncryption: 'aes-128-cbc', authenticated: false });
  }
});

test('subjectKeyIdentifier as SignerIdentifier and RecipientIdentifier (RSA, P-256): Kakitome -> OpenSSL', async () => {
  for (const id of [ids.rsa, ids.p256]) {
    const sig = await kakitomeSign(CONTENT, [{ id, identifier: 'subjectKeyIdentifier' }], true);
    const v = await opensslVerify(w, sig, { caPath: pki.caPath, detachedContent: CONTENT });
    assert.ok(v.verified, v.detail);
    const env = await kakitomeEncrypt(CONTENT, [{ id, identifier: 'subjectKeyIdentifier' }], 'aes-128-gcm');
    const d = await opensslDecrypt(w, env, id);
    assert.ok(d.decrypted, d.detail);
    assert.deepEqual(d.content, CONTENT);
  }
});

test('large content (300 KiB) as streamed BER (-stream): OpenSSL -> Kakitome, and Kakitome -> OpenSSL', async () => {
  const big = Buffer.from('Streamed line of a large message, CRLF-terminated.\r\n'.repeat(6000));
  const sig = await opensslSign(w, big, { signers: [{ id: ids.p256 }], detached: false, stream: true });
  assert.equal(sig[1], 0x80, 'openssl -stream writes indefinite-length BER');
  await assertKakitomeVerifies(sig, { content: big, detached: false, signers: 1, label: 'openssl -stream sign' });
  for (const cipher of ['aes-256-gcm', 'aes-128-cbc'] as const) {
    const env = await opensslEncrypt(w, big, { recipients: [{ id: ids.rsa }, { id: ids.p384, kdf: 'sha256' }], cipher, stream: true });
    assert.equal(env[1], 0x80, 'openssl -stream writes indefinite-length BER');
    await assertKakitomeDecrypts(env, ids.p384, { content: big, label: `openssl -stream ${cipher}`, contentEncryption: cipher });
  }
  const k = await kakitomeSign(big, [{ id: ids.rsa }], false);
  const v = await opensslVerify(w, k, { caPath: pki.caPath });
  assert.ok(v.verified, v.detail);
  assert.deepEqual(v.content, big);
  const e = await kakitomeEncrypt(big, [{ id: ids.p521 }], 'aes-256-gcm');
  const d = await opensslDecrypt(w, e, ids.p521);
  assert.ok(d.decrypted, d.detail);
  assert.deepEqual(d.content, big);
});
