/**
 * Issue 9, item 1: certificate-directory poisoning through harvesting.
 *
 * Mallory holds a genuine certificate from the company CA, so her signed mail is
 * `trusted`. Her message carries a self-signed certificate naming ceo@example.com
 * (and her own address, which RFC 8551 2.5.3's "same mailbox" check looked for),
 * and her SMIMEEncryptionKeyPreference points to it. Before the fix it was stored
 * without path validation, filed under every address it names and marked
 * preferred, so `encrypt --to ceo@example.com` encrypted to Mallory.
 *
 * The defence: a harvested certificate must chain to an anchor for e-mail
 * protection with a key-management key usage; it is filed only under the verified
 * From address; it never outranks an imported or trusted one; a new key for a
 * known address is recorded as pending and shown, never swapped in; and encrypt
 * validates the chosen certificate again (path and revocation) when it uses it.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestPki } from '../helpers/pki.ts';
import { runCli, draftMessage, storeHomeEnv } from '../cli/run-cli.ts';
import { buildCrl, endEntity, rootCa, StaticHttpServer } from '../pki/pki-builder.ts';
import { issueCertificate } from '../../src/x509/issue.ts';
import { encodePem } from '../../src/asn1/pem.ts';
import { OID } from '../../src/asn1/oids.ts';
import { signMessage } from '../../src/smime/sign-message.ts';
import { verifyMessage } from '../../src/smime/verify-message.ts';
import { encryptMessage } from '../../src/smime/encrypt-message.ts';
import { decryptMessage } from '../../src/smime/decrypt-message.ts';
import { Store } from '../../src/store/store.ts';
import { openSqliteEngine } from '../../src/store/sqlite-engine.ts';
import { masterKeyFromBytes } from '../../src/keys/master-key.ts';
import { createStoreTrustStore } from '../../src/store/store-trust-store.ts';
import { harvestSigner, type HarvestOutcome } from '../../src/store/harvest-signer.ts';
import { findTrustedRecipientCertificate } from '../../src/store/find-trusted-recipient-certificate.ts';
import { createSignerValidator } from '../../src/pki/create-signer-validator.ts';
import { createHttpFetcher } from '../../src/pki/create-http-fetcher.ts';
import { isKakitomeError } from '../../src/errors.ts';
import type { Certificate } from '../../src/x509/certificate.ts';
import type { MessageVerdict } from '../../src/smime/verdict.ts';
import type { SignerValidator } from '../../src/pki/types.ts';

const pki = new TestPki('Poisoning Corp Root');
const ceo = pki.identity('p256', 'ceo');
const mallory = pki.identity('p256', 'mallory');
const dir = mkdtempSync(join(tmpdir(), 'kakitome-poison-'));
after(() => {
  pki.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

/** Mallory's key, in a certificate she signed herself, naming the CEO (and herself). */
const rogueKeys = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const rogue = issueCertificate({
  subject: { commonName: 'CEO', emailAddress: 'ceo@example.com' },
  publicKey: rogueKeys.publicKey,
  signingKey: rogueKeys.privateKey,
  keyUsage: ['digitalSignature', 'keyAgreement'],
  extKeyUsage: [OID.emailProtection],
  emails: ['ceo@example.com', 'mallory@example.com'],
});

/** The same trick with a certificate the trusted CA issued for both addresses (a mis-issuance). */
const misissuedKeys = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const misissued = issueCertificate({
  subject: { commonName: 'Mallory and the CEO' },
  publicKey: misissuedKeys.publicKey,
  issuer: pki.caCert,
  signingKey: pki.caKey,
  keyUsage: ['keyAgreement'],
  extKeyUsage: [OID.emailProtection],
  emails: ['ceo@example.com', 'mallory@example.com'],
});

function signedBy(id: { cert: Certificate; key: import('node:crypto').KeyObject; email: string }, subject: string, preference?: Certificate): Buffer {
  return signMessage(draftMessage(`<${id.email}>`, 'staff@example.com', subject), {
    signers: [{ certificate: id.cert, key: id.key, ...(preference ? { encryptionKeyPreference: preference } : {}) }],
    ...(preference ? { certificates: [preference] } : {}),
  });
}

