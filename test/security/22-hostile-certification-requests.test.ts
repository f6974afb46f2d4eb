/**
 * docs/security.md section 16, as an attacker writes the request: PKCS#10 requests
 * built by hand (no openssl req would make them), each of which the CA must refuse
 * before its key is opened.
 *
 * - An RSA key with public exponent 1: "encryption" is the identity, so anyone can
 *   write the proof of possession (the signature is the padded digest itself) for any
 *   modulus, and mail encrypted to the certificate carries its content key in clear.
 *   An even exponent is no RSA key either (S/MIME BR 6.1.6: odd, 3 or more).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bitString, ia5String, integer, octetString, oid, sequence, set, tlv, unsignedInteger } from '../../src/asn1/der.ts';
import { OID } from '../../src/asn1/oids.ts';
import { isKakitomeError } from '../../src/errors.ts';
import { masterKeyFromBytes } from '../../src/keys/master-key.ts';
import { Store } from '../../src/store/store.ts';
import { openSqliteEngine } from '../../src/store/sqlite-engine.ts';
import { initCertificateAuthority } from '../../src/ca/init-certificate-authority.ts';
import { issueFromCertificationRequest } from '../../src/ca/issue-from-certification-request.ts';

const dir = mkdtempSync(join(tmpdir(), 'kakitome-hostile-csr-'));
let store: Store;
const NULL = Buffer.from([5, 0]);
const subject = (email: string) => sequence(set(sequence(oid(OID.emailAddress), ia5String(email))));
const caKeyUses = async () => (await store.auditLog({ limit: 10_000 })).filter((e) => e.action === 'key.use.ca-issue').length;

before(async () => {
  store = await Store.open(openSqliteEngine(join(dir, 'kakitome.db')), { masterKey: masterKeyFromBytes(randomBytes(32)), actor: 'hostile-csr' });
  await initCertificateAuthority(store, { name: 'Hostile CSR Corp', keyType: 'p256', crlUrl: 'http://pki.example.com/smime.crl', ocspUrl: 'http://ocsp.example.com/' });
});
after(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * A sha256WithRSAEncryption request for a 2048-bit modulus with exponent `e`, signed
 * without any private key: the signature is the PKCS#1 v1.5 encoding of the digest
 * (RFC 8017 9.2), which is what raising it to the power 1 gives back.
 */
function unsignedRsaRequest(email: string, e: number): Buffer {
  const n = Buffer.from(generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'jwk' }).n!, 'base64url');
  const spki = sequence(sequence(oid('1.2.840.113549.1.1.1'), NULL), bitString(sequence(unsignedInteger(n), integer(e))));
  const info = sequence(integer(0), subject(email), spki, Buffer.from([0xa0, 0]));
  const digestInfo = sequence(sequence(oid('2.16.840.1.101.3.4.2.1'), NULL), octetString(createHash('sha256').update(info).digest()));
  const encoded = Buffer.concat([Buffer.from([0, 1]), Buffer.alloc(n.length - 3 - digestInfo.length, 0xff), Buffer.from([0]), digestInfo]);
  return sequence(info, sequence(oid('1.2.840.113549.1.1.11'), NULL), bitString(encoded));
}

test('an RSA key with exponent 1 (a proof of possession anyone can write) or an even exponent is refused: WEAK_ALG', async () => {
  const before = await caKeyUses();
  for (const e of [1, 2, 65536]) {
    await assert.rejects(issueFromCertificationRequest(store, { request: unsignedRsaRequest('mallory@example.com', e) }),
      (err: unknown) => isKakitomeError(err, 'WEAK_ALG') && /exponent/.test((err as Error).message), `e=${e}`);
  }
  assert.equal(await caKeyUses(), before, 'the CA key was never opened for a refused request');
  assert.deepEqual(await store.listCertificates({ email: 'mallory@example.com' }), [], 'nothing certified for mallory');
});

/** A request for `email` in the subject, properly signed by a fresh P-256 key. */
function signedRequest(email: string): Buffer {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const info = sequence(integer(0), subject(email), publicKey.export({ format: 'der', type: 'spki' }), Buffer.from([0xa0, 0]));
  return sequence(info, sequence(oid('1.2.840.10045.4.3.2')), bitString(sign('sha256', info, privateKey)));
}

