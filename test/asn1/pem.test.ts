/**
 * PEM files as people have them (issue 12 item 7): `openssl x509 -text` writes
 * several KiB of text above the certificate block, `openssl rsa -text` likewise
 * above the key. OpenSSL reads the blocks and ignores the text around them;
 * so must every reader of certificate and key files here.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { TestPki } from '../helpers/pki.ts';
import { OPENSSL, requireOpenssl } from '../peers/openssl.ts';
import { runPeerOk, Workdir } from '../peers/run-peer.ts';
import { decodePem, encodePem, isPem } from '../../src/asn1/pem.ts';
import { parseCertificate, parseCertificates } from '../../src/x509/certificate.ts';
import { loadTrustAnchors } from '../../src/pki/load-trust-anchors.ts';
import { loadPrivateKey, keyMatchesCertificate } from '../../src/keys/private-key.ts';
import { issueCertificate } from '../../src/x509/issue.ts';

const pki = new TestPki('Kakitome PEM Text Root');
const w = new Workdir('pem');
after(() => {
  pki.cleanup();
  w.cleanup();
});
const alice = pki.identity('rsa2048', 'alice');

/** `openssl x509 -text` output: the decoded certificate as text, then its PEM block. */
async function x509Text(certPath: string): Promise<Buffer> {
  requireOpenssl();
  const out = w.path('text.pem');
  await runPeerOk(OPENSSL, ['x509', '-in', certPath, '-text', '-out', out]);
  return w.read(out);
}

test('a certificate file with `openssl x509 -text` output above the block reads as the certificate', async () => {
  const text = await x509Text(alice.certPath);
  const begin = text.indexOf('-----BEGIN CERTIFICATE-----');
  // The premise: the text is there and longer than a first glance at the file would cover.
  assert.ok(begin > 2048, `the text above the block is ${begin} bytes`);
  assert.match(text.subarray(0, begin).toString('latin1'), /Certificate:\n\s+Data:/);
  assert.equal(isPem(text), true);
  const cert = parseCertificate(text);
  assert.deepEqual(cert.der, alice.cert.der);
});

test('the CA bundle of openssl x509 -text outputs becomes the anchors, as with plain PEM', async () => {
  const bundle = Buffer.concat([await x509Text(pki.caPath), Buffer.from('\nSome notes a person wrote between the two.\n'), await x509Text(alice.certPath)]);
  const path = w.write('bundle.pem', bundle);
  const anchors = await loadTrustAnchors([path]);
  assert.deepEqual(anchors.map((c) => c.fingerprint256), [pki.caCert.fingerprint256, alice.cert.fingerprint256]);
});

test('a private key file with `openssl rsa -text` output above the block opens', async () => {
  requireOpenssl();
  const out = w.path('key-text.pem');
  await runPeerOk(OPENSSL, ['rsa', '-in', alice.keyPath, '-text', '-out', out]);
  const text = w.read(out);
  assert.ok(text.indexOf('-----BEGIN') > 2048, 'the key dump comes first');
  assert.equal(keyMatchesCertificate(loadPrivateKey(text), alice.cert), true);
});

test('text inside a block is still refused, and text alone is no certificate', () => {
  const pem = encodePem('CERTIFICATE', alice.cert.der);
  const broken = pem.replace(/\n(.{10})/, '\n$1 not base64 !');
  assert.throws(() => parseCertificates(broken), (e: unknown) => (e as { code?: string }).code === 'MALFORMED');
  assert.throws(() => parseCertificates('Certificate:\n    Data:\n        Version: 3 (0x2)\n'), (e: unknown) => (e as { code?: string }).code === 'MALFORMED');
});

test('DER that happens to contain a BEGIN line is still read as DER', () => {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const cert = issueCertificate({ subject: { commonName: '-----BEGIN CERTIFICATE-----' }, publicKey, signingKey: privateKey });
  assert.ok(cert.der.includes('-----BEGIN '));
  assert.equal(isPem(cert.der), false);
  assert.deepEqual(parseCertificate(cert.der).der, cert.der);
  // And the same certificate in PEM with text around it.
  const wrapped = `notes\n${encodePem('CERTIFICATE', cert.der)}trailing notes\n`;
  assert.deepEqual(decodePem(wrapped).map((b) => b.label), ['CERTIFICATE']);
  assert.deepEqual(parseCertificate(wrapped).der, cert.der);
});
