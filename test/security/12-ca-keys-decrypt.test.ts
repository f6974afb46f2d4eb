/**
 * Issue 9, item 12 (first half): CA keys are for certificates only.
 *
 * Decryption with a store finds keys by the envelope's recipient identifiers.
 * Those identifiers are the sender's choice: an attacker who copies a CA
 * certificate's issuer, serial number and public key into a certificate of their
 * own that allows key agreement can address an envelope to the CA's key, and
 * before the fix the store opened the root CA key and ran ECDH (or RSA decryption)
 * on attacker-chosen input: a key-misuse oracle on the key that signs everything.
 * Now the store never offers a CA's key, nor a key whose certificate's keyUsage
 * forbids key management, for decryption.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestPki } from '../helpers/pki.ts';
import { runCli, draftMessage, storeHomeEnv } from '../cli/run-cli.ts';
import { issueCertificate } from '../../src/x509/issue.ts';
import { Certificate } from '../../src/x509/certificate.ts';
import { decodePem, encodePem } from '../../src/asn1/pem.ts';
import { OID } from '../../src/asn1/oids.ts';
import { encryptMessage } from '../../src/smime/encrypt-message.ts';
import { Store } from '../../src/store/store.ts';
import { openSqliteEngine } from '../../src/store/sqlite-engine.ts';
import { masterKeyFromBytes } from '../../src/keys/master-key.ts';
import { findEnvelopeKeys } from '../../src/store/find-envelope-keys.ts';
import { findMessageEnvelope } from '../../src/smime/find-message-envelope.ts';

const pki = new TestPki('CA Key Root');
const dir = mkdtempSync(join(tmpdir(), 'kakitome-ca-keys-'));
after(() => {
  pki.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * The attacker's certificate: `target`'s issuer, serial number and public key
 * (so the envelope's identifiers name `target`), keyUsage allowing key management,
 * signed by the attacker's own key (a sender never checks that signature).
 */
function lookalike(target: Certificate, use: 'keyAgreement' | 'keyEncipherment'): Certificate {
  const attacker = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return issueCertificate({
    subject: { commonName: 'anything' },
    publicKey: target.publicKey,
    // Only the issuer's name matters here: it goes into the envelope's IssuerAndSerialNumber.
    issuer: { subject: target.issuer, subjectKeyIdentifier: randomBytes(20) } as unknown as Certificate,
    signingKey: attacker.privateKey,
    serial: target.serial,
    keyUsage: [use],
    extKeyUsage: [OID.emailProtection],
  });
}

function sealedFor(cert: Certificate): Buffer {
  return encryptMessage(draftMessage('<mallory@example.com>', 'ca@example.com', 'Oracle'), { recipients: [{ certificate: cert }] });
}

const home = join(dir, 'home');
const env = storeHomeEnv(home, dir);
const kk = (...args: string[]) => runCli(args, { env, cwd: dir });
let internalRoot: Certificate;
let internalIssuing: Certificate;
/** An end entity whose certificate allows signing only. */
const signer = (() => {
  const kp = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const cert = issueCertificate({ subject: { commonName: 'signing only' }, publicKey: kp.publicKey, issuer: pki.caCert, signingKey: pki.caKey, keyUsage: ['digitalSignature'], extKeyUsage: [OID.emailProtection], emails: ['signer@example.com'] });
  return { cert, key: kp.privateKey as KeyObject };
})();
const normal = pki.identity('p256', 'normal');

before(async () => {
  assert.equal((await kk('init')).status, 0);
  assert.equal((await kk('ca', 'init', '--name', 'Oracle Corp', '-o', 'root.pem')).status, 0);
  internalRoot = Certificate.fromDer(decodePem(readFileSync(join(dir, 'root.pem'), 'latin1'))[0]!.der);
  const cas = JSON.parse((await kk('certs', 'list', '--json')).stdout.toString()).certificates.filter((c: { isCa: boolean }) => c.isCa);
  internalIssuing = (await withStore((s) => s.findCertificateByFingerprint(cas.find((c: { fingerprint: string }) => c.fingerprint !== internalRoot.fingerprint256).fingerprint)))!.certificate;
  // An RSA CA key and a signing-only key, imported the ordinary way.
  assert.equal((await kk('keys', 'import', '--key', join(pki.dir, 'ca.key'), '--cert', pki.caPath)).status, 0);
  writeFileSync(join(dir, 'signer.pem'), encodePem('CERTIFICATE', signer.cert.der));
  writeFileSync(join(dir, 'signer.key'), signer.key.export({ format: 'pem', type: 'pkcs8' }));
  assert.equal((await kk('keys', 'import', '--key', 'signer.key', '--cert', 'signer.pem')).status, 0);
  assert.equal((await kk('keys', 'import', '--key', normal.keyPath, '--cert', normal.certPath)).status, 0);
});

