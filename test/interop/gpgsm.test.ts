/**
 * Kakitome <-> GnuPG gpgsm 2.2 (batch mode, throwaway GNUPGHOME), both directions,
 * every algorithm gpgsm 2.2 supports in CMS. Not supported by this peer (recorded in
 * docs/interop.md, not asserted): verifying any P-521 signature, RSASSA-PSS signing, RSAES-OAEP decryption, ECDH
 * envelopes (it refuses keyAgreement-only certificates for encryption and cannot
 * decrypt ECDH from OpenSSL or Kakitome), AuthEnvelopedData (libksba 1.6.3: "error
 * getting IV: Buffer too short"), ChaCha20-Poly1305, Ed25519, EC PKCS#12 import.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { TestPki, type Identity } from '../helpers/pki.ts';
import { GpgsmPeer, type GpgsmCipher, type GpgsmDigest } from '../peers/gpgsm.ts';
import {
  interopContent, standardIdentities, type StandardIdentities, kakitomeSign, kakitomeEncrypt, assertKakitomeVerifies, assertKakitomeRejectsTampered, assertKakitomeDecrypts, tamperInside,
  type KHash,
} from '../peers/kakitome-side.ts';
import { verifySignedData } from '../../src/cms/signed-data/verify.ts';

const { content: CONTENT, tampered: TAMPERED } = interopContent('GnuPG gpgsm');

let pki: TestPki;
let gpg: GpgsmPeer;
let ids: StandardIdentities;

before(async () => {
  pki = new TestPki();
  ids = standardIdentities(pki);
  gpg = await GpgsmPeer.create(pki, Object.values(ids));
});

after(async () => {
  await gpg?.cleanup();
  pki?.cleanup();
});

interface SignCase { name: string; id: () => Identity; hash: KHash; pss?: boolean }
const SIGN_CASES: SignCase[] = [
  { name: 'RSA PKCS#1 v1.5 SHA-256', id: () => ids.rsa, hash: 'sha256' },
  { name: 'RSA PKCS#1 v1.5 SHA-384', id: () => ids.rsa, hash: 'sha384' },
  { name: 'RSA PKCS#1 v1.5 SHA-512', id: () => ids.rsaB, hash: 'sha512' },
  { name: 'ECDSA P-256 SHA-256', id: () => ids.p256, hash: 'sha256' },
  { name: 'ECDSA P-384 SHA-384', id: () => ids.p384, hash: 'sha384' },
  { name: 'ECDSA P-521 SHA-512', id: () => ids.p521, hash: 'sha512' },
];

/** Kakitome -> peer only: the peer cannot sign RSASSA-PSS from its command line. */
const PSS_CASES: SignCase[] = [
  { name: 'RSASSA-PSS SHA-256', id: () => ids.rsa, hash: 'sha256', pss: true },
  { name: 'RSASSA-PSS SHA-384', id: () => ids.rsaB, hash: 'sha384', pss: true },
  { name: 'RSASSA-PSS SHA-512', id: () => ids.rsaB, hash: 'sha512', pss: true },
];

for (const detached of [true, false]) {
  const mode = detached ? 'detached' : 'encapsulated';
  // gpgsm 2.2.40 verifies no P-521 signature at all, not even its own ("DSA requires
  // the hash length to be a multiple of 8 bits"): recorded in docs/interop.md.
  const toGpgsm = SIGN_CASES.filter((c) => !c.name.includes('P-521'));
  for (const c of [...toGpgsm, ...PSS_CASES]) {
    test(`sign ${c.name} ${mode}: Kakitome -> gpgsm verifies (TRUST_FULLY); tampered fails`, async () => {
      const der = await kakitomeSign(CONTENT, [{ id: c.id(), hash: c.hash, rsaPadding: c.pss ? 'pss' : 'pkcs1' }], detached);
      const v = await gpg.verify(der, detached ? CONTENT : undefined);
      assert.ok(v.verified, v.detail);
      if (!detached) assert.deepEqual(v.content, CONTENT);
      const bad = detached ? await gpg.verify(der, TAMPERED) : await gpg.verify(tamperInside(der, Buffer.from('GnuPG gpgsm.')));
      assert.ok(!bad.verified, `tampered accepted: ${bad.detail}`);
    });
  }

  for (const c of SIGN_CASES) {
    test(`sign ${c.name} ${mode}: gpgsm -> Kakitome verifies (BER); tampered fails`, async () => {
      const der = await gpg.sign(CONTENT, [c.id()], { detached, digest: c.hash.toUpperCase() as GpgsmDigest });
      assert.equal(der[1], 0x80, 'gpgsm writes indefinite-length BER');
      await assertKakitomeVerifies(der, { content: CONTENT, detached, signers: 1, label: `gpgsm ${c.name}` });
      if (detached) {
        await assertKakitomeRejectsTampered(der, TAMPERED, `gpgsm ${c.name}`);
      } else {
        const r = verifySignedData(tamperInside(der, Buffer.from('GnuPG gpgsm.')), {});
        assert.equal(r.status, 'invalid');
        assert.equal(r.signers[0]?.code, 'DIGEST_MISMATCH');
      }
    });
  }
}