const ceoMail = signedBy(ceo, 'Quarterly figures');
const poisoned = signedBy(mallory, 'Lunch?', rogue);
const poisonedMisissued = signedBy(mallory, 'Lunch again?', misissued);

// ----------------------------------------------------------------- library

/** Runs `fn` on a fresh in-memory store that trusts the company CA, with a validator over it (no revocation). */
async function withStore(fn: (store: Store, validate: SignerValidator) => Promise<void>): Promise<void> {
  const store = await Store.open(openSqliteEngine(':memory:'), { masterKey: masterKeyFromBytes(randomBytes(32)) });
  try {
    await store.importCertificate(pki.caCert, { trust: 'trusted' });
    await fn(store, createSignerValidator({ trustStore: createStoreTrustStore(store), revocation: { mode: 'off' } }));
  } finally {
    await store.close();
  }
}

async function verifyAndHarvest(store: Store, validate: SignerValidator, message: Buffer): Promise<{ verdict: MessageVerdict; results: HarvestOutcome }> {
  const verdict = await verifyMessage(message, { validateSigner: validate });
  assert.equal(verdict.status, 'trusted', verdict.summary);
  const s = verdict.signers[0]!;
  const results = await harvestSigner(store, { signer: { status: 'valid', certificate: s.certificate!, capabilities: s.capabilities, encryptionKeyPreference: s.encryptionKeyPreference }, trust: s.trust!, carried: s.carried ?? [] }, validate);
  return { verdict, results };
}

async function encryptsTo(store: Store, validate: SignerValidator, address: string): Promise<Certificate | undefined> {
  const found = await findTrustedRecipientCertificate(store, address, validate);
  return found?.record.certificate;
}

test('library: a self-signed certificate in the preference attribute is not kept, and mail to the CEO goes to the CEO', () => withStore(async (store, validate) => {
  await verifyAndHarvest(store, validate, ceoMail);
  const { results } = await verifyAndHarvest(store, validate, poisoned);
  assert.ok(results.kept.every((r) => r.record.certificate.fingerprint256 !== rogue.fingerprint256), 'the rogue certificate is refused');
  assert.ok(results.refused.some((r) => r.certificate.fingerprint256 === rogue.fingerprint256 && r.preferred && r.code === 'CERT_UNTRUSTED'), 'and the refusal is reported');
  assert.equal(await store.findCertificateByFingerprint(rogue.fingerprint256), undefined, 'nothing about it is stored');
  assert.deepEqual((await store.listCertificates({ email: 'ceo@example.com' })).map((r) => r.certificate.fingerprint256), [ceo.cert.fingerprint256]);

  const to = await encryptsTo(store, validate, 'ceo@example.com');
  assert.equal(to?.fingerprint256, ceo.cert.fingerprint256);
  const sealed = encryptMessage(draftMessage('<staff@example.com>', 'ceo@example.com', 'Board'), { recipients: [{ certificate: to! }] });
  assert.equal((await decryptMessage(sealed, { keys: [{ certificate: ceo.cert, key: ceo.key }] })).message.includes('Board'), true);
  await assert.rejects(decryptMessage(sealed, { keys: [{ certificate: rogue, key: rogueKeys.privateKey }] }), (e) => isKakitomeError(e));
}));

test('library: without any certificate for the CEO, the poisoned message still files nothing under ceo@', () => withStore(async (store, validate) => {
  await verifyAndHarvest(store, validate, poisoned);
  assert.equal(await store.findRecipientCertificate('ceo@example.com'), undefined);
  assert.equal(await encryptsTo(store, validate, 'ceo@example.com'), undefined);
}));

