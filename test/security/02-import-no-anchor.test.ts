/**
 * Issue 9, item 2: importing a key never adds a trust anchor.
 *
 * A PKCS#12 is a key container a user is handed ("here is your certificate").
 * Before the fix the certificate that came with the key was stored as `trusted`
 * ("we hold its key"), so a .p12 whose key is a self-signed CA's planted that CA
 * as a trust anchor: every certificate it then issues, for any address, verified
 * as trusted. Importing a key also raised a certificate already stored to
 * `trusted`. Now certificates that arrive with a key are `imported`, a CA becomes
 * an anchor only through `certs import --trust trusted`, and no operation raises an
 * existing trust level implicitly.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestPki } from '../helpers/pki.ts';
import { runCli, draftMessage, storeHomeEnv } from '../cli/run-cli.ts';
import { issueCertificate } from '../../src/x509/issue.ts';
import { encodePem } from '../../src/asn1/pem.ts';
import { OID } from '../../src/asn1/oids.ts';
import { exportPkcs12 } from '../../src/keys/export-pkcs12.ts';
import { signMessage } from '../../src/smime/sign-message.ts';
import { Store } from '../../src/store/store.ts';
import { openSqliteEngine } from '../../src/store/sqlite-engine.ts';
import { masterKeyFromBytes } from '../../src/keys/master-key.ts';
import { importCertificateFile } from '../../src/store/import-certificate-file.ts';
import { createStoreTrustStore } from '../../src/store/store-trust-store.ts';
import { isKakitomeError } from '../../src/errors.ts';

const corp = new TestPki('Import Corp Root');
const dir = mkdtempSync(join(tmpdir(), 'kakitome-import-anchor-'));
after(() => {
  corp.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

/** The attacker's CA, with its key: what a hostile .p12 carries. */
const evilKeys = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const evilRoot = issueCertificate({
  subject: { commonName: 'Totally Legit Root CA' },
  publicKey: evilKeys.publicKey,
  signingKey: evilKeys.privateKey,
  ca: true,
  keyUsage: ['keyCertSign', 'cRLSign', 'digitalSignature'],
});
/** A certificate for the CEO's address under it. */
const fakeCeoKeys = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const fakeCeo = issueCertificate({
  subject: { commonName: 'CEO' },
  publicKey: fakeCeoKeys.publicKey,
  issuer: evilRoot,
  signingKey: evilKeys.privateKey,
  keyUsage: ['digitalSignature', 'keyAgreement'],
  extKeyUsage: [OID.emailProtection],
  emails: ['ceo@example.com'],
});
const forged = signMessage(draftMessage('<ceo@example.com>', 'staff@example.com', 'Wire the money'), { signers: [{ certificate: fakeCeo, key: fakeCeoKeys.privateKey }], certificates: [evilRoot] });
/** "Your new certificate": the user's key, with the attacker's root as its chain. */
const user = corp.identity('p256', 'user');
const bundleWithRoot = exportPkcs12({ key: user.key, certificate: user.cert, chain: [evilRoot], password: 'pw', iterations: 2048 });
/** A .p12 whose key is the CA's own. */
const caBundle = exportPkcs12({ key: evilKeys.privateKey, certificate: evilRoot, password: 'pw', iterations: 2048 });

async function memoryStore(): Promise<Store> {
  return Store.open(openSqliteEngine(':memory:'), { masterKey: masterKeyFromBytes(randomBytes(32)) });
}

async function anchors(store: Store): Promise<string[]> {
  return (await createStoreTrustStore(store).anchors()).map((c) => c.fingerprint256);
}

test('library: a PKCS#12 whose key is a CA\'s stores the CA certificate as imported, never an anchor', async () => {
  const store = await memoryStore();
  try {
    const r = await importCertificateFile(store, caBundle, { password: 'pw' });
    assert.ok(r.key);
    assert.equal((await store.findCertificateByFingerprint(evilRoot.fingerprint256))?.trust, 'imported');
    assert.deepEqual(await anchors(store), []);
    // The same through importPrivateKey directly (keys import --key/--cert).
    const other = await memoryStore();
    await other.importPrivateKey(evilKeys.privateKey, { certificates: [evilRoot] });
    assert.equal((await other.findCertificateByFingerprint(evilRoot.fingerprint256))?.trust, 'imported');
    assert.deepEqual(await anchors(other), []);
    await other.close();
  } finally {
    await store.close();
  }
});

