import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { issueCertificate } from '../../src/x509/issue.ts';
import { Certificate, parseCertificates, parseCertificate } from '../../src/x509/certificate.ts';
import { encodePem } from '../../src/asn1/pem.ts';
import { OID } from '../../src/asn1/oids.ts';
import { KakitomeError } from '../../src/errors.ts';
import { loadPrivateKey, keyMatchesCertificate } from '../../src/keys/private-key.ts';

const ca = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const caCert = issueCertificate({ subject: { commonName: 'Root', country: 'JP' }, publicKey: ca.publicKey, signingKey: ca.privateKey, ca: { pathLength: 0 }, keyUsage: ['keyCertSign', 'cRLSign'] });
const user = generateKeyPairSync('rsa', { modulusLength: 2048 });
const leaf = issueCertificate({
  subject: { commonName: '山田 花子', emailAddress: 'hanako@example.jp' },
  publicKey: user.publicKey,
  issuer: caCert,
  signingKey: ca.privateKey,
  keyUsage: ['digitalSignature', 'keyEncipherment'],
  extKeyUsage: [OID.emailProtection],
  emails: ['hanako@example.jp', 'h.yamada@example.jp'],
});

test('issued certificates chain and carry the requested extensions', () => {
  assert.ok(leaf.x509.checkIssued(caCert.x509));
  assert.ok(leaf.x509.verify(caCert.publicKey));
  assert.ok(caCert.x509.ca);
  assert.deepEqual([...(leaf.keyUsage ?? [])].sort(), ['digitalSignature', 'keyEncipherment']);
  assert.deepEqual(leaf.emailAddresses, ['hanako@example.jp', 'h.yamada@example.jp']);
  assert.equal(leaf.version, 3);
  assert.ok(leaf.subjectKeyIdentifier && leaf.subjectKeyIdentifier.length === 20);
  assert.ok(leaf.matchesIssuerSerial(caCert.subject, leaf.serial));
  assert.ok(!leaf.matchesIssuerSerial(leaf.subject, leaf.serial));
  assert.match(leaf.subjectText, /山田 花子/);
});

test('PEM bundles and DER both parse; junk does not', () => {
  const bundle = encodePem('CERTIFICATE', leaf.der) + encodePem('CERTIFICATE', caCert.der);
  const certs = parseCertificates(bundle);
  assert.equal(certs.length, 2);
  assert.equal(certs[1]!.fingerprint256, caCert.fingerprint256);
  assert.equal(parseCertificate(leaf.der).serialHex, leaf.serialHex);
  assert.throws(() => parseCertificate(Buffer.concat([leaf.der, Buffer.of(0)])), (e: unknown) => e instanceof KakitomeError && e.code === 'MALFORMED');
  assert.throws(() => parseCertificates('-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n'), KakitomeError);
});

test('a certificate with a duplicated extension is rejected (RFC 5280 4.2)', () => {
  assert.throws(
    () =>
      issueCertificate({
        subject: { commonName: 'dup' },
        publicKey: user.publicKey,
        issuer: caCert,
        signingKey: ca.privateKey,
        keyUsage: ['digitalSignature'],
        extraExtensions: [Buffer.from('300e0603551d0f0101ff040403020780', 'hex')],
      }),
    (e: unknown) => e instanceof KakitomeError && e.code === 'MALFORMED',
  );
});

test('private keys load from PEM and DER, encrypted with a passphrase, and match their certificates', () => {
  const pem = user.privateKey.export({ format: 'pem', type: 'pkcs8' });
  assert.ok(keyMatchesCertificate(loadPrivateKey(pem), leaf));
  assert.ok(!keyMatchesCertificate(loadPrivateKey(pem), caCert));
  const pkcs1 = user.privateKey.export({ format: 'der', type: 'pkcs1' });
  assert.ok(keyMatchesCertificate(loadPrivateKey(pkcs1), leaf));
  const enc = user.privateKey.export({ format: 'pem', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase: 'secret' });
  assert.ok(keyMatchesCertificate(loadPrivateKey(enc, 'secret'), leaf));
  assert.throws(() => loadPrivateKey(enc, 'wrong'), (e: unknown) => e instanceof KakitomeError && e.code === 'KEY_INVALID' && /passphrase/.test(e.message));
  assert.throws(() => loadPrivateKey(enc), (e: unknown) => e instanceof KakitomeError && e.code === 'KEY_INVALID' && /is encrypted: give its passphrase/.test(e.message));
  const encDer = user.privateKey.export({ format: 'der', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase: 'secret' });
  assert.ok(keyMatchesCertificate(loadPrivateKey(encDer, 'secret'), leaf));
  assert.throws(() => loadPrivateKey(encDer), (e: unknown) => e instanceof KakitomeError && /is encrypted: give its passphrase/.test(e.message));
  assert.throws(() => loadPrivateKey(encDer, 'wrong'), (e: unknown) => e instanceof KakitomeError && /wrong passphrase/.test(e.message));
  assert.throws(() => loadPrivateKey(Buffer.from('not a key')), (e: unknown) => e instanceof KakitomeError && e.code === 'KEY_INVALID');
});
