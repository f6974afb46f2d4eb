import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { createSignerValidator } from '../../src/pki/create-signer-validator.ts';
import { matchSenderIdentity } from '../../src/pki/match-sender-identity.ts';
import { certificateMailboxes } from '../../src/x509/certificate-mailboxes.ts';
import { recognizeSmimeProfile } from '../../src/pki/recognize-smime-profile.ts';
import { DEFAULT_POLICY, allowLegacyAlgorithms, describeAlgorithmPolicy, judgeHashAlgorithm, judgePublicKey } from '../../src/pki/algorithm-policy.ts';
import { issueCertificate } from '../../src/x509/issue.ts';
import { OID } from '../../src/asn1/oids.ts';
import { encodePem } from '../../src/asn1/pem.ts';
import { parseCertificate } from '../../src/x509/certificate.ts';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootCa, subCa, endEntity, key, smtpUtf8San, certificatePolicies, type Party } from './pki-builder.ts';

let root: Party;
let ca: Party;

before(() => {
  root = rootCa('Identity Root');
  ca = subCa(root, 'Identity CA');
});

test('From matches an rfc822Name: match; another address: IDENTITY_MISMATCH with both shown', async () => {
  const alice = endEntity(ca, 'alice@example.com');
  const v = createSignerValidator({ anchors: [root.cert], revocation: { mode: 'off' } });
  const ok = await v({ certificate: alice.cert, carried: [ca.cert], usage: 'signing', from: ['alice@example.com'] });
  assert.equal(ok.identity.status, 'match');
  assert.equal(ok.identity.from, 'alice@example.com');
  assert.deepEqual(ok.identity.certificateAddresses, ['alice@example.com']);
  const bad = await v({ certificate: alice.cert, carried: [ca.cert], usage: 'signing', from: ['ceo@example.com'] });
  assert.equal(bad.status, 'untrusted');
  assert.equal(bad.code, 'IDENTITY_MISMATCH');
  assert.equal(bad.identity.status, 'mismatch');
  assert.match(bad.message, /ceo@example.com is not among the certificate's addresses \(alice@example.com\)/);
  // The check can be reported without failing the verdict.
  const lenient = createSignerValidator({ anchors: [root.cert], revocation: { mode: 'off' }, enforceIdentity: false });
  const r = await lenient({ certificate: alice.cert, carried: [ca.cert], usage: 'signing', from: ['ceo@example.com'] });
  assert.equal(r.status, 'trusted');
  assert.equal(r.identity.status, 'mismatch');
  assert.match(r.message, /does not match the sender/);
  // No From at all: unknown, not a failure.
  const none = await v({ certificate: alice.cert, carried: [ca.cert], usage: 'signing' });
  assert.equal(none.identity.status, 'unknown');
  assert.equal(none.status, 'trusted');
});

test('domain is case-insensitive; local part case differences match with a warning', () => {
  const c = endEntity(ca, 'Alice.Smith@Example.COM').cert;
  const exact = matchSenderIdentity(c, ['Alice.Smith@example.com'], undefined);
  assert.equal(exact.report.status, 'match');
  assert.deepEqual(exact.warnings, []);
  const folded = matchSenderIdentity(c, ['alice.smith@example.com'], undefined);
  assert.equal(folded.report.status, 'match');
  assert.match(folded.warnings[0]!, /upper and lower case/);
  assert.equal(matchSenderIdentity(c, ['alice.smith@example.org'], undefined).report.status, 'mismatch');
});

test('IDN: a U-label From matches an A-label rfc822Name and vice versa', () => {
  const c = endEntity(ca, 'hans@xn--bcher-kva.example').cert;
  assert.equal(matchSenderIdentity(c, ['hans@bücher.example'], undefined).report.status, 'match');
  assert.equal(matchSenderIdentity(c, ['hans@BÜCHER.example'], undefined).report.status, 'match');
  assert.equal(matchSenderIdentity(c, ['hans@bucher.example'], undefined).report.status, 'mismatch');
});

test('SmtpUTF8Mailbox (RFC 8398) in subjectAltName is matched', () => {
  const c = endEntity(ca, 'utf8', { emails: [], extraExtensions: [smtpUtf8San(['用户@例子.example'])] }).cert;
  assert.deepEqual(certificateMailboxes(c), ['用户@例子.example']);
  assert.equal(matchSenderIdentity(c, ['用户@例子.example'], undefined).report.status, 'match');
  assert.equal(matchSenderIdentity(c, ['用户@xn--fsqu00a.example'], undefined).report.status, 'match');
  assert.equal(matchSenderIdentity(c, ['其他@例子.example'], undefined).report.status, 'mismatch');
});

test('subject emailAddress counts only when subjectAltName has no address', () => {
  const k = key('p256', 'subject-only');
  const legacy = issueCertificate({ subject: { commonName: 'Legacy', emailAddress: 'legacy@example.com' }, publicKey: k.publicKey, issuer: ca.cert, signingKey: ca.key, keyUsage: ['digitalSignature'] });
  assert.equal(matchSenderIdentity(legacy, ['legacy@example.com'], undefined).report.status, 'match');
  const both = issueCertificate({ subject: { commonName: 'Both', emailAddress: 'old@example.com' }, publicKey: k.publicKey, issuer: ca.cert, signingKey: ca.key, emails: ['new@example.com'] });
  assert.equal(matchSenderIdentity(both, ['new@example.com'], undefined).report.status, 'match');
  assert.equal(matchSenderIdentity(both, ['old@example.com'], undefined).report.status, 'mismatch');
  const nothing = issueCertificate({ subject: { commonName: 'No address' }, publicKey: k.publicKey, issuer: ca.cert, signingKey: ca.key });
  const r = matchSenderIdentity(nothing, ['x@example.com'], undefined);
  assert.equal(r.report.status, 'mismatch');
  assert.match(r.report.message, /names no email address/);
});

test('several From mailboxes: the Sender is matched, with a warning; no Sender is a mismatch', () => {
  const sec = endEntity(ca, 'secretary@example.com').cert;
  const r = matchSenderIdentity(sec, ['boss@example.com', 'deputy@example.com'], 'secretary@example.com');
  assert.equal(r.report.status, 'match');
  assert.equal(r.report.from, 'secretary@example.com');
  assert.ok(r.warnings.some((w) => /matches the Sender/.test(w)));
  const r2 = matchSenderIdentity(sec, ['boss@example.com', 'secretary@example.com'], undefined);
  assert.equal(r2.report.status, 'mismatch');
  assert.match(r2.report.message, /From lists 2 mailboxes .* and there is no Sender/);
  // A single From that does not match, but a Sender that does.
  const r3 = matchSenderIdentity(sec, ['boss@example.com'], 'secretary@example.com');
  assert.equal(r3.report.status, 'match');
});

test('CA/B Forum S/MIME BR profiles are recognised from certificatePolicies', async () => {
  const cases: Array<[string, string]> = [
    ['2.23.140.1.5.1.3', 'mailbox-validated strict'],
    ['2.23.140.1.5.2.2', 'organization-validated multipurpose'],
    ['2.23.140.1.5.3.1', 'sponsor-validated legacy'],
    ['2.23.140.1.5.4.3', 'individual-validated strict'],
  ];
  for (const [policy, name] of cases) {
    const c = endEntity(ca, `p${policy.replaceAll('.', '')}@example.com`, { extraExtensions: [certificatePolicies('1.3.6.1.4.1.99999.7', policy)] }, 'p256', 'profile').cert;
    assert.equal(recognizeSmimeProfile(c)?.name, name);
  }
  const none = endEntity(ca, 'plain@example.com', { extraExtensions: [certificatePolicies('2.23.140.1.5.9.9')] }, 'p256', 'profile').cert;
  assert.equal(recognizeSmimeProfile(none), undefined);
  const strict = endEntity(ca, 'strict@example.com', { extraExtensions: [certificatePolicies('2.23.140.1.5.1.3')] }, 'p256', 'profile');
  const r = await createSignerValidator({ anchors: [root.cert], revocation: { mode: 'off' } })({ certificate: strict.cert, carried: [ca.cert], usage: 'signing', from: ['strict@example.com'] });
  assert.equal(r.profile, 'mailbox-validated strict');
  assert.match(r.message, /\(mailbox-validated strict\)/);
});

test('DEFAULT_POLICY is one readable, serialisable, frozen object', () => {
  const json = describeAlgorithmPolicy();
  assert.deepEqual(JSON.parse(json), DEFAULT_POLICY);
  assert.ok(Object.isFrozen(DEFAULT_POLICY));
  assert.deepEqual(DEFAULT_POLICY.refusedHashes, ['md5']);
  assert.equal(DEFAULT_POLICY.minRsaBits, 2048);
});

test('new signatures: SHA-1 and RSA < 2048 refused; received: refused by default, accepted as legacy when allowed, MD5 always refused', () => {
  assert.equal(judgeHashAlgorithm(OID.sha1WithRSAEncryption, 'create', DEFAULT_POLICY, 'x')?.action, 'reject');
  assert.equal(judgeHashAlgorithm(OID.sha1WithRSAEncryption, 'receive', DEFAULT_POLICY, 'x')?.action, 'reject');
  assert.equal(judgeHashAlgorithm(OID.sha1WithRSAEncryption, 'receive', allowLegacyAlgorithms(), 'x')?.action, 'warn');
  assert.equal(judgeHashAlgorithm(OID.sha1WithRSAEncryption, 'create', allowLegacyAlgorithms(), 'x')?.action, 'reject');
  assert.equal(judgeHashAlgorithm(OID.md5WithRSAEncryption, 'receive', allowLegacyAlgorithms(), 'x')?.action, 'reject');
  assert.equal(judgeHashAlgorithm(OID.md5WithRSAEncryption, 'receive', DEFAULT_POLICY, 'x')?.action, 'reject');
  assert.equal(judgeHashAlgorithm(OID.sha256WithRSAEncryption, 'create', DEFAULT_POLICY, 'x'), undefined);
  const rsa1024 = key('rsa1024', 'policy').publicKey;
  assert.equal(judgePublicKey(rsa1024, 'create', DEFAULT_POLICY, 'k')?.action, 'reject');
  assert.equal(judgePublicKey(rsa1024, 'receive', DEFAULT_POLICY, 'k')?.action, 'reject');
  assert.equal(judgePublicKey(rsa1024, 'receive', { ...DEFAULT_POLICY, shortRsaOnReceive: 'warn' }, 'k')?.action, 'warn');
  assert.equal(judgePublicKey(rsa1024, 'create', allowLegacyAlgorithms(), 'k')?.action, 'reject');
  assert.equal(judgePublicKey(key('rsa2048', 'policy').publicKey, 'create', DEFAULT_POLICY, 'k'), undefined);
  assert.equal(judgePublicKey(key('p256', 'policy').publicKey, 'create', DEFAULT_POLICY, 'k'), undefined);
  assert.equal(judgePublicKey(key('secp256k1', 'policy').publicKey, 'receive', DEFAULT_POLICY, 'k')?.action, 'reject');
  assert.equal(judgePublicKey(key('ed25519', 'policy').publicKey, 'create', DEFAULT_POLICY, 'k'), undefined);
});

test('a SHA-1-signed certificate (made by openssl x509 -sha1) is refused by default, flagged as legacy when allowed', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kakitome-sha1-'));
  try {
    writeFileSync(join(dir, 'ca.pem'), encodePem('CERTIFICATE', ca.cert.der));
    writeFileSync(join(dir, 'ca.key'), ca.key.export({ format: 'pem', type: 'pkcs8' }) as string);
    writeFileSync(join(dir, 'ext.cnf'), 'keyUsage=critical,digitalSignature\nextendedKeyUsage=emailProtection\nsubjectAltName=email:old@example.com\n');
    const run = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    run(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'leaf.key', '-subj', '/CN=old', '-out', 'leaf.csr']);
    run(['x509', '-req', '-in', 'leaf.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', '0x50A1', '-days', '30', '-sha1', '-extfile', 'ext.cnf', '-out', 'leaf.pem']);
    const leaf = parseCertificate(readFileSync(join(dir, 'leaf.pem')));
    assert.equal(leaf.signatureAlgorithm, OID.ecdsaWithSHA1);
    const input = { certificate: leaf, carried: [ca.cert], usage: 'signing' as const, from: ['old@example.com'] };
    const strict = await createSignerValidator({ anchors: [root.cert], revocation: { mode: 'off' } })(input);
    assert.equal(strict.code, 'WEAK_ALG');
    assert.match(strict.message, /SHA-1/);
    const r = await createSignerValidator({ anchors: [root.cert], revocation: { mode: 'off' }, policy: { ...DEFAULT_POLICY, sha1OnReceive: 'warn' } })(input);
    assert.equal(r.status, 'trusted', r.message);
    assert.ok(r.warnings.some((w) => /SHA-1/.test(w)));
    assert.equal(r.legacy?.length, 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