test('an address with a control character (NUL, BEL, ESC, DEL) is no mailbox address: INVALID_ARGUMENT, nothing certified', async () => {
  // "ceo\0@example.com" reads as "ceo" to anything that stops at NUL; ESC starts a
  // terminal sequence in whatever prints the certificate's name.
  for (const email of ['ceo\x00@example.com', 'ceo\x07@example.com', 'ceo\x1b[2K@example.com', 'c\x7feo@example.com']) {
    await assert.rejects(issueFromCertificationRequest(store, { request: signedRequest(email) }), (err: unknown) => isKakitomeError(err, 'INVALID_ARGUMENT'), JSON.stringify(email));
  }
  assert.equal((await store.listCertificates()).filter((c) => c.emails.some((e) => /[\x00-\x1f\x7f]/.test(e))).length, 0);
  // What RFC 5322 allows in a local part still is one (a star is a character, not a wildcard).
  const star = await issueFromCertificationRequest(store, { request: signedRequest('*@example.com') });
  assert.deepEqual(star.certificate.emailAddresses, ['*@example.com']);
});

/** A request naming `raw` as its subjectAltName rfc822Name (IA5String bytes as given), properly signed. */
function sanRequest(raw: Buffer): Buffer {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const san = sequence(oid(OID.subjectAltName), octetString(sequence(tlv(0x81, raw))));
  const extensionRequest = tlv(0xa0, sequence(oid('1.2.840.113549.1.9.14'), set(sequence(san))));
  const info = sequence(integer(0), sequence(), publicKey.export({ format: 'der', type: 'spki' }), extensionRequest);
  return sequence(info, sequence(oid('1.2.840.10045.4.3.2')), bitString(sign('sha256', info, privateKey)));
}

test('an address that is not ASCII in an IA5String (rfc822Name, emailAddress) is MALFORMED, not certified as read', async () => {
  // UTF-8 "bób" was read byte by byte as "bÃ³b@example.com" and certified under that
  // name, with the bytes in an IA5String (RFC 5280 4.2.1.6; RFC 9598 has its own name form).
  for (const raw of [Buffer.from('bób@example.com', 'utf8'), Buffer.from('b\xe9b@example.com', 'latin1')]) {
    await assert.rejects(issueFromCertificationRequest(store, { request: sanRequest(raw) }), (err: unknown) => isKakitomeError(err, 'MALFORMED') && /ASCII/.test((err as Error).message), raw.toString('hex'));
    await assert.rejects(issueFromCertificationRequest(store, { request: signedRequest(raw.toString('latin1')) }), (err: unknown) => isKakitomeError(err, 'MALFORMED') && /ASCII/.test((err as Error).message), raw.toString('hex'));
  }
  assert.deepEqual((await store.listCertificates()).filter((c) => c.emails.some((e) => /[^\x00-\x7f]/.test(e))), []);
});

test('ca issue for an address with a local part that is not ASCII certifies an SmtpUTF8Mailbox (RFC 9598), never latin1 bytes in an IA5String', async () => {
  const { issueMailboxCertificate } = await import('../../src/ca/issue-mailbox-certificate.ts');
  const { readSubjectAltNames, readSubjectEmailAddresses } = await import('../../src/x509/certificate-mailboxes.ts');
  const [issued] = await issueMailboxCertificate(store, { email: 'bób@example.com', keyType: 'p256' });
  const san = readSubjectAltNames(issued!.certificate)!;
  assert.deepEqual([san.rfc822, san.smtpUtf8], [[], ['bób@example.com']]);
  assert.deepEqual(readSubjectEmailAddresses(issued!.certificate), []);
  // No IA5String anywhere holds a byte above 0x7f (the subject's only name is the UTF-8 commonName).
  assert.ok(!issued!.certificate.der.includes(Buffer.from('bób', 'latin1')));
  // One address, one sequence of code points: a decomposed local part (o + U+0301) is refused, not certified beside the composed one.
  await assert.rejects(issueMailboxCertificate(store, { email: 'bo\u0301b@example.com', keyType: 'p256' }), (err: unknown) => isKakitomeError(err, 'INVALID_ARGUMENT') && /NFC/.test((err as Error).message));
  await assert.rejects(issueMailboxCertificate(store, { email: `${'á'.repeat(33)}@example.com`, keyType: 'p256' }), (err: unknown) => isKakitomeError(err, 'INVALID_ARGUMENT') && /64 octets/.test((err as Error).message));
  await assert.rejects(issueFromCertificationRequest(store, { request: signedRequest('grace@example.com'), email: 'gráce@example.com' }), (err: unknown) => isKakitomeError(err, 'IDENTITY_MISMATCH') || isKakitomeError(err, 'INVALID_ARGUMENT'));
  assert.deepEqual((await store.listCertificates()).filter((c) => c.emails.some((e) => /[^\x00-\x7f]/.test(e))).map((c) => c.emails), [['bób@example.com']]);
});
