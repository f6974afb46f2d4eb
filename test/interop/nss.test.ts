/**
 * Kakitome <-> NSS 3.87 `cmsutil` (Thunderbird's engine), both directions, every
 * algorithm NSS supports in CMS. Not supported by this peer (recorded in
 * docs/interop.md, not asserted): RSASSA-PSS signing from the cmsutil command line,
 * more than one signer per cmsutil run, RSAES-OAEP decryption, ECDH envelopes (an
 * envelope with any ECDH recipient fails to decode, even for its RSA recipients),
 * AuthEnvelopedData (AES-GCM, ChaCha20-Poly1305), Ed25519.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { TestPki, type Identity } from '../helpers/pki.ts';
import { NssPeer, type NssHash } from '../peers/nss.ts';
import {
  interopContent, standardIdentities, type StandardIdentities, kakitomeSign, kakitomeEncrypt, assertKakitomeVerifies, assertKakitomeRejectsTampered, assertKakitomeDecrypts, tamperInside,
  type KHash,
} from '../peers/kakitome-side.ts';
import { verifySignedData } from '../../src/cms/signed-data/verify.ts';

const { content: CONTENT, tampered: TAMPERED } = interopContent('NSS cmsutil');

let pki: TestPki;
let nss: NssPeer;
let ids: StandardIdentities;

before(async () => {
  pki = new TestPki();
  ids = standardIdentities(pki);
  nss = await NssPeer.create(pki, Object.values(ids));
});

after(() => {
  nss?.cleanup();
  pki?.cleanup();
});

/** NSS writes indefinite-length BER: make sure that is what Kakitome was given. */
function assertIndefiniteLength(der: Uint8Array): void {
  assert.equal(der[0], 0x30);
  assert.equal(der[1], 0x80, 'expected indefinite-length BER from NSS');
}

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
  for (const c of [...SIGN_CASES, ...PSS_CASES]) {
    test(`sign ${c.name} ${mode}: Kakitome -> NSS verifies; tampered fails`, async () => {
      const der = await kakitomeSign(CONTENT, [{ id: c.id(), hash: c.hash, rsaPadding: c.pss ? 'pss' : 'pkcs1' }], detached);
      const v = await nss.verify(der, detached ? CONTENT : undefined);
      assert.ok(v.verified, v.detail);
      if (!detached) assert.deepEqual(v.content, CONTENT);
      const bad = detached ? await nss.verify(der, TAMPERED) : await nss.verify(tamperInside(der, Buffer.from('NSS cmsutil.')));
      assert.ok(!bad.verified, `tampered accepted: ${bad.detail}`);
    });
  }

  for (const c of SIGN_CASES) {
    test(`sign ${c.name} ${mode}: NSS -> Kakitome verifies (BER); tampered fails`, async () => {
      const der = await nss.sign(CONTENT, c.id(), { hash: c.hash.toUpperCase() as NssHash, detached });
      assertIndefiniteLength(der);
      await assertKakitomeVerifies(der, { content: CONTENT, detached, signers: 1, label: `NSS ${c.name}` });
      if (detached) {
        await assertKakitomeRejectsTampered(der, TAMPERED, `NSS ${c.name}`);
      } else {
        const r = verifySignedData(tamperInside(der, Buffer.from('NSS cmsutil.')), {});
        assert.equal(r.status, 'invalid');
        assert.equal(r.signers[0]?.code, 'DIGEST_MISMATCH');
      }
    });
  }
}

test('sign with three signers (RSA, RSA-PSS, P-384): Kakitome -> NSS verifies all; tampered fails', async () => {
  for (const detached of [true, false]) {
    const der = await kakitomeSign(CONTENT, [{ id: ids.rsa }, { id: ids.rsaB, rsaPadding: 'pss' }, { id: ids.p384, hash: 'sha384' }], detached);
    const v = await nss.verify(der, detached ? CONTENT : undefined);
    assert.ok(v.verified, v.detail);
  }
  const der = await kakitomeSign(CONTENT, [{ id: ids.rsa }, { id: ids.p256 }], true);
  assert.ok(!(await nss.verify(der, TAMPERED)).verified);
});

