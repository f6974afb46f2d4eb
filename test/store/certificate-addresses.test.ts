/**
 * The addresses a certificate is filed under are the ones identity matching reads
 * (x509/certificate-mailboxes.ts, RFC 8550 3): an SmtpUTF8Mailbox (RFC 9598) and
 * every emailAddress of a subject without subjectAltName addresses, in the store's
 * one form (the domain as its A-label). And a certificate whose public key cannot be
 * read is not imported at all.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestPki } from '../helpers/pki.ts';
import { extension, rawCertificate, signerOf } from '../pki/pki-builder.ts';
import { Store } from '../../src/store/store.ts';
import { openSqliteEngine } from '../../src/store/sqlite-engine.ts';
import { masterKeyFromBytes } from '../../src/keys/master-key.ts';
import { issueCertificate } from '../../src/x509/issue.ts';
import { Certificate } from '../../src/x509/certificate.ts';
import { certificateMailboxes } from '../../src/x509/certificate-mailboxes.ts';
import { matchSenderIdentity } from '../../src/pki/match-sender-identity.ts';
import { OID } from '../../src/asn1/oids.ts';
import { sequence, set, setOf, oid, utf8String, ia5String, bitString, tlv } from '../../src/asn1/der.ts';
import { isKakitomeError } from '../../src/errors.ts';

const pki = new TestPki('Addresses Root');
const dir = mkdtempSync(join(tmpdir(), 'kakitome-addresses-'));
let store: Store;
before(async () => {
  store = await Store.open(openSqliteEngine(join(dir, 'kakitome.db')), { masterKey: masterKeyFromBytes(randomBytes(32)), actor: 'tester' });
});
after(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  pki.cleanup();
});

const rsa = () => generateKeyPairSync('rsa', { modulusLength: 2048 });
const spkiOf = (k: { export(o: { format: 'der'; type: 'spki' }): Buffer }) => k.export({ format: 'der', type: 'spki' });
/** keyUsage digitalSignature + keyEncipherment (an RSA certificate to sign with and encrypt to). */
const keyUsage = extension(OID.keyUsage, true, bitString(Buffer.of(0xa0), 5));
const emailProtection = extension(OID.extKeyUsage, false, sequence(oid(OID.emailProtection)));
const atv = (type: string, value: Buffer) => sequence(oid(type), value);

test('a certificate whose address is an SmtpUTF8Mailbox is filed under it (domain as A-label) and found to encrypt to', async () => {
  const cert = issueCertificate({
    subject: { commonName: '山田@例え.jp' }, publicKey: rsa().publicKey, issuer: pki.caCert, signingKey: pki.caKey,
    keyUsage: ['digitalSignature', 'keyEncipherment'], extKeyUsage: [OID.emailProtection], smtpUtf8Mailboxes: ['山田@例え.jp'],
  });
  assert.deepEqual(cert.emailAddresses, ['山田@例え.jp']);
  assert.equal(matchSenderIdentity(cert, ['山田@xn--r8jz45g.jp'], undefined).report.status, 'match');
  const rec = await store.importCertificate(cert);
  assert.deepEqual(rec.filings.map((f) => [f.email, f.filing]), [['山田@xn--r8jz45g.jp', 'current']]);
  for (const spelling of ['山田@例え.jp', '山田@XN--R8JZ45G.JP', '山田@例え.jp.']) {
    assert.equal((await store.findRecipientCertificate(spelling))?.certificate.fingerprint256, cert.fingerprint256, spelling);
  }
  assert.equal(await store.findRecipientCertificate('田@例え.jp'), undefined);
});

test('a certificate with two subject emailAddress (one in a multi-valued RDN) and no subjectAltName is filed under both', async () => {
  const k = rsa();
  const subject = sequence(
    set(atv(OID.commonName, utf8String('Two Addresses'))),
    set(atv(OID.emailAddress, ia5String('first@example.org'))),
    setOf([atv('2.5.4.11', utf8String('Sales')), atv(OID.emailAddress, ia5String('Second@Example.ORG'))]),
  );
  const cert = Certificate.fromDer(rawCertificate({ subject, spki: spkiOf(k.publicKey), issuer: pki.caCert, signer: signerOf(pki.caKey), extensions: [keyUsage, emailProtection] }));
  assert.deepEqual(certificateMailboxes(cert), ['first@example.org', 'Second@Example.ORG']);
  const rec = await store.importCertificate(cert);
  assert.deepEqual(rec.filings.map((f) => f.email).sort(), ['first@example.org', 'second@example.org']);
  assert.equal((await store.findRecipientCertificate('second@example.org'))?.certificate.fingerprint256, cert.fingerprint256);
  // With a subjectAltName address, the subject's emailAddress is not the certificate's (RFC 8550 3).
  const san = extension(OID.subjectAltName, false, sequence(tlv(0x81, Buffer.from('san@example.org', 'latin1'))));
  const withSan = Certificate.fromDer(rawCertificate({ subject, spki: spkiOf(rsa().publicKey), issuer: pki.caCert, signer: signerOf(pki.caKey), extensions: [keyUsage, emailProtection, san] }));
  const r2 = await store.importCertificate(withSan);
  assert.deepEqual(r2.filings.map((f) => f.email), ['san@example.org']);
});

test('a certificate whose public key cannot be read (an EC point off its curve) is refused at import, KEY_INVALID', async () => {
  const spki = Buffer.from(spkiOf(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey));
  spki[spki.length - 1]! ^= 1;
  const subject = sequence(set(atv(OID.commonName, utf8String('Off Curve'))), set(atv(OID.emailAddress, ia5String('offcurve@example.org'))));
  const cert = Certificate.fromDer(rawCertificate({ subject, spki, issuer: pki.caCert, signer: signerOf(pki.caKey), extensions: [keyUsage, emailProtection] }));
  await assert.rejects(store.importCertificate(cert), (e) => isKakitomeError(e, 'KEY_INVALID') && e.remedy === 'recipientCertificate' && /cannot be read/.test(e.message));
  assert.equal(await store.findCertificateByFingerprint(cert.fingerprint256), undefined);
  assert.equal(await store.findRecipientCertificate('offcurve@example.org'), undefined);
});
