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
import { BcBatch, type BcOutcome } from '../peers/bouncy-castle.ts';

const CONTENT = Buffer.from('Content-Type: text/plain\r\n\r\nPeers checking peers.\r\n');
const TAMPERED = Buffer.from('Content-Type: text/plain\r\n\r\nPeers checking peerz.\r\n');

let pki: TestPki;
let w: Workdir;
let rsa: Identity;
let p256: Identity;
let nss: NssPeer;
let gpg: GpgsmPeer;
/** OpenSSL's outputs, made once. */
const sslSig = new Map<string, Buffer>();
let sslEnv: Buffer;
/** Every Bouncy Castle job of this file, run in one JVM in before(). */
const bcJobs = new Map<string, Promise<BcOutcome>>();

before(async () => {
  pki = new TestPki();
  w = new Workdir('drivers');
  rsa = pki.identity('rsa2048');
  p256 = pki.identity('p256');
  [nss, gpg] = await Promise.all([NssPeer.create(pki, [rsa, p256]), GpgsmPeer.create(pki, [rsa, p256])]);
  const bc = new BcBatch(w);
  for (const id of [rsa, p256]) {
    const sig = await opensslSign(w, CONTENT, { signers: [{ id }], detached: true });
    sslSig.set(id.kind, sig);
    bcJobs.set(`verify ${id.kind}`, bc.verify(sig, { caPath: pki.caPath, detachedContent: CONTENT }));
    bcJobs.set(`verify-tampered ${id.kind}`, bc.verify(sig, { caPath: pki.caPath, detachedContent: TAMPERED }));
  }
  bcJobs.set('sign', bc.sign(CONTENT, [{ id: rsa, alg: 'SHA256withRSA' }, { id: p256, alg: 'SHA256withECDSA' }], { detached: true }));
  sslEnv = await opensslEncrypt(w, CONTENT, { recipients: [{ id: rsa }], cipher: 'aes-256-cbc' });
  bcJobs.set('decrypt', bc.decrypt(sslEnv, rsa));
  bcJobs.set('decrypt-wrong-key', bc.decrypt(sslEnv, p256));
  bcJobs.set('encrypt', bc.encrypt(CONTENT, [{ id: rsa, mode: 'oaep-sha256' }, { id: p256, mode: 'ecdh-sha256' }], 'aes128-gcm'));
  await bc.run();
});

after(async () => {
  nss?.cleanup();
  await gpg?.cleanup();
  w?.cleanup();
  pki?.cleanup();
});

function job(key: string): Promise<BcOutcome> {
  const j = bcJobs.get(key);
  assert.ok(j, key);
  return j;
}

test('OpenSSL signatures (RSA, P-256) verify in NSS, gpgsm and Bouncy Castle; tampered content fails in each', async () => {
  for (const id of [rsa, p256]) {
    const sig = sslSig.get(id.kind)!;
    for (const v of [await nss.verify(sig, CONTENT), await gpg.verify(sig, CONTENT)]) assert.ok(v.verified, `${id.kind}: ${v.detail}`);
    for (const v of [await nss.verify(sig, TAMPERED), await gpg.verify(sig, TAMPERED)]) assert.ok(!v.verified, `${id.kind} tampered: ${v.detail}`);
    const g = await job(`verify ${id.kind}`);
    assert.ok(g.ok, `${id.kind} BC: ${g.info}`);
    const b = await job(`verify-tampered ${id.kind}`);
    assert.ok(!b.ok, `${id.kind} BC tampered: ${b.info}`);
  }
});

test('NSS, gpgsm and Bouncy Castle signatures verify in OpenSSL; tampered content fails', async () => {
  const sigs = [
    await nss.sign(CONTENT, p256, { hash: 'SHA256', detached: true }),
    await gpg.sign(CONTENT, [rsa], { detached: true }),
    await gpg.sign(CONTENT, [p256], { detached: true }),
    (await job('sign')).output,
  ];
  for (const sig of sigs) {
    const good = await opensslVerify(w, sig, { caPath: pki.caPath, detachedContent: CONTENT });
    assert.ok(good.verified, good.detail);
    const bad = await opensslVerify(w, sig, { caPath: pki.caPath, detachedContent: TAMPERED });
    assert.ok(!bad.verified, bad.detail);
  }
});

test('OpenSSL envelopes open in NSS, gpgsm and Bouncy Castle, and theirs in OpenSSL; a wrong key fails', async () => {
  for (const d of [await nss.decrypt(sslEnv), await gpg.decrypt(sslEnv)]) {
    assert.ok(d.decrypted, d.detail);
    assert.deepEqual(d.content, CONTENT);
  }
  assert.deepEqual((await job('decrypt')).output, CONTENT);
  assert.ok(!(await job('decrypt-wrong-key')).ok);
  const bcEnv = (await job('encrypt')).output;
  const theirs = [await nss.encrypt(CONTENT, [rsa]), await gpg.encrypt(CONTENT, [rsa], 'AES256'), bcEnv];
  for (const e of theirs) {
    const d = await opensslDecrypt(w, e, rsa);
    assert.ok(d.decrypted, d.detail);
    assert.deepEqual(d.content, CONTENT);
  }
  const ec = await opensslDecrypt(w, bcEnv, p256);
  assert.deepEqual(ec.content, CONTENT, ec.detail);
  const wrong = await opensslDecrypt(w, sslEnv, p256);
  assert.ok(!wrong.decrypted);
});