test('sign with two signers (RSA, P-256): both directions', async () => {
  for (const detached of [true, false]) {
    const k = await kakitomeSign(CONTENT, [{ id: ids.rsa }, { id: ids.p256 }], detached);
    const v = await gpg.verify(k, detached ? CONTENT : undefined);
    assert.ok(v.verified, v.detail);
    assert.equal(v.status.filter((l) => l.startsWith('[GNUPG:] GOODSIG')).length, 2, v.detail);
    const g = await gpg.sign(CONTENT, [ids.rsa, ids.p256], { detached });
    await assertKakitomeVerifies(g, { content: CONTENT, detached, signers: 2, label: 'gpgsm two signers' });
  }
});

// ---------------------------------------------------------------- envelopes

for (const cipher of ['aes-128-cbc', 'aes-192-cbc', 'aes-256-cbc'] as const) {
  test(`encrypt RSA PKCS#1 v1.5 ${cipher}: Kakitome -> gpgsm decrypts`, async () => {
    const der = await kakitomeEncrypt(CONTENT, [{ id: ids.rsa, rsaPadding: 'pkcs1' }], cipher);
    const d = await gpg.decrypt(der);
    assert.ok(d.decrypted, d.detail);
    assert.deepEqual(d.content, CONTENT);
  });
}

for (const [cipher, name] of [['AES128', 'aes-128-cbc'], ['AES192', 'aes-192-cbc'], ['AES256', 'aes-256-cbc']] as const) {
  test(`encrypt RSA PKCS#1 v1.5 ${name}: gpgsm -> Kakitome decrypts (BER)`, async () => {
    const der = await gpg.encrypt(CONTENT, [ids.rsa], cipher as GpgsmCipher);
    assert.equal(der[1], 0x80, 'gpgsm writes indefinite-length BER');
    await assertKakitomeDecrypts(der, ids.rsa, { content: CONTENT, label: `gpgsm ${name}`, contentEncryption: name, authenticated: false });
  });
}

test('encrypt to two RSA recipients: both directions', async () => {
  const k = await kakitomeEncrypt(CONTENT, [{ id: ids.rsa }, { id: ids.rsaB }], 'aes-256-cbc');
  const d = await gpg.decrypt(k);
  assert.ok(d.decrypted, d.detail);
  assert.deepEqual(d.content, CONTENT);
  const g = await gpg.encrypt(CONTENT, [ids.rsa, ids.rsaB], 'AES256');
  for (const id of [ids.rsa, ids.rsaB]) {
    await assertKakitomeDecrypts(g, id, { content: CONTENT, label: `gpgsm two recipients, ${id.kind}`, contentEncryption: 'aes-256-cbc', authenticated: false });
  }
});

test('large content (300 KiB, chunked BER): both directions', async () => {
  const big = Buffer.from('A line of a large message, CRLF-terminated, to force chunking.\r\n'.repeat(4800));
  const sig = await gpg.sign(big, [ids.rsa], { detached: false });
  assert.equal(sig[1], 0x80);
  await assertKakitomeVerifies(sig, { content: big, detached: false, signers: 1, label: 'gpgsm large' });
  const env = await gpg.encrypt(big, [ids.rsa], 'AES256');
  await assertKakitomeDecrypts(env, ids.rsa, { content: big, label: 'gpgsm large', contentEncryption: 'aes-256-cbc' });
  const v = await gpg.verify(await kakitomeSign(big, [{ id: ids.p256 }], false));
  assert.ok(v.verified, v.detail);
  assert.deepEqual(v.content, big);
  const d = await gpg.decrypt(await kakitomeEncrypt(big, [{ id: ids.rsaB }], 'aes-128-cbc'));
  assert.ok(d.decrypted, d.detail);
  assert.deepEqual(d.content, big);
});
