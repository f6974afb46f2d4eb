/**
 * Issue 12, item 5: `ca issue --csr`, a certificate for a key made on the user's own
 * device. Requests come from `openssl req -new` (RSA, EC P-256, Ed25519, DSA,
 * secp256k1, RSA-1024, SHA-1), plus altered and garbled ones; issued certificates are
 * checked by OpenSSL (verify -x509_strict -purpose smimesign) and in the store.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPublicKey, randomBytes } from 'node:crypto';
import { Store } from '../../src/store/store.ts';
import { openSqliteEngine } from '../../src/store/sqlite-engine.ts';
import { masterKeyFromBytes } from '../../src/keys/master-key.ts';
import { encodePem } from '../../src/asn1/pem.ts';
import { OID } from '../../src/asn1/oids.ts';
import { isKakitomeError, type ErrorCode } from '../../src/errors.ts';
import { initCertificateAuthority } from '../../src/ca/init-certificate-authority.ts';
import { issueFromCertificationRequest } from '../../src/ca/issue-from-certification-request.ts';
import type { CertificateAuthority } from '../../src/ca/certificate-authority.ts';
import { runCli } from '../cli/run-cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'kakitome-csr-'));
let store: Store;
let root: CertificateAuthority;
let issuing: CertificateAuthority;
const masterKey = masterKeyFromBytes(randomBytes(32));
const openssl = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });

/** `openssl req -new` with a fresh key; returns the request (PEM) and the key file. */
function request(name: string, newkey: string[], subject: string, ...extra: string[]): { csr: Buffer; keyPath: string } {
  const keyPath = join(dir, `${name}.key`);
  openssl(['req', '-new', ...newkey, '-nodes', '-keyout', keyPath, '-subj', subject, ...extra, '-out', join(dir, `${name}.csr`)]);
  return { csr: readFileSync(join(dir, `${name}.csr`)), keyPath };
}
const RSA = ['-newkey', 'rsa:2048'];
const P256 = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];
const derOf = (pem: Buffer) => Buffer.from(pem.toString().replace(/-----[^-]+-----|\s/g, ''), 'base64');
const refused = (code: ErrorCode, re?: RegExp) => (e: unknown) => isKakitomeError(e, code) && (!re || re.test((e as Error).message));