test('library: no operation raises a stored certificate\'s trust implicitly', async () => {
  const store = await memoryStore();
  try {
    // Imported first (a chain certificate of an earlier .p12), then its key arrives.
    await importCertificateFile(store, bundleWithRoot, { password: 'pw' });
    assert.equal((await store.findCertificateByFingerprint(evilRoot.fingerprint256))?.trust, 'imported');
    await importCertificateFile(store, caBundle, { password: 'pw' });
    assert.equal((await store.findCertificateByFingerprint(evilRoot.fingerprint256))?.trust, 'imported', 'holding the key does not make a CA trusted');
    assert.deepEqual(await anchors(store), []);
    // A harvested certificate stays harvested when a .p12 chain or a key import carries it again.
    const h = corp.identity('p256', 'harvested');
    await store.importCertificate(corp.caCert, { trust: 'trusted' });
    await store.harvestCertificate(h.cert, { address: h.email });
    await importCertificateFile(store, exportPkcs12({ key: user.key, certificate: user.cert, chain: [h.cert], password: 'pw', iterations: 2048 }), { password: 'pw' });
    assert.equal((await store.findCertificateByFingerprint(h.cert.fingerprint256))?.trust, 'harvested');
    await store.importPrivateKey(h.key, { certificates: [h.cert] });
    assert.equal((await store.findCertificateByFingerprint(h.cert.fingerprint256))?.trust, 'harvested');
    // Only an explicit level raises one (certs import --trust trusted).
    await store.importCertificate(evilRoot, { trust: 'trusted' });
    assert.deepEqual((await anchors(store)).sort(), [corp.caCert.fingerprint256, evilRoot.fingerprint256].sort(), 'an explicit --trust trusted does');
    assert.equal((await store.auditLog({ object: evilRoot.fingerprint256 })).some((e) => e.action === 'certificate.trust' && /imported -> trusted/.test(e.detail ?? '')), true, 'audited');
  } finally {
    await store.close();
  }
});

describeCli();

function describeCli(): void {
  const home = join(dir, 'home');
  const env = storeHomeEnv(home, dir);
  const kk = (...args: string[]) => runCli(args, { env, cwd: dir });
  const trustedFingerprints = async () => JSON.parse((await kk('certs', 'list', '--trust', 'trusted', '--json')).stdout.toString()).certificates.map((c: { fingerprint: string }) => c.fingerprint);

  before(async () => {
    assert.equal((await kk('init')).status, 0);
    assert.equal((await kk('certs', 'import', corp.caPath, '--trust', 'trusted')).status, 0);
    writeFileSync(join(dir, 'bundle.p12'), bundleWithRoot);
    writeFileSync(join(dir, 'ca.p12'), caBundle);
    writeFileSync(join(dir, 'forged.eml'), forged);
    writeFileSync(join(dir, 'evil-root.pem'), encodePem('CERTIFICATE', evilRoot.der));
  });

  test('CLI: keys import and certs import of hostile .p12 files plant no anchor; the forged CEO mail stays untrusted', async () => {
    assert.equal((await kk('keys', 'import', '--p12', 'bundle.p12', '--pass', 'pass:pw')).status, 0);
    assert.equal((await kk('keys', 'import', '--p12', 'ca.p12', '--pass', 'pass:pw')).status, 0);
    assert.equal((await kk('certs', 'import', 'ca.p12', '--pass', 'pass:pw')).status, 0);
    assert.deepEqual(await trustedFingerprints(), [corp.caCert.fingerprint256]);
    const v = await kk('verify', '-i', 'forged.eml');
    assert.equal(v.status, 1, v.stderr);
    assert.match(v.stderr, /CERT_UNTRUSTED/);
  });

  test('CLI: --trust trusted is for certificate files, not the contents of a .p12', async () => {
    const r = await kk('certs', 'import', 'ca.p12', '--pass', 'pass:pw', '--trust', 'trusted');
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /INVALID_ARGUMENT/);
    assert.deepEqual(await trustedFingerprints(), [corp.caCert.fingerprint256]);
  });

  test('CLI: the explicit certs import --trust trusted is the one way to make a CA an anchor', async () => {
    assert.equal((await kk('certs', 'import', 'evil-root.pem', '--trust', 'trusted')).status, 0);
    assert.deepEqual((await trustedFingerprints()).sort(), [corp.caCert.fingerprint256, evilRoot.fingerprint256].sort());
    assert.equal((await kk('verify', '-i', 'forged.eml')).status, 0, 'now the administrator vouched for it');
  });
}

test('library: certs import of a PKCS#12 with trust "trusted" is refused', async () => {
  const store = await memoryStore();
  try {
    await assert.rejects(importCertificateFile(store, caBundle, { password: 'pw', trust: 'trusted' }), (e) => isKakitomeError(e, 'INVALID_ARGUMENT'));
    assert.equal(await store.findCertificateByFingerprint(evilRoot.fingerprint256), undefined);
  } finally {
    await store.close();
  }
});
