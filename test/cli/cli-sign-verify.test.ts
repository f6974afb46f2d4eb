import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestPki } from '../helpers/pki.ts';
import { BIN, draftMessage, runCli, runProcess } from './run-cli.ts';

const pki = new TestPki('CLI Sign Root');
const alice = pki.identity('rsa2048', 'alice');
const carol = pki.identity('p256', 'carol');
const dir = pki.dir;
const draft = draftMessage(alice.email, 'bob@example.com', 'Quarterly report', 'Grüße aus Tokyo.\r\n');
const draftPath = join(dir, 'draft.eml');
writeFileSync(draftPath, draft);
test.after(() => pki.cleanup());

const noTemporaryFiles = () => assert.deepEqual(readdirSync(dir).filter((n) => n.endsWith('.tmp')), []);

test('sign then verify: exit 0, verify -o writes the content without the signature layer', async () => {
  const signed = join(dir, 'signed.eml');
  const s = await runCli(['sign', '--cert', alice.certPath, '--key', alice.keyPath, '-i', draftPath, '-o', signed]);
  assert.equal(s.status, 0, s.stderr);
  const text = readFileSync(signed, 'latin1');
  assert.match(text, /Content-Type: multipart\/signed; protocol="application\/pkcs7-signature";\s+micalg=sha-256/);
  assert.match(text, /^Subject: Quarterly report\r$/m);
  const content = join(dir, 'content.eml');
  const v = await runCli(['verify', '--ca', pki.caPath, '-i', signed, '-o', content]);
  assert.equal(v.status, 0, v.stderr);
  assert.match(v.stderr.split('\n')[0]!, /^OK: /);
  const out = readFileSync(content, 'utf8');
  assert.doesNotMatch(out, /pkcs7-signature|multipart\/signed/);
  assert.match(out, /^Subject: Quarterly report\r$/m);
  assert.match(out, /Gr/);
  noTemporaryFiles();
});

test('verify --json: structured verdict with per-signer email, subject, chain, revocation, identity, signingTime, warnings', async () => {
  const signed = (await runCli(['sign', '--cert', alice.certPath, '--key', alice.keyPath], { input: draft })).stdout;
  const v = await runCli(['verify', '--ca', pki.caPath, '--json'], { input: signed });
  assert.equal(v.status, 0, v.stderr);
  const verdict = JSON.parse(v.stdout.toString('utf8'));
  assert.equal(verdict.status, 'trusted');
  assert.equal(verdict.code, undefined);
  assert.equal(typeof verdict.summary, 'string');
  assert.equal(verdict.signers.length, 1);
  const s = verdict.signers[0];
  assert.deepEqual(s.email, [alice.email]);
  assert.match(s.subject, /Test alice/);
  assert.equal(s.chain.length, 2);
  assert.match(s.chain[1], /CLI Sign Root/);
  assert.equal(s.identity.status, 'match');
  assert.equal(typeof s.revocation.status, 'string');
  assert.ok(Math.abs(Date.parse(s.signingTime) - Date.now()) < 120_000);
  assert.ok(Array.isArray(s.warnings));
  assert.ok(Array.isArray(verdict.warnings));
});

test('without --ca the signer is untrusted: exit 1, CERT_UNTRUSTED, and no OUT is written', async () => {
  const signed = (await runCli(['sign', '--cert', alice.certPath, '--key', alice.keyPath], { input: draft })).stdout;
  const out = join(dir, 'untrusted-out.eml');
  const v = await runCli(['verify', '--json', '-o', out], { input: signed });
  assert.equal(v.status, 1);
  const verdict = JSON.parse(v.stdout.toString('utf8'));
  assert.equal(verdict.status, 'valid-untrusted');
  assert.equal(verdict.code, 'CERT_UNTRUSTED');
  assert.equal(existsSync(out), false);
  noTemporaryFiles();
});

test('a tampered message fails (exit 1) and an existing OUT is left untouched', async () => {
  const signed = (await runCli(['sign', '--cert', alice.certPath, '--key', alice.keyPath], { input: draft })).stdout.toString('latin1');
  const tampered = Buffer.from(signed.replace('Grüße'.replace('ü', '=C3=BC').replace('ß', '=C3=9F'), 'Gruesse').replace('this is', 'that is').replace('Tokyo', 'Osaka'), 'latin1');
  assert.notDeepEqual(tampered, Buffer.from(signed, 'latin1'));
  const out = join(dir, 'existing.eml');
  writeFileSync(out, 'previous content');
  const v = await runCli(['verify', '--ca', pki.caPath, '-o', out], { input: tampered });
  assert.equal(v.status, 1, v.stderr);
  assert.match(v.stderr.split('\n')[0]!, /^FAILED \((DIGEST_MISMATCH|BAD_SIG)\)/);
  assert.equal(readFileSync(out, 'utf8'), 'previous content');
  noTemporaryFiles();
});

