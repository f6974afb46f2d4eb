/**
 * Certificate directory sources: files in every form, and harvesting from a
 * verified signature (real CMS SignedData from our signer, verified by our verifier).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes, generateKeyPairSync } from 'node:crypto';
import { TestPki } from '../helpers/pki.ts';
import { Store } from '../../src/store/store.ts';
import { openSqliteEngine } from '../../src/store/sqlite-engine.ts';
import { masterKeyFromBytes } from '../../src/keys/master-key.ts';
import { importCertificateFile } from '../../src/store/import-certificate-file.ts';
import { harvestSigner } from '../../src/store/harvest-signer.ts';
import { createStoreTrustStore } from '../../src/store/store-trust-store.ts';
import { createSignerValidator } from '../../src/pki/create-signer-validator.ts';
import { exportPkcs12 } from '../../src/keys/export-pkcs12.ts';
import { signData } from '../../src/cms/signed-data/sign.ts';
import { verifySignedData } from '../../src/cms/signed-data/verify.ts';
import { parseSmimeCapabilities } from '../../src/cms/capabilities.ts';
import { decode } from '../../src/asn1/ber.ts';
import { OID } from '../../src/asn1/oids.ts';
import { issueCertificate } from '../../src/x509/issue.ts';
import { isKakitomeError } from '../../src/errors.ts';

const pki = new TestPki('Directory Root');
const alice = pki.identity('rsa2048', 'alice');
const dan = pki.identity('p256', 'dan');
let store: Store;
before(async () => {
  store = await Store.open(openSqliteEngine(':memory:'), { masterKey: masterKeyFromBytes(randomBytes(32)) });
});
after(async () => {
  await store.close();
  pki.cleanup();
});
const trusted = { status: 'trusted' as const, identity: { status: 'match' as const, from: 'erin@example.com', certificateAddresses: [], message: '' } };

test('imports PEM, DER, certs-only (openssl crl2pkcs7) and PKCS#12 files', async () => {
  const pem = await importCertificateFile(store, readFileSync(alice.certPath));
  assert.equal(pem.certificates[0]!.certificate.fingerprint256, alice.cert.fingerprint256);
  assert.equal(pem.certificates[0]!.trust, 'imported');
  const der = await importCertificateFile(store, dan.cert.der);
  assert.equal(der.certificates[0]!.certificate.fingerprint256, dan.cert.fingerprint256);
  const p7 = join(pki.dir, 'certs.p7b');
  execFileSync('openssl', ['crl2pkcs7', '-nocrl', '-certfile', pki.caPath, '-certfile', alice.certPath, '-outform', 'DER', '-out', p7]);
  const co = await importCertificateFile(store, readFileSync(p7), { trust: 'trusted' });
  assert.equal(co.certificates.length, 2);
  const p12 = exportPkcs12({ key: dan.key, certificate: dan.cert, chain: [pki.caCert], password: 'pw', iterations: 2048 });
  await assert.rejects(importCertificateFile(store, p12), (e) => isKakitomeError(e, 'INVALID_ARGUMENT'));
  const got = await importCertificateFile(store, p12, { password: 'pw' });
  assert.ok(got.key);
  assert.equal((await store.findCertificateByFingerprint(dan.cert.fingerprint256))?.hasPrivateKey, true);
  // The trust store sees the trusted root as an anchor, never the end entities.
  const anchors = await createStoreTrustStore(store).anchors();
  assert.deepEqual(anchors.map((c) => c.fingerprint256), [pki.caCert.fingerprint256]);
});

test('harvests a verified signer with its capabilities and encryption key preference', async () => {
  // Erin signs with one certificate and names another (her encryption certificate) as preferred.
  const mk = (kind: 'sig' | 'enc') => {
    const kp = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const cert = issueCertificate({ subject: { commonName: `erin ${kind}` }, publicKey: kp.publicKey, issuer: pki.caCert, signingKey: pki.caKey, emails: ['erin@example.com'], extKeyUsage: [OID.emailProtection], keyUsage: kind === 'sig' ? ['digitalSignature'] : ['keyAgreement'] });
    return { cert, key: kp.privateKey };
  };
  const sig = mk('sig');
  const enc = mk('enc');
  const signed = signData(Buffer.from('hello'), { signers: [{ certificate: sig.cert, key: sig.key, encryptionKeyPreference: enc.cert }], certificates: [enc.cert] });
  const v = verifySignedData(signed);
  assert.equal(v.status, 'valid');
  const signer = v.signers[0]!;
  assert.ok(signer.capabilities?.length);

  const validate = createSignerValidator({ anchors: [pki.caCert], revocation: { mode: 'off' } });
  await assert.rejects(harvestSigner(store, { signer, trust: { ...trusted, status: 'untrusted' } }, validate), (e) => isKakitomeError(e, 'CERT_UNTRUSTED'));
  await assert.rejects(harvestSigner(store, { signer, trust: { ...trusted, identity: { ...trusted.identity, status: 'mismatch' } } }, validate), (e) => isKakitomeError(e, 'IDENTITY_MISMATCH'));
  assert.equal(await store.findCertificateByFingerprint(sig.cert.fingerprint256), undefined, 'nothing stored from a refused harvest');

  const results = await harvestSigner(store, { signer, trust: trusted, carried: v.certificates }, validate);
  // The signing-only certificate is no encryption certificate; the preferred one is kept for erin@ only.
  assert.deepEqual(results.refused.map((r) => [r.certificate.fingerprint256, r.code]), [[sig.cert.fingerprint256, 'CERT_USAGE']]);
  assert.deepEqual(results.kept.map((r) => [r.record.certificate.fingerprint256, r.address, r.filing]), [[enc.cert.fingerprint256, 'erin@example.com', 'current']]);
  const best = await store.findRecipientCertificate('erin@example.com');
  assert.equal(best?.certificate.fingerprint256, enc.cert.fingerprint256, 'the preferred encryption certificate wins');
  assert.equal(best?.trust, 'harvested');
  const caps = parseSmimeCapabilities(decode(best!.capabilities!)).map((c) => c.capabilityId);
  assert.equal(caps[0], OID.aes256_GCM);
});