test('library: a CA-issued certificate naming the CEO too is filed under the verified From only', () => withStore(async (store, validate) => {
  await verifyAndHarvest(store, validate, ceoMail);
  const { results } = await verifyAndHarvest(store, validate, poisonedMisissued);
  const kept = results.kept.find((r) => r.record.certificate.fingerprint256 === misissued.fingerprint256);
  assert.ok(kept, 'the certificate chains and names the From address: it is kept for Mallory');
  assert.deepEqual(kept.record.emails, ['mallory@example.com'], 'filed under mallory@ only');
  assert.equal((await encryptsTo(store, validate, 'ceo@example.com'))?.fingerprint256, ceo.cert.fingerprint256);
  assert.ok(!(await store.listCertificates({ email: 'ceo@example.com' })).some((r) => r.certificate.fingerprint256 === misissued.fingerprint256));
}));

test('library: a harvested certificate never outranks an imported one, even with a new key and a preference', () => withStore(async (store, validate) => {
  await store.importCertificate(ceo.cert);
  // A genuine, CA-issued second certificate for the CEO with another key, announced as preferred.
  const otherKeys = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const other = issueCertificate({ subject: { commonName: 'CEO (new)' }, publicKey: otherKeys.publicKey, issuer: pki.caCert, signingKey: pki.caKey, keyUsage: ['keyAgreement'], extKeyUsage: [OID.emailProtection], emails: ['ceo@example.com'] });
  const { results } = await verifyAndHarvest(store, validate, signedBy(ceo, 'new key', other));
  const r = results.kept.find((x) => x.record.certificate.fingerprint256 === other.fingerprint256)!;
  assert.equal(r.filing, 'pending', 'a new key for a known address waits for an administrator');
  assert.deepEqual(r.knownCertificates, [ceo.cert.fingerprint256]);
  assert.equal((await encryptsTo(store, validate, 'ceo@example.com'))?.fingerprint256, ceo.cert.fingerprint256);
}));

test('library: encrypt re-validates the chosen certificate and refuses one revoked after it was harvested', async () => {
  const http = new StaticHttpServer();
  await http.start();
  const store = await Store.open(openSqliteEngine(':memory:'), { masterKey: masterKeyFromBytes(randomBytes(32)) });
  try {
    const root = rootCa('Revoking Corp Root');
    const dora = endEntity(root, 'dora@example.com', { crlDistributionPoints: [http.url('/root.crl')] });
    http.files.set('/root.crl', buildCrl({ issuer: root, crlNumber: 1 }));
    await store.importCertificate(root.cert, { trust: 'trusted' });
    // Each validation is a fresh look (no cache carried from harvest to encrypt).
    const validator = () => createSignerValidator({ trustStore: createStoreTrustStore(store), revocation: { mode: 'soft-fail' }, fetcher: createHttpFetcher({ allowInternal: ['127.0.0.1'] }) });
    const mail = signMessage(draftMessage('<dora@example.com>', 'staff@example.com', 'Hello'), { signers: [{ certificate: dora.cert, key: dora.key }] });
    await verifyAndHarvest(store, validator(), mail);
    assert.equal((await encryptsTo(store, validator(), 'dora@example.com'))?.fingerprint256, dora.cert.fingerprint256);

    http.files.set('/root.crl', buildCrl({ issuer: root, crlNumber: 2, revoked: [{ cert: dora.cert, reason: 1 }] }));
    await assert.rejects(encryptsTo(store, validator(), 'dora@example.com'), (e) => isKakitomeError(e, 'CERT_REVOKED'));
  } finally {
    await store.close();
    await http.stop();
  }
});

// --------------------------------------------------------------------- CLI

describeCli();