test('--opaque, --hash sha384 and --pss: verified by kakitome and by openssl smime/cms', async () => {
  const cases: Array<[string, string[], string]> = [
    ['opaque', ['--opaque'], 'signed-data'],
    ['sha384-pss', ['--hash', 'sha384', '--pss'], 'micalg=sha-384'],
    ['ecdsa', [], 'micalg=sha-256'],
  ];
  for (const [name, flags, marker] of cases) {
    const id = name === 'ecdsa' ? carol : alice;
    const msg = draftMessage(id.email, 'bob@example.com', `case ${name}`);
    const s = await runCli(['sign', '--cert', id.certPath, '--key', id.keyPath, ...flags], { input: msg });
    assert.equal(s.status, 0, s.stderr);
    assert.ok(s.stdout.toString('latin1').includes(marker), `${name}: ${marker}`);
    const v = await runCli(['verify', '--ca', pki.caPath], { input: s.stdout });
    assert.equal(v.status, 0, `${name}: ${v.stderr}`);
    const file = join(dir, `${name}.eml`);
    writeFileSync(file, s.stdout);
    // openssl smime (the PKCS#7 API) cannot verify RSASSA-PSS: openssl cms does.
    const tool = flags.includes('--pss') ? 'cms' : 'smime';
    const o = await runProcess('openssl', [tool, '-verify', '-CAfile', pki.caPath, '-in', file]);
    assert.equal(o.status, 0, `${name}: openssl: ${o.stderr}`);
    assert.match(o.stderr, /Verification successful/);
    assert.match(o.stdout.toString('utf8'), /this is a test message/);
  }
});

test('a message signed by openssl smime verifies with kakitome', async () => {
  const file = join(dir, 'openssl-in.eml');
  writeFileSync(file, 'Content-Type: text/plain\r\n\r\nSigned by OpenSSL.\r\n');
  const o = await runProcess('openssl', ['smime', '-sign', '-in', file, '-signer', alice.certPath, '-inkey', alice.keyPath, '-from', alice.email, '-to', 'bob@example.com', '-subject', 'from openssl', '-md', 'sha256']);
  assert.equal(o.status, 0, o.stderr);
  const v = await runCli(['verify', '--ca', pki.caPath, '--json'], { input: o.stdout });
  assert.equal(v.status, 0, v.stderr);
  assert.equal(JSON.parse(v.stdout.toString('utf8')).signers[0].identity.status, 'match');
});

test('standard input to standard output, and "-" names them explicitly', async () => {
  const s = await runCli(['sign', '--cert', alice.certPath, '--key', alice.keyPath, '-i', '-', '-o', '-'], { input: draft });
  assert.equal(s.status, 0, s.stderr);
  assert.equal(s.stderr, '');
  const v = await runCli(['verify', '--ca', pki.caPath], { input: s.stdout });
  assert.equal(v.status, 0);
  assert.match(v.stdout.toString('utf8'), /^Subject: Quarterly report\r$/m);
  // A pipe named as a file is read whole (never sniffed for mbox, which would eat its head).
  // (Through sh: a shell pipe is a FIFO; node's own stdio pipes are sockets /dev/stdin cannot open.)
  const signedPath = join(dir, 'piped.eml');
  writeFileSync(signedPath, s.stdout);
  const p = await runProcess('sh', ['-c', `cat '${signedPath}' | '${process.execPath}' '${BIN}' verify --ca '${pki.caPath}' -i /dev/stdin`]);
  assert.equal(p.status, 0, p.stderr);
  assert.match(p.stdout.toString('utf8'), /^Subject: Quarterly report\r$/m);
});

test('LF-only input with a Japanese (ISO-2022-JP, RFC 2047) Subject signs opaque; verify -o restores the content', async () => {
  const jis = Buffer.concat([
    Buffer.from(`From: ${alice.email}\nTo: bob@example.com\nSubject: =?ISO-2022-JP?B?GyRCJDMkcyRLJEEkTxsoQg==?=\nDate: Mon, 23 Nov 2026 13:00:00 +0000\nMIME-Version: 1.0\nContent-Type: text/plain; charset=ISO-2022-JP\nContent-Transfer-Encoding: 7bit\n\n`),
    Buffer.from([0x1b, 0x24, 0x42, 0x24, 0x33, 0x24, 0x73, 0x1b, 0x28, 0x42, 0x0a]),
  ]);
  const s = await runCli(['sign', '--opaque', '--cert', alice.certPath, '--key', alice.keyPath], { input: jis });
  assert.equal(s.status, 0, s.stderr);
  assert.match(s.stdout.toString('latin1'), /smime-type=signed-data/);
  const out = join(dir, 'jis-content.eml');
  const v = await runCli(['verify', '--ca', pki.caPath, '-o', out], { input: s.stdout });
  assert.equal(v.status, 0, v.stderr);
  const content = readFileSync(out);
  assert.match(content.toString('latin1'), /^Subject: =\?ISO-2022-JP\?B\?GyRCJDMkcyRLJEEkTxsoQg==\?=\r?$/m);
  assert.ok(content.includes(Buffer.from([0x1b, 0x24, 0x42, 0x24, 0x33, 0x24, 0x73, 0x1b, 0x28, 0x42])), 'the ISO-2022-JP body survives');
});

test('--revocation off reports not-checked; hard-fail refuses a signer whose revocation cannot be known', async () => {
  const signed = (await runCli(['sign', '--cert', alice.certPath, '--key', alice.keyPath], { input: draft })).stdout;
  const off = await runCli(['verify', '--ca', pki.caPath, '--revocation', 'off', '--json'], { input: signed });
  assert.equal(off.status, 0, off.stderr);
  assert.equal(JSON.parse(off.stdout.toString('utf8')).signers[0].revocation.status, 'not-checked');
  // TestPki certificates name no CRL or OCSP location: under hard-fail that is not good enough.
  const hard = await runCli(['verify', '--ca', pki.caPath, '--revocation', 'hard-fail', '--json'], { input: signed });
  assert.equal(hard.status, 1);
  const v = JSON.parse(hard.stdout.toString('utf8'));
  assert.equal(v.status, 'valid-untrusted');
  assert.equal(v.code, 'REVOCATION_UNKNOWN');
  assert.equal(v.signers[0].revocation.status, 'unknown');
});
