/**
 * A signer certificate the message leaves out (issue 12 item 7): gpgsm with
 * --include-certs 0 (as KMail users' mail shows) sends no certificate at all, so the
 * signature can be checked only with the certificate from elsewhere. As with
 * openssl's -certfile, `verify` and `decrypt` look for it among the --ca
 * certificates and the new --certfile files (untrusted: never anchors; intermediates
 * come from there too).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestPki } from '../helpers/pki.ts';
import { GpgsmPeer } from '../peers/gpgsm.ts';
import { OPENSSL } from '../peers/openssl.ts';
import { runPeerOk } from '../peers/run-peer.ts';
import { runCli } from './run-cli.ts';
import { verifySignedData } from '../../src/cms/signed-data/verify.ts';
import { signData } from '../../src/cms/signed-data/sign.ts';
import { encryptMessage } from '../../src/smime/encrypt-message.ts';
import { verifyMessage } from '../../src/smime/verify-message.ts';
import { createSignerValidator } from '../../src/pki/create-signer-validator.ts';
import { issueCertificate } from '../../src/x509/issue.ts';
import { encodePem } from '../../src/asn1/pem.ts';
import { OID } from '../../src/asn1/oids.ts';

const pki = new TestPki('Kakitome Certfile Root');
const alice = pki.identity('rsa2048', 'alice');
const bob = pki.identity('rsa2048', 'bob');
let gpg: GpgsmPeer;
before(async () => {
  gpg = await GpgsmPeer.create(pki, [alice]);
});
after(async () => {
  await gpg?.cleanup();
  pki.cleanup();
});

const CONTENT = Buffer.from('Content-Type: text/plain; charset=us-ascii\r\n\r\nThe figures for November are attached.\r\n');
const HEADERS = `From: ${alice.email}\r\nTo: ${bob.email}\r\nSubject: figures\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n`;

/** An opaque signed-data message around a SignedData (the MIME side a gpgsm-based client writes). */
function opaque(der: Buffer): Buffer {
  return Buffer.from(`${HEADERS}Content-Type: application/pkcs7-mime; smime-type=signed-data; name=smime.p7m\r\nContent-Transfer-Encoding: base64\r\n\r\n${der.toString('base64').replace(/.{76}/g, '$&\r\n')}\r\n`);
}

const file = (name: string, data: string | Uint8Array): string => {
  const p = join(pki.dir, name);
  writeFileSync(p, data);
  return p;
};

async function gpgsmSignedWithoutCertificates(): Promise<Buffer> {
  const der = await gpg.sign(CONTENT, [alice], { detached: false, includeCerts: 0 });
  // The premise: the message carries no certificate at all.
  assert.equal(verifySignedData(der).certificates.length, 0);
  return opaque(der);
}

test('verify: a gpgsm signature whose certificate the message leaves out is checked with --certfile (or the --ca bundle), and only then', async () => {
  const msg = file('gpgsm-nocerts.eml', await gpgsmSignedWithoutCertificates());
  const without = await runCli(['verify', '--ca', pki.caPath, '--revocation', 'off', '-i', msg]);
  assert.equal(without.status, 1, without.stderr);
  assert.match(without.stderr, /neither in the message nor among the certificates given/);

  const withCertfile = await runCli(['verify', '--ca', pki.caPath, '--certfile', alice.certPath, '--revocation', 'off', '-i', msg, '-o', join(pki.dir, 'out.eml')]);
  assert.equal(withCertfile.status, 0, withCertfile.stderr);

  // The signer's certificate among the --ca certificates (a bundle of the CA and the user's certificates).
  const bundle = file('bundle.pem', encodePem('CERTIFICATE', pki.caCert.der) + encodePem('CERTIFICATE', alice.cert.der));
  const inBundle = await runCli(['verify', '--ca', bundle, '--revocation', 'off', '-i', msg]);
  assert.equal(inBundle.status, 0, inBundle.stderr);

  // The certificate file as people have it: `openssl x509 -text` output.
  const text = join(pki.dir, 'alice-text.pem');
  await runPeerOk(OPENSSL, ['x509', '-in', alice.certPath, '-text', '-out', text]);
  const fromText = await runCli(['verify', '--ca', pki.caPath, '--certfile', text, '--revocation', 'off', '--json', '-i', msg]);
  assert.equal(fromText.status, 0, fromText.stderr);
  assert.equal(JSON.parse(fromText.stdout.toString()).status, 'trusted');
});