function describeCli(): void {
  const home = join(dir, 'home');
  const env = storeHomeEnv(home, dir);
  const kk = (args: string[], input?: Buffer) => runCli(args, { env, cwd: dir, ...(input ? { input } : {}) });
  const json = (r: { stdout: Buffer }) => JSON.parse(r.stdout.toString());

  before(async () => {
    assert.equal((await kk(['init'])).status, 0);
    assert.equal((await kk(['certs', 'import', pki.caPath, '--trust', 'trusted'])).status, 0);
    for (const [name, msg] of [['ceo.eml', ceoMail], ['poisoned.eml', poisoned]] as const) writeFileSync(join(dir, name), msg);
  });

  /** Decrypts OUT with the CEO's own key files (no store): proves who the envelope is for. */
  async function readableByCeo(file: string): Promise<boolean> {
    const r = await runCli(['decrypt', '--cert', ceo.certPath, '--key', ceo.keyPath, '-i', file, '-o', `${file}.read`], { env: { ...env, KAKITOME_HOME: '' }, cwd: dir });
    return r.status === 0;
  }

  test('CLI: verify keeps the CEO, refuses the rogue preference with a warning; encrypt --to ceo@ encrypts to the CEO', async () => {
    const v1 = await kk(['verify', '--json', '-i', 'ceo.eml']);
    assert.equal(v1.status, 0, v1.stderr);
    const v2 = await kk(['verify', '--json', '-i', 'poisoned.eml']);
    assert.equal(v2.status, 0, 'Mallory herself is a trusted signer');
    const warnings: string[] = json(v2).warnings;
    assert.ok(warnings.some((w) => w.includes(rogue.fingerprint256.slice(0, 16)) && /not kept/.test(w)), warnings.join('\n'));

    const listed = json(await kk(['certs', 'list', '--email', 'ceo@example.com', '--json'])).certificates;
    assert.deepEqual(listed.map((c: { fingerprint: string }) => c.fingerprint), [ceo.cert.fingerprint256]);

    writeFileSync(join(dir, 'board.eml'), draftMessage('<staff@example.com>', 'ceo@example.com', 'Board'));
    const enc = await kk(['encrypt', '--to', 'ceo@example.com', '--no-self', '-i', 'board.eml', '-o', 'board-sealed.eml']);
    assert.equal(enc.status, 0, enc.stderr);
    assert.equal(await readableByCeo('board-sealed.eml'), true, 'the envelope is for the CEO');
    const byRogue = await runCli(['decrypt', '--cert', join(dir, 'rogue.pem'), '--key', join(dir, 'rogue.key'), '-i', 'board-sealed.eml'], { env: { ...env, KAKITOME_HOME: '' }, cwd: dir, });
    assert.notEqual(byRogue.status, 0, 'and not for Mallory');
  });

  test('CLI: a new key for the CEO is recorded as pending, shown in the verdict and in certs history, and used only once accepted', async () => {
    const renewedKeys = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const renewed = issueCertificate({ subject: { commonName: 'Test ceo (renewed)' }, publicKey: renewedKeys.publicKey, issuer: pki.caCert, signingKey: pki.caKey, keyUsage: ['digitalSignature', 'keyAgreement'], extKeyUsage: [OID.emailProtection], emails: ['ceo@example.com'] });
    writeFileSync(join(dir, 'renewed.eml'), signMessage(draftMessage('<ceo@example.com>', 'staff@example.com', 'New certificate'), { signers: [{ certificate: renewed, key: renewedKeys.privateKey }] }));
    const v = await kk(['verify', '--json', '-i', 'renewed.eml']);
    assert.equal(v.status, 0, v.stderr);
    const warnings: string[] = json(v).warnings;
    assert.ok(warnings.some((w) => /new key/i.test(w) && w.includes('ceo@example.com') && w.includes(renewed.fingerprint256)), warnings.join('\n'));
    const human = await kk(['verify', '-i', 'renewed.eml']);
    assert.match(human.stderr, /new key/i);

    const history = json(await kk(['certs', 'history', 'ceo@example.com', '--json']));
    assert.deepEqual(history.certificates.map((c: { fingerprint: string; filing: string }) => [c.fingerprint, c.filing]), [
      [ceo.cert.fingerprint256, 'current'],
      [renewed.fingerprint256, 'pending'],
    ]);
    assert.match((await kk(['certs', 'list', '--email', 'ceo@example.com'])).stdout.toString(), /pending/);

    writeFileSync(join(dir, 'memo.eml'), draftMessage('<staff@example.com>', 'ceo@example.com', 'Memo'));
    assert.equal((await kk(['encrypt', '--to', 'ceo@example.com', '--no-self', '-i', 'memo.eml', '-o', 'memo-1.eml'])).status, 0);
    assert.equal(await readableByCeo('memo-1.eml'), true, 'the known key stays in use');

    const accepted = await kk(['certs', 'accept', renewed.fingerprint256, '--email', 'ceo@example.com', '--json']);
    assert.equal(accepted.status, 0, accepted.stderr);
    assert.equal((await kk(['encrypt', '--to', 'ceo@example.com', '--no-self', '-i', 'memo.eml', '-o', 'memo-2.eml'])).status, 0);
    assert.equal(await readableByCeo('memo-2.eml'), false, 'after acceptance the new key is used');
    writeFileSync(join(dir, 'renewed.pem'), encodePem('CERTIFICATE', renewed.der));
    writeFileSync(join(dir, 'renewed.key'), renewedKeys.privateKey.export({ format: 'pem', type: 'pkcs8' }));
    const r = await runCli(['decrypt', '--cert', 'renewed.pem', '--key', 'renewed.key', '-i', 'memo-2.eml', '-o', 'memo-2.read'], { env: { ...env, KAKITOME_HOME: '' }, cwd: dir });
    assert.equal(r.status, 0, r.stderr);
    const after = json(await kk(['certs', 'history', 'ceo@example.com', '--json']));
    assert.deepEqual(after.certificates.map((c: { filing: string }) => c.filing), ['superseded', 'current']);
  });

  test('CLI: encrypt refuses a recipient certificate revoked after it was harvested (CERT_REVOKED, nothing written)', async () => {
    const http = new StaticHttpServer();
    await http.start();
    try {
      const root = rootCa('CLI Revoking Root');
      const erin = endEntity(root, 'erin@example.com', { crlDistributionPoints: [http.url('/root.crl')] });
      http.files.set('/root.crl', buildCrl({ issuer: root, crlNumber: 1 }));
      writeFileSync(join(dir, 'revoking-root.pem'), encodePem('CERTIFICATE', root.cert.der));
      assert.equal((await kk(['certs', 'import', 'revoking-root.pem', '--trust', 'trusted'])).status, 0);
      writeFileSync(join(dir, 'erin.eml'), signMessage(draftMessage('<erin@example.com>', 'staff@example.com', 'Hi'), { signers: [{ certificate: erin.cert, key: erin.key }] }));
      const v = await kk(['verify', '--allow-internal-fetch', '127.0.0.1', '-i', 'erin.eml']);
      assert.equal(v.status, 0, v.stderr);
      writeFileSync(join(dir, 'to-erin.eml'), draftMessage('<staff@example.com>', 'erin@example.com', 'Plans'));
      const first = await kk(['encrypt', '--allow-internal-fetch', '127.0.0.1', '--to', 'erin@example.com', '--no-self', '-i', 'to-erin.eml', '-o', 'to-erin-1.eml']);
      assert.equal(first.status, 0, first.stderr);

      http.files.set('/root.crl', buildCrl({ issuer: root, crlNumber: 2, revoked: [{ cert: erin.cert, reason: 1 }] }));
      const refused = await kk(['encrypt', '--allow-internal-fetch', '127.0.0.1', '--to', 'erin@example.com', '--no-self', '-i', 'to-erin.eml', '-o', 'to-erin-2.eml']);
      assert.equal(refused.status, 1, refused.stderr);
      assert.match(refused.stderr, /CERT_REVOKED/);
      assert.throws(() => readFileSync(join(dir, 'to-erin-2.eml')), /ENOENT/);
    } finally {
      await http.stop();
    }
  });

  before(() => {
    writeFileSync(join(dir, 'rogue.pem'), encodePem('CERTIFICATE', rogue.der));
    writeFileSync(join(dir, 'rogue.key'), rogueKeys.privateKey.export({ format: 'pem', type: 'pkcs8' }));
  });
}