async function withStore<T>(fn: (s: Store) => Promise<T>): Promise<T> {
  const { openStore } = await import('../../src/store/open-store.ts');
  const s = await openStore({ home });
  try {
    return await fn(s);
  } finally {
    await s.close();
  }
}

async function decryptsThroughStore(name: string, message: Buffer): Promise<{ status: number | null; stderr: string; written: boolean }> {
  writeFileSync(join(dir, `${name}.eml`), message);
  const r = await kk('decrypt', '-i', `${name}.eml`, '-o', `${name}.out`);
  let written = true;
  try {
    readFileSync(join(dir, `${name}.out`));
  } catch {
    written = false;
  }
  return { status: r.status, stderr: r.stderr, written };
}

test('an ECDH envelope addressed to the internal root CA\'s key is not decrypted through the store', async () => {
  const r = await decryptsThroughStore('root-ecdh', sealedFor(lookalike(internalRoot, 'keyAgreement')));
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /NOT_RECIPIENT/);
  assert.equal(r.written, false);
});

test('nor one addressed to the issuing CA\'s key', async () => {
  const r = await decryptsThroughStore('issuing-ecdh', sealedFor(lookalike(internalIssuing, 'keyAgreement')));
  assert.equal(r.status, 1, r.stderr);
  assert.equal(r.written, false);
});

test('an RSA envelope addressed to an imported CA\'s key is not decrypted through the store', async () => {
  const r = await decryptsThroughStore('rsa-ca', sealedFor(lookalike(pki.caCert, 'keyEncipherment')));
  assert.equal(r.status, 1, r.stderr);
  assert.equal(r.written, false);
});

test('a key whose certificate forbids key management (signing only) is not used either', async () => {
  const r = await decryptsThroughStore('signing-only', sealedFor(lookalike(signer.cert, 'keyAgreement')));
  assert.equal(r.status, 1, r.stderr);
  assert.equal(r.written, false);
});

test('the store offers no CA key to findEnvelopeKeys, and still the ordinary recipient key', async () => {
  await withStore(async (s) => {
    for (const target of [internalRoot, internalIssuing, pki.caCert, signer.cert]) {
      const env = findMessageEnvelope(sealedFor(lookalike(target, target.publicKey.asymmetricKeyType === 'rsa' ? 'keyEncipherment' : 'keyAgreement')))!;
      assert.deepEqual(await findEnvelopeKeys(s, env), [], target.subjectText);
    }
    const ok = await findEnvelopeKeys(s, findMessageEnvelope(sealedFor(normal.cert))!);
    assert.deepEqual(ok.map((k) => k.certificate.fingerprint256), [normal.cert.fingerprint256]);
    const log = await s.auditLog({ limit: 1000 });
    const caKeys = (await s.listKeys()).filter((k) => k.certificates.some((fp) => [internalRoot, internalIssuing, pki.caCert].some((c) => c.fingerprint256 === fp))).map((k) => k.id);
    assert.equal(log.some((e) => e.action === 'key.use.decrypt' && caKeys.includes(e.object ?? '')), false, 'no CA key was ever opened for decryption');
  });
  const control = await decryptsThroughStore('normal', sealedFor(normal.cert));
  assert.equal(control.status, 0, control.stderr);
});

test('library: findDecryptionKeys skips a CA key even when another (end-entity) certificate names the same key', async () => {
  const store = await Store.open(openSqliteEngine(':memory:'), { masterKey: masterKeyFromBytes(randomBytes(32)) });
  try {
    await store.importPrivateKey(pki.caKey, { certificates: [pki.caCert] });
    const sameKeyLeaf = issueCertificate({ subject: { commonName: 'same key' }, publicKey: pki.caCert.publicKey, issuer: pki.caCert, signingKey: pki.caKey, keyUsage: ['keyEncipherment'], emails: ['x@example.com'] });
    await store.importCertificate(sameKeyLeaf);
    const env = findMessageEnvelope(sealedFor(sameKeyLeaf))!;
    assert.deepEqual(await findEnvelopeKeys(store, env), []);
  } finally {
    await store.close();
  }
});