before(async () => {
  store = await Store.open(openSqliteEngine(join(dir, 'kakitome.db')), { masterKey, actor: 'csr-test' });
  ({ root, issuing } = await initCertificateAuthority(store, { name: 'CSR Corp', keyType: 'p256', crlUrl: 'http://pki.example.com/smime.crl', ocspUrl: 'http://ocsp.example.com/' }));
  writeFileSync(join(dir, 'chain.pem'), encodePem('CERTIFICATE', issuing.certificate.der));
  writeFileSync(join(dir, 'root.pem'), encodePem('CERTIFICATE', root.certificate.der));
});
after(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

/** OpenSSL verifies the certificate as an S/MIME signing certificate under the CA, and its key is the request's. */
function checkWithOpenssl(name: string, der: Uint8Array, keyPath: string): void {
  writeFileSync(join(dir, `${name}.pem`), encodePem('CERTIFICATE', der));
  openssl(['verify', '-x509_strict', '-purpose', 'smimesign', '-CAfile', join(dir, 'root.pem'), '-untrusted', join(dir, 'chain.pem'), join(dir, `${name}.pem`)]);
  const certKey = openssl(['x509', '-in', join(dir, `${name}.pem`), '-noout', '-pubkey']).toString();
  assert.equal(certKey, createPublicKey(readFileSync(keyPath)).export({ format: 'pem', type: 'spki' }));
}

test('RSA-2048 and EC P-256 requests from openssl req: the key and the address are taken, the profile decides the rest', async () => {
  const rsa = request('rsa', RSA, '/CN=alice@example.com/emailAddress=alice@example.com');
  const a = await issueFromCertificationRequest(store, { request: rsa.csr });
  assert.deepEqual(a.certificate.emailAddresses, ['alice@example.com']);
  assert.deepEqual(a.ignored, []);
  checkWithOpenssl('alice', a.certificate.der, rsa.keyPath);

  // DER works as well as PEM; the subject's O and a commonName that is not the address are ignored, and said so.
  const ec = request('ec', P256, '/CN=Bob Example/O=Bob Corp', '-addext', 'subjectAltName=email:Bob@Example.com');
  const b = await issueFromCertificationRequest(store, { request: derOf(ec.csr), email: 'bob@example.com', usage: 'encryption' });
  assert.equal(b.certificate.subjectText, 'CN=bob@example.com, emailAddress=bob@example.com');
  assert.deepEqual([...b.certificate.keyUsage!], ['keyAgreement']);
  assert.deepEqual(b.ignored.sort(), ['subject attribute 2.5.4.10', 'subject commonName "Bob Example"'].sort());

  // Recorded like every issued certificate, and audited with the request's digest.
  for (const issued of [a, b]) {
    const rec = await store.findCertificateByFingerprint(issued.certificate.fingerprint256);
    assert.equal(rec?.trust, 'trusted');
    assert.equal(rec?.hasPrivateKey, false, 'the key stays on the user\'s device');
    const rows = await store.engine.all('SELECT profile FROM issued_certificates WHERE certificate_id = ?', [rec!.id]);
    assert.equal(rows.length, 1);
    const audit = await store.auditLog({ object: issued.certificate.fingerprint256 });
    assert.ok(audit.some((e) => e.action === 'ca.issue' && e.detail?.includes(`sha256:${issued.requestSha256}`)), JSON.stringify(audit));
  }
});

test('Ed25519: certified for signing only, as the profile says', async () => {
  const ed = request('ed', ['-newkey', 'ed25519'], '/emailAddress=carol@example.com');
  await assert.rejects(issueFromCertificationRequest(store, { request: ed.csr }), refused('CERT_USAGE', /only sign/));
  const c = await issueFromCertificationRequest(store, { request: ed.csr, usage: 'signing' });
  assert.equal(c.certificate.publicKey.asymmetricKeyType, 'ed25519');
  checkWithOpenssl('carol', c.certificate.der, ed.keyPath);
});

test('extra extensions: CA:true is refused; other usages are ignored and listed, the certificate has the profile\'s', async () => {
  const ca = request('ca', RSA, '/emailAddress=dave@example.com', '-addext', 'basicConstraints=critical,CA:TRUE');
  await assert.rejects(issueFromCertificationRequest(store, { request: ca.csr }), refused('CERT_USAGE', /CA certificate/));
  const eku = request('eku', RSA, '/emailAddress=dave@example.com', '-addext', 'extendedKeyUsage=serverAuth,codeSigning', '-addext', 'keyUsage=critical,keyCertSign,digitalSignature', '-addext', 'subjectAltName=email:dave@example.com,DNS:www.example.com', '-addext', 'basicConstraints=CA:FALSE');
  const d = await issueFromCertificationRequest(store, { request: eku.csr });
  assert.deepEqual(d.certificate.extendedKeyUsage, [OID.emailProtection]);
  assert.deepEqual([...d.certificate.keyUsage!].sort(), ['digitalSignature', 'keyEncipherment', 'nonRepudiation']);
  assert.equal(d.certificate.extensions.has(OID.basicConstraints), false);
  assert.deepEqual(d.certificate.emailAddresses, ['dave@example.com']);
  assert.ok(d.ignored.some((i) => i.startsWith('extKeyUsage') && i.includes('1.3.6.1.5.5.7.3.1')), d.ignored.join('; '));
  assert.ok(d.ignored.some((i) => i.includes('keyUsage (critical)')), d.ignored.join('; '));
  assert.ok(d.ignored.some((i) => i.includes('subjectAltName entr')), d.ignored.join('; '));
  checkWithOpenssl('dave', d.certificate.der, eku.keyPath);
});

test('keys the profile does not certify are refused before the CA key is opened', async () => {
  const uses = async () => (await store.auditLog({ limit: 10_000 })).filter((e) => e.action === 'key.use.ca-issue').length;
  const before = await uses();
  openssl(['genpkey', '-genparam', '-algorithm', 'DSA', '-pkeyopt', 'dsa_paramgen_bits:1024', '-out', join(dir, 'dsa.params')]);
  const cases: Array<[string, string[], ErrorCode, string[]?]> = [
    ['rsa1024', ['-newkey', 'rsa:1024'], 'WEAK_ALG'],
    ['k1', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:secp256k1'], 'UNSUPPORTED_ALG'],
    ['dsa', ['-newkey', `dsa:${join(dir, 'dsa.params')}`], 'UNSUPPORTED_ALG'],
    ['sha1', RSA, 'WEAK_ALG', ['-sha1']],
  ];
  for (const [name, newkey, code, extra] of cases) {
    const r = request(name, newkey, '/emailAddress=erin@example.com', ...(extra ?? []));
    await assert.rejects(issueFromCertificationRequest(store, { request: r.csr }), refused(code), name);
  }
  assert.equal(await uses(), before, 'the CA key was never opened for a refused request');
});

test('names: a request for another address than --email, for several, or for none is refused', async () => {
  const frank = request('frank', P256, '/CN=frank@example.com/emailAddress=frank@example.com');
  await assert.rejects(issueFromCertificationRequest(store, { request: frank.csr, email: 'ceo@example.com' }), refused('IDENTITY_MISMATCH', /frank@example.com, not ceo@example.com/));
  const two = request('two', P256, '/emailAddress=frank@example.com', '-addext', 'subjectAltName=email:frank@example.com,email:ceo@example.com');
  await assert.rejects(issueFromCertificationRequest(store, { request: two.csr }), refused('INVALID_ARGUMENT', /several addresses/));
  await assert.rejects(issueFromCertificationRequest(store, { request: two.csr, email: 'frank@example.com' }), refused('IDENTITY_MISMATCH', /ceo@example.com/));
  const none = request('none', P256, '/CN=Grace/O=Example');
  await assert.rejects(issueFromCertificationRequest(store, { request: none.csr }), refused('INVALID_ARGUMENT', /no e-mail address/));
  const g = await issueFromCertificationRequest(store, { request: none.csr, email: 'grace@example.com' });
  assert.deepEqual(g.certificate.emailAddresses, ['grace@example.com']);
});

test('a request whose signature does not verify proves nothing: BAD_SIG', async () => {
  const r = request('bad', RSA, '/emailAddress=heidi@example.com');
  const der = derOf(r.csr);
  const badSignature = Buffer.from(der);
  badSignature[badSignature.length - 5]! ^= 0x01;
  await assert.rejects(issueFromCertificationRequest(store, { request: badSignature }), refused('BAD_SIG'));
  // Another address spliced into the signed part (same length): the signature no longer covers it.
  const i = der.indexOf(Buffer.from('heidi@example.com'));
  const spliced = Buffer.from(der);
  spliced.write('mallo@example.com', i, 'latin1');
  await assert.rejects(issueFromCertificationRequest(store, { request: spliced }), refused('BAD_SIG'));
  // Another key's request with this one's key swapped in.
  const other = derOf(request('other', RSA, '/emailAddress=heidi@example.com').csr);
  await assert.rejects(issueFromCertificationRequest(store, { request: Buffer.concat([der.subarray(0, der.length - 256), other.subarray(other.length - 256)]) }), refused('BAD_SIG'));
});

test('garbled requests: MALFORMED, or LIMIT when too large; never a certificate', async () => {
  const der = derOf(request('garble', P256, '/emailAddress=ivan@example.com').csr);
  const pem = encodePem('CERTIFICATE REQUEST', der);
  const cases: Array<[string, Uint8Array, ErrorCode]> = [
    ['empty', Buffer.alloc(0), 'MALFORMED'],
    ['truncated', der.subarray(0, der.length - 10), 'MALFORMED'],
    ['trailing data', Buffer.concat([der, Buffer.from([0])]), 'MALFORMED'],
    ['random bytes', randomBytes(300), 'MALFORMED'],
    ['a certificate, not a request', issuing.certificate.der, 'MALFORMED'],
    ['two requests in one PEM file', Buffer.from(pem + pem), 'MALFORMED'],
    ['PEM that is not base64', Buffer.from('-----BEGIN CERTIFICATE REQUEST-----\n*** not base64 ***\n-----END CERTIFICATE REQUEST-----\n'), 'MALFORMED'],
    ['version 2', Buffer.from(der).fill(0x01, der.indexOf(Buffer.from([0x02, 0x01, 0x00])) + 2, der.indexOf(Buffer.from([0x02, 0x01, 0x00])) + 3), 'MALFORMED'],
    ['larger than 64 KiB', Buffer.concat([Buffer.from(pem), Buffer.alloc(65 * 1024, 0x20)]), 'LIMIT'],
  ];
  for (const [name, bytes, code] of cases) {
    await assert.rejects(issueFromCertificationRequest(store, { request: bytes }), refused(code), name);
  }
});

test('the CLI: ca issue --csr writes PEM or DER, says what it ignored, and refuses a bad request', async () => {
  const home = join(dir, 'cli-home');
  const env = { ...process.env, KAKITOME_HOME: home, KAKITOME_MASTER_KEY: '', KAKITOME_DATABASE_URL: '' };
  for (const args of [['init'], ['ca', 'init', '--name', 'CLI CSR Corp', '--key-type', 'p256']]) assert.equal((await runCli(args, { env })).status, 0, args.join(' '));
  request('cli', P256, '/CN=judy@example.com', '-addext', 'subjectAltName=email:judy@example.com', '-addext', 'extendedKeyUsage=clientAuth');
  const r = await runCli(['ca', 'issue', '--csr', join(dir, 'cli.csr'), '--email', 'judy@example.com', '-o', join(dir, 'judy.der'), '--der', '--json'], { env });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.toString());
  assert.deepEqual(out.certificates[0].emails, ['judy@example.com']);
  assert.deepEqual(out.request.ignored, ['extKeyUsage 1.3.6.1.5.5.7.3.2']);
  assert.match(openssl(['x509', '-inform', 'DER', '-in', join(dir, 'judy.der'), '-noout', '-subject']).toString(), /judy@example.com/);
  const listed = await runCli(['certs', 'list', '--email', 'judy@example.com', '--json'], { env });
  assert.equal(JSON.parse(listed.stdout.toString()).certificates.length, 1);

  const mismatch = await runCli(['ca', 'issue', '--csr', join(dir, 'cli.csr'), '--email', 'boss@example.com'], { env });
  assert.notEqual(mismatch.status, 0);
  assert.match(mismatch.stderr, /judy@example.com, not boss@example.com/);
  writeFileSync(join(dir, 'garbled.csr'), 'not a request');
  const garbled = await runCli(['ca', 'issue', '--csr', join(dir, 'garbled.csr')], { env });
  assert.notEqual(garbled.status, 0);
  assert.match(garbled.stderr, /MALFORMED|Malformed/);
  const both = await runCli(['ca', 'issue', '--csr', join(dir, 'cli.csr'), '--usage', 'separate'], { env });
  assert.notEqual(both.status, 0);
});