test('--certfile never makes a certificate trusted: without an anchor the signer stays untrusted', async () => {
  const msg = file('gpgsm-nocerts-2.eml', await gpgsmSignedWithoutCertificates());
  const r = await runCli(['verify', '--certfile', alice.certPath, '--certfile', pki.caPath, '--revocation', 'off', '--json', '-i', msg]);
  assert.equal(r.status, 1, r.stderr);
  const v = JSON.parse(r.stdout.toString());
  assert.equal(v.status, 'valid-untrusted', r.stdout.toString());
});

test('decrypt: a signature inside the envelope whose certificate is left out is checked with --certfile', async () => {
  const signedInside = await gpg.sign(CONTENT, [alice], { detached: false, includeCerts: 0 });
  const sealed = encryptMessage(opaque(signedInside), { recipients: [{ certificate: bob.cert }] });
  const msg = file('sealed.eml', sealed);
  const without = await runCli(['decrypt', '--cert', bob.certPath, '--key', bob.keyPath, '--ca', pki.caPath, '--revocation', 'off', '-i', msg, '-o', join(pki.dir, 'plain1.eml')]);
  assert.equal(without.status, 1, without.stderr);
  const withCertfile = await runCli(['decrypt', '--cert', bob.certPath, '--key', bob.keyPath, '--ca', pki.caPath, '--certfile', alice.certPath, '--revocation', 'off', '-i', msg, '-o', join(pki.dir, 'plain2.eml')]);
  assert.equal(withCertfile.status, 0, withCertfile.stderr);
});

test('--certfile errors name the option and the file', async () => {
  const msg = file('any.eml', await gpgsmSignedWithoutCertificates());
  const missing = await runCli(['verify', '--ca', pki.caPath, '--certfile', join(pki.dir, 'nope.pem'), '-i', msg]);
  assert.equal(missing.status, 2, missing.stderr);
  assert.match(missing.stderr, /--certfile/);
  const junk = await runCli(['verify', '--ca', pki.caPath, '--certfile', file('junk.pem', 'not a certificate\n'), '-i', msg]);
  assert.equal(junk.status, 2, junk.stderr);
  assert.match(junk.stderr, /--certfile .*junk\.pem/);
});

test('library: the extra certificates are intermediates too, as openssl -certfile adds them to the untrusted chain', async () => {
  // root (anchor) -> intermediate -> leaf; the message carries no certificate.
  const ik = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const intermediate = issueCertificate({ subject: { commonName: 'Kakitome Certfile Issuing CA' }, publicKey: ik.publicKey, issuer: pki.caCert, signingKey: pki.caKey, ca: true, keyUsage: ['keyCertSign', 'cRLSign'] });
  const lk = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const leaf = issueCertificate({ subject: { commonName: 'Carol', emailAddress: 'carol@example.com' }, publicKey: lk.publicKey, issuer: intermediate, signingKey: ik.privateKey, keyUsage: ['digitalSignature'], extKeyUsage: [OID.emailProtection], emails: ['carol@example.com'] });
  const der = signData(CONTENT, { signers: [{ certificate: leaf, key: lk.privateKey }], includeSignerCertificates: false });
  assert.equal(verifySignedData(Buffer.from(der)).certificates.length, 0);
  const msg = Buffer.from(opaque(Buffer.from(der)).toString('latin1').replace(`From: ${alice.email}`, 'From: carol@example.com'), 'latin1');
  const validateSigner = createSignerValidator({ anchors: [pki.caCert], revocation: { mode: 'off' } });
  assert.equal((await verifyMessage(msg, { validateSigner })).signers[0]!.code, 'CERT_UNTRUSTED');
  const leafOnly = await verifyMessage(msg, { validateSigner, certificates: [leaf] });
  assert.equal(leafOnly.signers[0]!.status, 'valid');
  assert.notEqual(leafOnly.status, 'trusted', 'no path without the intermediate');
  const both = await verifyMessage(msg, { validateSigner, certificates: [leaf, intermediate] });
  assert.equal(both.status, 'trusted', both.summary);
});