// ---------------------------------------------------------------- envelopes

for (const cipher of ['aes-128-cbc', 'aes-192-cbc', 'aes-256-cbc'] as const) {
  test(`encrypt RSA PKCS#1 v1.5 ${cipher}: Kakitome -> NSS decrypts`, async () => {
    const der = await kakitomeEncrypt(CONTENT, [{ id: ids.rsa, rsaPadding: 'pkcs1' }], cipher);
    const d = await nss.decrypt(der);
    assert.ok(d.decrypted, d.detail);
    assert.deepEqual(d.content, CONTENT);
  });
}

test('encrypt to RSA v1.5 and an OAEP recipient NSS cannot use: Kakitome -> NSS decrypts with the v1.5 key', async () => {
  // NSS skips the OAEP RecipientInfo and uses the one it can (its own v1.5 key).
  const other = pki.identity('rsa2048', 'oaep-only');
  const der = await kakitomeEncrypt(CONTENT, [{ id: other, rsaPadding: 'oaep' }, { id: ids.rsaB, rsaPadding: 'pkcs1' }], 'aes-256-cbc');
  const d = await nss.decrypt(der);
  assert.ok(d.decrypted, d.detail);
  assert.deepEqual(d.content, CONTENT);
});

test('encrypt: NSS (AES-128-CBC, RSA v1.5, BER) -> Kakitome decrypts, one and two recipients', async () => {
  const one = await nss.encrypt(CONTENT, [ids.rsa]);
  assertIndefiniteLength(one);
  await assertKakitomeDecrypts(one, ids.rsa, { content: CONTENT, label: 'NSS one recipient', contentEncryption: 'aes-128-cbc', authenticated: false });
  const two = await nss.encrypt(CONTENT, [ids.rsa, ids.rsaB]);
  for (const id of [ids.rsa, ids.rsaB]) {
    await assertKakitomeDecrypts(two, id, { content: CONTENT, label: `NSS two recipients, ${id.kind}`, contentEncryption: 'aes-128-cbc', authenticated: false });
  }
});

test('subjectKeyIdentifier as SignerIdentifier (RSA, P-256) and RecipientIdentifier (RSA): Kakitome -> NSS', async () => {
  for (const id of [ids.rsa, ids.p256]) {
    const sig = await kakitomeSign(CONTENT, [{ id, identifier: 'subjectKeyIdentifier' }], true);
    const v = await nss.verify(sig, CONTENT);
    assert.ok(v.verified, v.detail);
  }
  const env = await kakitomeEncrypt(CONTENT, [{ id: ids.rsa, identifier: 'subjectKeyIdentifier' }], 'aes-256-cbc');
  const d = await nss.decrypt(env);
  assert.ok(d.decrypted, d.detail);
  assert.deepEqual(d.content, CONTENT);
});

test('large content (300 KiB, chunked BER): both directions', async () => {
  const big = Buffer.from('A line of a large message, CRLF-terminated, to force chunking.\r\n'.repeat(4800));
  const sig = await nss.sign(big, ids.p256, { hash: 'SHA256', detached: false });
  assertIndefiniteLength(sig);
  await assertKakitomeVerifies(sig, { content: big, detached: false, signers: 1, label: 'NSS large' });
  const env = await nss.encrypt(big, [ids.rsa]);
  await assertKakitomeDecrypts(env, ids.rsa, { content: big, label: 'NSS large', contentEncryption: 'aes-128-cbc' });
  const v = await nss.verify(await kakitomeSign(big, [{ id: ids.rsa }], false));
  assert.ok(v.verified, v.detail);
  assert.deepEqual(v.content, big);
  const d = await nss.decrypt(await kakitomeEncrypt(big, [{ id: ids.rsaB }], 'aes-256-cbc'));
  assert.ok(d.decrypted, d.detail);
  assert.deepEqual(d.content, big);
});
