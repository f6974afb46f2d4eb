/**
 * The internal CA end to end on a SQLite store: init, issue (dual and separate),
 * renew, revoke, CRL, OCSP; checked by the system OpenSSL 3.0 (verify -x509_strict,
 * crl, ocsp) and by our own PKI parser.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Store } from '../../src/store/store.ts';
import { openSqliteEngine } from '../../src/store/sqlite-engine.ts';
import { masterKeyFromBytes } from '../../src/keys/master-key.ts';
import { encodePem } from '../../src/asn1/pem.ts';
import { OID } from '../../src/asn1/oids.ts';
import { identifierFor } from '../../src/cms/identifier.ts';
import { parseCrl } from '../../src/pki/parse-crl.ts';
import { queryOcsp } from '../../src/pki/check-ocsp.ts';
import { createHttpFetcher } from '../../src/pki/create-http-fetcher.ts';
import { isKakitomeError } from '../../src/errors.ts';
import type { Certificate } from '../../src/x509/certificate.ts';
import { initCertificateAuthority } from '../../src/ca/init-certificate-authority.ts';
import { issueMailboxCertificate, POLICY_MAILBOX_STRICT } from '../../src/ca/issue-mailbox-certificate.ts';
import { renewMailboxCertificate } from '../../src/ca/renew-mailbox-certificate.ts';
import { revokeIssuedCertificate } from '../../src/ca/revoke-issued-certificate.ts';
import { publishCrl } from '../../src/ca/publish-crl.ts';
import { startOcspResponder } from '../../src/ca/ocsp-responder.ts';
import type { CertificateAuthority } from '../../src/ca/certificate-authority.ts';

const dir = mkdtempSync(join(tmpdir(), 'kakitome-ca-'));
let store: Store;
let root: CertificateAuthority;
let issuing: CertificateAuthority;
const openssl = (args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
const pem = (name: string, ...certs: Certificate[]) => {
  const p = join(dir, name);
  writeFileSync(p, certs.map((c) => encodePem('CERTIFICATE', c.der)).join(''));
  return p;
};

before(async () => {
  store = await Store.open(openSqliteEngine(join(dir, 'kakitome.db')), { masterKey: masterKeyFromBytes(randomBytes(32)), actor: 'ca-test' });
  ({ root, issuing } = await initCertificateAuthority(store, { name: 'Example Corp', country: 'JP', crlUrl: 'http://pki.example.com/smime.crl', ocspUrl: 'http://ocsp.example.com/' }));
});
after(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

test('ca init makes a root and an issuing CA with sealed keys; names are unique', async () => {
  assert.equal(root.role, 'root');
  assert.equal(issuing.role, 'issuing');
  assert.deepEqual(await store.findIssuerChain(issuing.certificate).then((c) => c.map((x) => x.fingerprint256)), [root.certificate.fingerprint256]);
  // Two CA keys and each CA's delegated OCSP signing key.
  assert.equal((await store.listKeys()).length, 4);
  await assert.rejects(initCertificateAuthority(store, { name: 'Example Corp' }), (e) => isKakitomeError(e, 'INVALID_ARGUMENT'));
  openssl(['verify', '-x509_strict', '-CAfile', pem('root.pem', root.certificate), pem('issuing.pem', issuing.certificate)]);
});

test('mailbox certificates follow the S/MIME BR strict profile and OpenSSL accepts them for S/MIME', async () => {
  const [alice] = await issueMailboxCertificate(store, { email: 'alice@example.com' });
  const c = alice!.certificate;
  assert.equal(alice!.usage, 'dual');
  assert.ok(alice!.keyId);
  assert.deepEqual(c.emailAddresses, ['alice@example.com']);
  assert.deepEqual([...c.keyUsage!].sort(), ['digitalSignature', 'keyEncipherment', 'nonRepudiation']);
  assert.ok(c.extensions.has(OID.certificatePolicies));
  const text = openssl(['x509', '-noout', '-text', '-in', pem('alice.pem', c)]);
  assert.match(text, new RegExp(`Policy: ${POLICY_MAILBOX_STRICT.replaceAll('.', '\\.')}`));
  assert.match(text, /E-mail Protection/);
  assert.match(text, /URI:http:\/\/pki\.example\.com\/smime\.crl/);
  assert.match(text, /OCSP - URI:http:\/\/ocsp\.example\.com\//);
  for (const purpose of ['smimesign', 'smimeencrypt']) {
    openssl(['verify', '-x509_strict', '-purpose', purpose, '-CAfile', join(dir, 'root.pem'), '-untrusted', join(dir, 'issuing.pem'), join(dir, 'alice.pem')]);
  }
  // The signing identity comes straight from the store.
  const id = await store.findSigningIdentity('alice@example.com');
  assert.equal(id?.certificate.fingerprint256, c.fingerprint256);
  assert.deepEqual(id!.chain.map((x) => x.fingerprint256), [issuing.certificate.fingerprint256, root.certificate.fingerprint256]);
});

test('separate signing and encryption certificates, two keys, usages apart', async () => {
  const [sig, enc] = await issueMailboxCertificate(store, { email: 'bob@example.com', usage: 'separate', keyType: 'p256' });
  assert.deepEqual([...sig!.certificate.keyUsage!].sort(), ['digitalSignature', 'nonRepudiation']);
  assert.deepEqual([...enc!.certificate.keyUsage!], ['keyAgreement']);
  assert.notEqual(sig!.keyId, enc!.keyId);
  assert.equal((await store.findSigningIdentity('bob@example.com'))?.certificate.fingerprint256, sig!.certificate.fingerprint256);
  assert.equal((await store.findRecipientCertificate('bob@example.com'))?.certificate.fingerprint256, enc!.certificate.fingerprint256);
  await assert.rejects(issueMailboxCertificate(store, { email: 'not an address' }), (e) => isKakitomeError(e, 'INVALID_ARGUMENT'));
  await assert.rejects(issueMailboxCertificate(store, { email: 'x@example.com', validityDays: 900 }), (e) => isKakitomeError(e, 'INVALID_ARGUMENT'));
  await assert.rejects(issueMailboxCertificate(store, { email: 'x@example.com', caName: root.name }), (e) => isKakitomeError(e, 'INVALID_ARGUMENT'));
});

test('renewal issues a new key and keeps the old one for decryption', async () => {
  const old = (await store.listCertificates({ email: 'alice@example.com' }))[0]!.certificate;
  const renewed = await renewMailboxCertificate(store, old.fingerprint256);
  assert.notEqual(Buffer.compare(renewed.certificate.spki, old.spki), 0);
  const now = new Date(Date.now() + 1000);
  assert.equal((await store.findSigningIdentity('alice@example.com', now))?.certificate.fingerprint256, renewed.certificate.fingerprint256);
  const found = await store.findDecryptionKeys([identifierFor(old)]);
  assert.equal(found[0]?.certificate.fingerprint256, old.fingerprint256);
  const kept = await renewMailboxCertificate(store, renewed.certificate.fingerprint256, { keepKey: true });
  assert.equal(Buffer.compare(kept.certificate.spki, renewed.certificate.spki), 0);
  assert.equal(kept.keyId, undefined);
});

test('revocation shows in a signed CRL that OpenSSL and our parser read, with increasing numbers', async () => {
  const bobSig = (await store.findSigningIdentity('bob@example.com'))!.certificate;
  await assert.rejects(revokeIssuedCertificate(store, root.certificate.fingerprint256.replace(/^./, '0')), (e) => isKakitomeError(e, 'INVALID_ARGUMENT'));
  await revokeIssuedCertificate(store, bobSig.fingerprint256, 'keyCompromise');
  assert.equal(await store.findSigningIdentity('bob@example.com'), undefined, 'a revoked certificate no longer signs');
  const first = await publishCrl(store);
  const second = await publishCrl(store);
  assert.equal(second.crlNumber, first.crlNumber + 1);
  const parsed = parseCrl(second.der);
  assert.equal(parsed.crlNumber, BigInt(second.crlNumber));
  assert.equal(parsed.entries.size, 1);
  assert.equal(parsed.entries.get(bobSig.serialHex)?.reason, 1);
  const crlPem = join(dir, 'issuing.crl');
  writeFileSync(crlPem, encodePem('X509 CRL', second.der));
  const crlCheck = spawnSync('openssl', ['crl', '-in', crlPem, '-noout', '-CAfile', pem('chain.pem', issuing.certificate, root.certificate)]);
  assert.equal(crlCheck.status, 0);
  assert.match(crlCheck.stderr.toString() + crlCheck.stdout.toString(), /verify OK/);
  const bobPem = pem('bob-sign.pem', bobSig);
  const rootCrl = await publishCrl(store, { caName: root.name });
  writeFileSync(join(dir, 'root.crl'), encodePem('X509 CRL', rootCrl.der));
  writeFileSync(join(dir, 'crls.pem'), encodePem('X509 CRL', second.der) + encodePem('X509 CRL', rootCrl.der));
  assert.throws(
    () => openssl(['verify', '-crl_check_all', '-CRLfile', join(dir, 'crls.pem'), '-CAfile', join(dir, 'root.pem'), '-untrusted', join(dir, 'issuing.pem'), bobPem]),
    (e: Error & { stdout?: Buffer; stderr?: Buffer }) => /certificate revoked/.test(String(e.stdout) + String(e.stderr)),
  );
  const alicePem = pem('alice-now.pem', (await store.findSigningIdentity('alice@example.com'))!.certificate);
  openssl(['verify', '-crl_check_all', '-CRLfile', join(dir, 'crls.pem'), '-CAfile', join(dir, 'root.pem'), '-untrusted', join(dir, 'issuing.pem'), alicePem]);
});

test('the OCSP responder answers openssl ocsp: good, revoked with reason, unknown; signature and nonce verify', async () => {
  const responder = await startOcspResponder(store);
  try {
    const chain = pem('ocsp-ca.pem', issuing.certificate, root.certificate);
    // Asynchronous: the responder runs in this process, a synchronous child would block it.
    const ask = async (cert: string) => {
      const r = await promisify(execFile)('openssl', ['ocsp', '-issuer', join(dir, 'issuing.pem'), '-cert', cert, '-url', responder.url, '-CAfile', chain, '-resp_text']);
      return r.stdout + r.stderr;
    };
    const good = await ask(join(dir, 'alice-now.pem'));
    assert.match(good, /Response verify OK/);
    assert.match(good, /alice-now\.pem: good/);
    assert.doesNotMatch(good, /WARNING: no nonce/);
    const revoked = await ask(join(dir, 'bob-sign.pem'));
    assert.match(revoked, /bob-sign\.pem: revoked/);
    assert.match(revoked, /Reason: keyCompromise/);
    // A certificate from another CA: this responder does not answer for it.
    const [other] = await issueMailboxCertificate(store, { email: 'carol@example.com' });
    await store.engine.run('DELETE FROM issued_certificates WHERE certificate_id = (SELECT id FROM certificates WHERE fingerprint = ?)', [other!.certificate.fingerprint256]);
    assert.match(await ask(pem('carol.pem', other!.certificate)), /carol\.pem: unknown/);
    // Our own PKI checker agrees, by POST (with nonce) and by GET (RFC 5019).
    const aliceNow = (await store.findSigningIdentity('alice@example.com'))!.certificate;
    const bobSig = (await store.listCertificates({ email: 'bob@example.com' })).find((r) => r.revokedAt)!.certificate;
    for (const method of ['post', 'get'] as const) {
      const o = { fetcher: createHttpFetcher({ allowInternal: ['127.0.0.1'] }), method, maxBytes: 65536, timeoutMs: 5000, now: new Date(), skewMs: 300_000, maxAgeMs: 3_600_000 };
      assert.equal((await queryOcsp(responder.url, aliceNow, issuing.certificate, o)).status, 'good');
      const r = await queryOcsp(responder.url, bobSig, issuing.certificate, o);
      assert.equal(r.status, 'revoked');
      assert.equal(r.reason, 'keyCompromise');
      assert.equal(r.responder, 'delegated');
    }
    // Garbage gets an OCSP error status, not a crash.
    const res = await fetch(responder.url, { method: 'POST', body: Buffer.from('not der'), headers: { 'content-type': 'application/ocsp-request' } });
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), Buffer.from('30030a0101', 'hex'));
  } finally {
    await responder.close();
  }
});

test('every CA key use is audited', async () => {
  const actions = new Set((await store.auditLog({ limit: 1000 })).map((e) => e.action));
  for (const a of ['ca.init', 'ca.issue', 'ca.crl', 'key.use.ca-issue', 'key.use.ca-crl', 'key.use.ocsp-responder', 'certificate.revoke']) assert.ok(actions.has(a), a);
});
