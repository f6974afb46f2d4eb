/**
 * Issue 9, item 5: the algorithm policy reaches message signatures, and warnings
 * reach the user.
 *
 * The attack: a forger who can produce SHA-1 collisions (chosen-prefix, SHAmbles
 * 2020) or factor a 1024-bit RSA modulus makes a message that verifies. Before
 * this item, each of these verified as `trusted` (exit 0) with no word of warning:
 *   - a message signed with SHA-1 by OpenSSL (`openssl cms -sign -md sha1`), both
 *     with rsaEncryption over a SHA-1 digest and with ecdsa-with-SHA1;
 *   - a message whose intermediate CA certificate is signed with sha1WithRSAEncryption;
 *   - a message signed with an RSA-1024 key.
 * Now: WEAK_ALG, exit 1, in memory and streaming, verify and decrypt alike;
 * `--allow-legacy` (library: `allowLegacy`) accepts them for archives and says so
 * in the summary line. And the signer's own warnings (here: no signing time)
 * appear in the human report and in --json.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { TestPki } from '../helpers/pki.ts';
import { draftMessage, runCli } from '../cli/run-cli.ts';
import { endEntity } from '../pki/pki-builder.ts';
import { parseCertificate } from '../../src/x509/certificate.ts';
import { encodePem } from '../../src/asn1/pem.ts';
import { OID } from '../../src/asn1/oids.ts';
import { signMessage } from '../../src/smime/sign-message.ts';
import { encryptMessage } from '../../src/smime/encrypt-message.ts';
import { verifyMessage } from '../../src/smime/verify-message.ts';
import { verifyMessageStream } from '../../src/smime/verify-message-stream.ts';
import { decryptMessage } from '../../src/smime/decrypt-message.ts';
import { decryptMessageStream } from '../../src/smime/decrypt-message-stream.ts';
import { createSignerValidator } from '../../src/pki/create-signer-validator.ts';
import { isKakitomeError } from '../../src/errors.ts';
import type { MessageVerdict } from '../../src/smime/verdict.ts';

const pki = new TestPki('Algorithm Policy Root');
after(() => pki.cleanup());
const alice = pki.identity('rsa2048', 'alice');
const carol = pki.identity('p256', 'carol');
const old = pki.identity('rsa1024', 'old');
const bob = pki.identity('rsa2048', 'bob');
const dir = pki.dir;
const openssl = (args: string[]) => execFileSync('/usr/bin/openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });

// --- The weak messages, made as a legacy client or an attacker would make them. ---

/** `openssl cms -sign -md sha1`: a whole S/MIME message as OpenSSL writes it. */
function opensslSha1(id: typeof alice, subject: string): Buffer {
  const body = join(dir, `${subject}.txt`);
  writeFileSync(body, 'Content-Type: text/plain\r\n\r\nPlease wire the money today.\r\n');
  return openssl(['cms', '-sign', '-md', 'sha1', '-in', body, '-signer', id.certPath, '-inkey', id.keyPath, '-from', id.email, '-to', bob.email, '-subject', subject]);
}
const sha1Rsa = opensslSha1(alice, 'sha1-rsa');
const sha1Ecdsa = opensslSha1(carol, 'sha1-ecdsa');

