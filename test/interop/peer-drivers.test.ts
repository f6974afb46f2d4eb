/**
 * The peers talk to each other through our drivers, with certificates from TestPki.
 * This proves, independently of Kakitome's CMS code, that (1) every peer accepts the
 * certificates src/x509/issue.ts mints, and (2) each driver reports a good result as
 * good and a tampered one as bad: a driver that always said "verified" would make
 * every Kakitome interop test meaningless.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { TestPki, type Identity } from '../helpers/pki.ts';
import { Workdir } from '../peers/run-peer.ts';
import { opensslSign, opensslVerify, opensslEncrypt, opensslDecrypt } from '../peers/openssl.ts';
import { NssPeer } from '../peers/nss.ts';
import { GpgsmPeer } from '../peers/gpgsm.ts';
import { BcBatch } from '../peers/bouncy-castle.ts';

const CONTENT = Buffer.from('Content-Type: text/plain\r\n\r\nPeers checking peers.\r\n');
const TAMPERED = Buffer.from('Content-Type: text/plain\r\n\r\nPeers checking peerz.\r\n');

let pki: TestPki;
let w: Workdir;
let rsa: Identity;
let p256: Identity;
let nss: NssPeer;
let gpg: GpgsmPeer;

before(async () => {
  pki = new TestPki();
  w = new Workdir('drivers');
  rsa = pki.identity('rsa2048');
  p256 = pki.identity('p256');
  [nss, gpg] = await Promise.all([NssPeer.create(pki, [rsa, p256]), GpgsmPeer.create(pki, [rsa, p256])]);
});

after(async () => {
  nss?.cleanup();
  await gpg?.cleanup();
  w?.cleanup();
  pki?.cleanup();
});

test('OpenSSL signatures (RSA, P-256) verify in NSS, gpgsm and Bouncy Castle; tampered content fails in each', async () => {
  const bc = new BcBatch(w);
  const checks: Array<Promise<void>> = [];
  for (const id of [rsa, p256]) {
    const sig = await opensslSign(w, CONTENT, { signers: [{ id }], detached: true });
    const good = [nss.verify(sig, CONTENT), gpg.verify(sig, CONTENT)];
    const bad = [nss.verify(sig, TAMPERED), gpg.verify(sig, TAMPERED)];
    const bcGood = bc.verify(sig, { caPath: pki.caPath, detachedContent: CONTENT });
    const bcBad = bc.verify(sig, { caPath: pki.caPath, detachedContent: TAMPERED });
    checks.push((async () => {
      for (const v of await Promise.all(good)) assert.ok(v.verified, `${id.kind}: ${v.detail}`);
      for (const v of await Promise.all(bad)) assert.ok(!v.verified, `${id.kind} tampered: ${v.detail}`);
      const [g, b] = await Promise.all([bcGood, bcBad]);
      assert.ok(g.ok, `${id.kind} BC: ${g.info}`);
      assert.ok(!b.ok, `${id.kind} BC tampered: ${b.info}`);
    })());
  }
  await bc.run();
  await Promise.all(checks);
});

test('NSS, gpgsm and Bouncy Castle signatures verify in OpenSSL; tampered content fails', async () => {
  const bc = new BcBatch(w);
  const bcSig = bc.sign(CONTENT, [{ id: rsa, alg: 'SHA256withRSA' }, { id: p256, alg: 'SHA256withECDSA' }], { detached: true });
  await bc.run();
  const sigs = [
    await nss.sign(CONTENT, p256, { hash: 'SHA256', detached: true }),
    await gpg.sign(CONTENT, [rsa], { detached: true }),
    await gpg.sign(CONTENT, [p256], { detached: true }),
    (await bcSig).output,
  ];
  for (const sig of sigs) {
    const good = await opensslVerify(w, sig, { caPath: pki.caPath, detachedContent: CONTENT });
    assert.ok(good.verified, good.detail);
    const bad = await opensslVerify(w, sig, { caPath: pki.caPath, detachedContent: TAMPERED });
    assert.ok(!bad.verified, bad.detail);
  }
});

test('OpenSSL envelopes open in NSS, gpgsm and Bouncy Castle, and theirs in OpenSSL', async () => {
  const bc = new BcBatch(w);
  const env = await opensslEncrypt(w, CONTENT, { recipients: [{ id: rsa }], cipher: 'aes-256-cbc' });
  const bcDec = bc.decrypt(env, rsa);
  const bcEnv = bc.encrypt(CONTENT, [{ id: rsa, mode: 'oaep-sha256' }, { id: p256, mode: 'ecdh-sha256' }], 'aes128-gcm');
  await bc.run();
  for (const d of [await nss.decrypt(env), await gpg.decrypt(env)]) {
    assert.ok(d.decrypted, d.detail);
    assert.deepEqual(d.content, CONTENT);
  }
  assert.deepEqual((await bcDec).output, CONTENT);
  const theirs = [await nss.encrypt(CONTENT, [rsa]), await gpg.encrypt(CONTENT, [rsa], 'AES256'), (await bcEnv).output];
  for (const e of theirs) {
    const d = await opensslDecrypt(w, e, rsa);
    assert.ok(d.decrypted, d.detail);
    assert.deepEqual(d.content, CONTENT);
  }
  const ec = await opensslDecrypt(w, (await bcEnv).output, p256);
  assert.deepEqual(ec.content, CONTENT, ec.detail);
  // A different key must not open it: the decrypt drivers report failure.
  const wrong = await opensslDecrypt(w, env, p256);
  assert.ok(!wrong.decrypted);
});