// An intermediate CA whose certificate the root signed with sha1WithRSAEncryption (openssl x509 -sha1).
const interKeys = generateKeyPairSync('rsa', { modulusLength: 2048 });
writeFileSync(join(dir, 'inter.key'), interKeys.privateKey.export({ format: 'pem', type: 'pkcs8' }));
writeFileSync(join(dir, 'inter.cnf'), 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n');
openssl(['req', '-new', '-key', 'inter.key', '-subj', '/CN=Legacy Intermediate CA', '-out', 'inter.csr']);
openssl(['x509', '-req', '-in', 'inter.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', '0x5A1', '-days', '30', '-sha1', '-extfile', 'inter.cnf', '-out', 'inter.pem']);
const inter = parseCertificate(readFileSync(join(dir, 'inter.pem')));
const dave = { email: 'dave@example.com', ...endEntity({ cert: inter, key: interKeys.privateKey }, 'dave@example.com') };
const sha1Path = signMessage(draftMessage(dave.email, bob.email, 'sha1-path'), { signers: [{ certificate: dave.cert, key: dave.key }], certificates: [inter] });
const rsa1024 = signMessage(draftMessage(old.email, bob.email, 'rsa-1024'), { signers: [{ certificate: old.cert, key: old.key }] });
// Both at once, as a 2010 client would write it.
const sha1Rsa1024 = opensslSha1(old, 'sha1-rsa-1024');
// Strong algorithms, but the signer states no signing time: trusted, with a warning.
const noTime = signMessage(draftMessage(carol.email, bob.email, 'no-time'), { signers: [{ certificate: carol.cert, key: carol.key, signingTime: false }] });

const WEAK: Array<{ name: string; message: Buffer; why: RegExp }> = [
  { name: 'openssl cms -sign -md sha1 (RSA)', message: sha1Rsa, why: /SHA-1/ },
  { name: 'openssl cms -sign -md sha1 (ecdsa-with-SHA1)', message: sha1Ecdsa, why: /SHA-1/ },
  { name: 'intermediate signed with sha1WithRSAEncryption', message: sha1Path, why: /Legacy Intermediate CA.*SHA-1/ },
  { name: 'RSA-1024 signer', message: rsa1024, why: /1024-bit RSA/ },
];

test('the weak messages really are weak (the peer wrote what we think it wrote)', () => {
  assert.equal(inter.signatureAlgorithm, OID.sha1WithRSAEncryption);
  assert.equal(old.cert.publicKey.asymmetricKeyDetails?.modulusLength, 1024);
  assert.match(sha1Rsa.toString('latin1'), /micalg="?sha1/);
  assert.match(sha1Ecdsa.toString('latin1'), /micalg="?sha1/);
});

// --- Library: in memory and streaming, verify and decrypt decide alike. ---

const strict = createSignerValidator({ anchors: [pki.caCert], revocation: { mode: 'off' }, fetchCaIssuers: false });
const legacy = createSignerValidator({ anchors: [pki.caCert], revocation: { mode: 'off' }, fetchCaIssuers: false, allowLegacy: true });

async function streamVerify(message: Buffer, validateSigner: typeof strict): Promise<MessageVerdict> {
  const out = new PassThrough();
  out.resume();
  return verifyMessageStream(Readable.from([message.subarray(0, 100), message.subarray(100)]), { validateSigner, output: out });
}

/** Sealed as a legacy client seals (no RFC 9788 header protection): From stays the outer one. */
const seal = (message: Buffer) => encryptMessage(message, { recipients: [{ certificate: bob.cert }], headerProtection: false });

async function everyReader(message: Buffer, validateSigner: typeof strict): Promise<Record<string, MessageVerdict>> {
  const sealed = seal(message);
  const keys = [{ key: bob.key, certificate: bob.cert }];
  const out = new PassThrough();
  out.resume();
  return {
    verifyMessage: await verifyMessage(message, { validateSigner }),
    verifyMessageStream: await streamVerify(message, validateSigner),
    decryptMessage: (await decryptMessage(sealed, { keys, validateSigner })).verdict,
    decryptMessageStream: await decryptMessageStream(Readable.from([sealed]), { keys, validateSigner, output: out }),
  };
}

for (const w of WEAK) {
  test(`library: ${w.name} is refused (WEAK_ALG) by default, in memory and streaming`, async () => {
    for (const [reader, v] of Object.entries(await everyReader(w.message, strict))) {
      assert.equal(v.status, 'valid-untrusted', `${reader}: ${v.summary}`);
      assert.equal(v.code, 'WEAK_ALG', `${reader}: ${v.summary}`);
      assert.equal(v.signers[0]!.trust?.code, 'WEAK_ALG', reader);
      assert.match(v.signers[0]!.trust!.message, w.why, reader);
    }
  });

  test(`library: ${w.name} is accepted with allowLegacy, and the summary says why`, async () => {
    for (const [reader, v] of Object.entries(await everyReader(w.message, legacy))) {
      assert.equal(v.status, 'trusted', `${reader}: ${v.summary}`);
      assert.match(v.summary, /only because legacy algorithms are allowed/, reader);
      assert.ok(v.signers[0]!.warnings.some((x) => w.why.test(x)), `${reader}: ${v.signers[0]!.warnings.join(' | ')}`);
    }
  });
}

test('library: a strong message is trusted and its summary does not speak of legacy algorithms, even with allowLegacy', async () => {
  const strong = signMessage(draftMessage(alice.email, bob.email, 'strong'), { signers: [{ certificate: alice.cert, key: alice.key }] });
  for (const validateSigner of [strict, legacy]) {
    const v = await verifyMessage(strong, { validateSigner });
    assert.equal(v.status, 'trusted', v.summary);
    assert.doesNotMatch(v.summary, /legacy/);
  }
});

test('library: the policy setting is the same switch as allowLegacy (sha1OnReceive / shortRsaOnReceive)', async () => {
  const { DEFAULT_POLICY } = await import('../../src/pki/algorithm-policy.ts');
  assert.equal(DEFAULT_POLICY.sha1OnReceive, 'reject');
  assert.equal(DEFAULT_POLICY.shortRsaOnReceive, 'reject');
  const sha1Only = createSignerValidator({ anchors: [pki.caCert], revocation: { mode: 'off' }, fetchCaIssuers: false, policy: { ...DEFAULT_POLICY, sha1OnReceive: 'warn' } });
  const a = await verifyMessage(sha1Rsa, { validateSigner: sha1Only });
  assert.equal(a.status, 'trusted', a.summary);
  assert.match(a.summary, /only because legacy algorithms are allowed/);
  // SHA-1 allowed does not allow a short RSA key.
  assert.equal((await verifyMessage(rsa1024, { validateSigner: sha1Only })).code, 'WEAK_ALG');
});

test('signing side: Kakitome never writes a SHA-1 signature', async () => {
  assert.throws(() => signMessage(draftMessage(alice.email, bob.email, 'x'), { signers: [{ certificate: alice.cert, key: alice.key, hash: 'sha1' as 'sha256' }] }), (e) => isKakitomeError(e, 'INVALID_ARGUMENT'));
  const draft = join(dir, 'draft.eml');
  writeFileSync(draft, draftMessage(alice.email, bob.email, 'cli'));
  const s = await runCli(['sign', '--cert', alice.certPath, '--key', alice.keyPath, '--hash', 'sha1', '-i', draft]);
  assert.equal(s.status, 2, s.stderr);
  // The default is SHA-256, and it verifies under the default (strict) policy.
  const ok = await runCli(['sign', '--cert', alice.certPath, '--key', alice.keyPath, '-i', draft]);
  assert.match(ok.stdout.toString('latin1'), /micalg=sha-256/);
  assert.equal((await runCli(['verify', '--ca', pki.caPath], { input: ok.stdout })).status, 0);
});

// --- CLI: verify and decrypt, human report and --json. ---

for (const w of WEAK) {
  test(`CLI verify: ${w.name} fails with WEAK_ALG (exit 1); --allow-legacy accepts it and says so`, async () => {
    const human = await runCli(['verify', '--ca', pki.caPath], { input: w.message });
    assert.equal(human.status, 1, human.stderr);
    assert.match(human.stderr.split('\n')[0]!, /^FAILED \(WEAK_ALG\)/);
    assert.match(human.stderr, w.why);

    const json = await runCli(['verify', '--ca', pki.caPath, '--json'], { input: w.message });
    assert.equal(json.status, 1);
    const v = JSON.parse(json.stdout.toString('utf8'));
    assert.equal(v.code, 'WEAK_ALG');
    assert.equal(v.signers[0].trust.code, 'WEAK_ALG');

    const allowed = await runCli(['verify', '--ca', pki.caPath, '--allow-legacy'], { input: w.message });
    assert.equal(allowed.status, 0, allowed.stderr);
    assert.match(allowed.stderr.split('\n')[0]!, /^OK: .*only because legacy algorithms are allowed/);
    assert.match(allowed.stderr, new RegExp(`warning: .*(${w.why.source})`));

    const allowedJson = await runCli(['verify', '--ca', pki.caPath, '--allow-legacy', '--json'], { input: w.message });
    assert.equal(allowedJson.status, 0);
    const a = JSON.parse(allowedJson.stdout.toString('utf8'));
    assert.equal(a.status, 'trusted');
    assert.match(a.summary, /only because legacy algorithms are allowed/);
    assert.ok(a.signers[0].warnings.some((x: string) => w.why.test(x)), a.signers[0].warnings.join(' | '));
  });
}

test('CLI decrypt: a SHA-1 signature inside the envelope fails with WEAK_ALG; --allow-legacy accepts it', async () => {
  const sealed = seal(sha1Rsa);
  const args = ['decrypt', '--cert', bob.certPath, '--key', bob.keyPath, '--ca', pki.caPath, '--json'];
  const d = await runCli(args, { input: sealed });
  assert.equal(d.status, 1, d.stderr);
  assert.equal(JSON.parse(d.stdout.toString('utf8')).code, 'WEAK_ALG');
  const a = await runCli([...args, '--allow-legacy'], { input: sealed });
  assert.equal(a.status, 0, a.stderr);
  assert.match(JSON.parse(a.stdout.toString('utf8')).summary, /only because legacy algorithms are allowed/);
});

test('CLI: a signer\'s warnings (no signing time) reach the human report and --json', async () => {
  const human = await runCli(['verify', '--ca', pki.caPath], { input: noTime });
  assert.equal(human.status, 0, human.stderr);
  assert.match(human.stderr, /^ {2}warning: +The signer gave no signing time\.$/m);
  const json = await runCli(['verify', '--ca', pki.caPath, '--json'], { input: noTime });
  const v = JSON.parse(json.stdout.toString('utf8'));
  assert.equal(v.status, 'trusted');
  assert.ok(v.signers[0].warnings.includes('The signer gave no signing time.'), v.signers[0].warnings.join(' | '));
});

test('warnings on algorithm strength: the policy\'s sentences when a validator judged, the CMS layer\'s without one; a refused SHA-1 is said even when the path fails first', async () => {
  const judged = await verifyMessage(sha1Rsa1024, { validateSigner: legacy });
  assert.deepEqual(judged.signers[0]!.warnings.filter((w) => /SHA-1|sha1|1024/.test(w)), [
    'The message signature uses SHA-1 (sha1), a broken hash for signatures. Accepted only because legacy algorithms are allowed.',
    'The signer\'s certificate (CN=Test old, emailAddress=old@example.com) has a 1024-bit RSA key, below the 2048-bit minimum. Accepted only because legacy algorithms are allowed.',
  ]);
  assert.match(judged.summary, /And 1 more: see the warnings\./);
  const unjudged = await verifyMessage(sha1Rsa1024);
  assert.equal(unjudged.status, 'valid-untrusted');
  assert.ok(unjudged.signers[0]!.warnings.some((w) => /sha1 digest is a legacy algorithm/.test(w)));
  assert.ok(unjudged.signers[0]!.warnings.some((w) => /RSA key has only 1024 bits/.test(w)));
  // Both refused: the path (RSA-1024) is the failure, and the SHA-1 signature is a warning beside it.
  const refused = await verifyMessage(sha1Rsa1024, { validateSigner: strict });
  assert.equal(refused.code, 'WEAK_ALG');
  assert.match(refused.signers[0]!.trust!.message, /1024-bit RSA key/);
  assert.ok(refused.signers[0]!.warnings.some((w) => /message signature uses SHA-1/.test(w)), refused.signers[0]!.warnings.join(' | '));
});

test('CLI: a signer trusted only through --allow-legacy is not kept in the key store for encrypting to', async () => {
  const env = { ...process.env, KAKITOME_HOME: join(dir, 'store'), KAKITOME_MASTER_KEY: '', KAKITOME_DATABASE_URL: '' };
  assert.equal((await runCli(['init'], { env })).status, 0);
  const legacyVerdict = await runCli(['verify', '--ca', pki.caPath, '--allow-legacy'], { env, input: rsa1024 });
  assert.equal(legacyVerdict.status, 0, legacyVerdict.stderr);
  assert.match(legacyVerdict.stderr, /warning: The certificate of old@example\.com was not kept in the key store: its trust rests on legacy algorithms\./);
  assert.equal((await runCli(['certs', 'find', old.email], { env })).status, 1);
  // The same store keeps a signer trusted on its own merits.
  const strong = signMessage(draftMessage(alice.email, bob.email, 'kept'), { signers: [{ certificate: alice.cert, key: alice.key }] });
  assert.equal((await runCli(['verify', '--ca', pki.caPath, '--allow-legacy'], { env, input: strong })).status, 0);
  assert.equal((await runCli(['certs', 'find', alice.email], { env })).status, 0);
});
