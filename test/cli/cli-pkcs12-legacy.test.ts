/**
 * Legacy PKCS#12 through the real launcher: `keys import --p12`, `sign --p12` and `decrypt --p12`
 * with OpenSSL's -legacy files (RC2-40 certificates, 3DES key: the form Windows and
 * macOS export), the same wrong-password error as for a modern file, and the
 * compatible export (`keys export --legacy`) read by NSS pk12util and OpenSSL.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createPrivateKey } from 'node:crypto';
import { TestPki } from '../helpers/pki.ts';
import { draftMessage, runCli, runProcess, storeHomeEnv } from './run-cli.ts';

const pki = new TestPki('CLI Legacy P12 Root');
const bob = pki.identity('rsa2048', 'oldbob');
const carol = pki.identity('p256', 'oldcarol');
after(() => pki.cleanup());
const pkcs8 = (k: { export: Function }) => (k.export({ format: 'der', type: 'pkcs8' }) as Buffer).toString('hex');

async function openssl(args: string[]): Promise<string> {
  const r = await runProcess('openssl', args);
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.toString();
}

async function legacyP12(id: typeof bob, name: string, password: string): Promise<string> {
  const file = join(pki.dir, name);
  await openssl(['pkcs12', '-export', '-legacy', '-in', id.certPath, '-inkey', id.keyPath, '-certfile', pki.caPath, '-out', file, '-passout', `pass:${password}`]);
  return file;
}

test('decrypt --p12 opens mail with an openssl -legacy file; a wrong password reads as for a modern file', async () => {
  const legacy = await legacyP12(bob, 'bob-legacy.p12', 'old-secret');
  const modern = join(pki.dir, 'bob-modern.p12');
  await openssl(['pkcs12', '-export', '-in', bob.certPath, '-inkey', bob.keyPath, '-out', modern, '-passout', 'pass:old-secret']);
  const e = await runCli(['encrypt', '--to', bob.certPath], { input: draftMessage(carol.email, bob.email, 'Old key', 'Sealed for the Windows export.\r\n') });
  assert.equal(e.status, 0, e.stderr);
  const d = await runCli(['decrypt', '--p12', legacy, '--pass', 'pass:old-secret', '--json'], { input: e.stdout });
  assert.equal(d.status, 0, d.stderr);
  assert.equal(JSON.parse(d.stdout.toString()).status, 'unsigned');
  const plain = await runCli(['decrypt', '--p12', legacy, '--pass', 'pass:old-secret'], { input: e.stdout });
  assert.match(plain.stdout.toString(), /Sealed for the Windows export/);

  const wrong = await Promise.all([legacy, modern].map((f) => runCli(['decrypt', '--p12', f, '--pass', 'pass:not-it'], { input: e.stdout })));
  for (const w of wrong) {
    assert.equal(w.status, 2, w.stderr);
    assert.match(w.stderr, /KEY_INVALID/);
    assert.doesNotMatch(w.stderr, /not-it|old-secret/);
  }
  assert.equal(wrong[0]!.stderr.replace(legacy, 'FILE'), wrong[1]!.stderr.replace(modern, 'FILE'));
});

test('keys import --p12 takes an openssl -legacy file into the store; keys export --legacy is read by NSS pk12util and by OpenSSL with and without -legacy', async () => {
  const home = join(pki.dir, 'store-home');
  const env = storeHomeEnv(home, join(pki.dir, 'user-home'));
  const kk = async (...args: string[]) => {
    const r = await runCli([...args, '--json'], { env });
    assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
    return r.stdout.length ? JSON.parse(r.stdout.toString()) : undefined;
  };
  await kk('init');
  const imported = await kk('keys', 'import', '--p12', await legacyP12(carol, 'carol-legacy.p12', 'carol pw'), '--pass', 'pass:carol pw');
  assert.deepEqual(imported.key.certificates, [carol.cert.fingerprint256]);
  const bad = await runCli(['keys', 'import', '--p12', join(pki.dir, 'carol-legacy.p12'), '--pass', 'pass:wrong', '--json'], { env });
  assert.equal(bad.status, 2, bad.stderr);
  assert.match(bad.stdout.toString(), /KEY_INVALID/);

  const out = join(pki.dir, 'carol-compat.p12');
  await kk('keys', 'export', '--id', imported.key.id, '--reason', 'to an old client', '--legacy', '--pass', 'pass:compat pw', '-o', out);
  for (const flags of [[], ['-legacy']]) {
    const pem = await openssl(['pkcs12', '-in', out, '-passin', 'pass:compat pw', '-nodes', ...flags]);
    assert.equal(pkcs8(createPrivateKey(pem)), pkcs8(carol.key), `openssl ${flags.join(' ')}`);
    assert.equal((pem.match(/BEGIN CERTIFICATE/g) ?? []).length, 2, 'the certificate and its CA');
  }
  const info = await runProcess('openssl', ['pkcs12', '-info', '-noout', '-in', out, '-passin', 'pass:compat pw']);
  assert.match(info.stderr, /pbeWithSHA1And3-KeyTripleDES-CBC/);
  assert.doesNotMatch(info.stderr, /RC2/);

  const db = join(pki.dir, 'nss-compat');
  mkdirSync(db);
  assert.equal((await runProcess('certutil', ['-N', '-d', `sql:${db}`, '--empty-password'])).status, 0);
  const nss = await runProcess('pk12util', ['-i', out, '-d', `sql:${db}`, '-W', 'compat pw', '-K', '']);
  assert.equal(nss.status, 0, nss.stderr + nss.stdout.toString());
  assert.match((await runProcess('certutil', ['-K', '-d', `sql:${db}`])).stdout.toString(), /ec/);
  assert.match((await runProcess('certutil', ['-L', '-d', `sql:${db}`])).stdout.toString(), /u,u,u/);
});

test('sign --p12 signs with an openssl -legacy file (RC2-40 certificates), one message and a directory; openssl and verify accept the signatures', async () => {
  const p12 = await legacyP12(carol, 'carol-sign.p12', 'sign pw');
  const draft = draftMessage(carol.email, bob.email, 'Signed with an old export', 'Signed with the key from a Windows-style export.\r\n');
  const s = await runCli(['sign', '--p12', p12, '--pass', 'pass:sign pw'], { input: draft });
  assert.equal(s.status, 0, s.stderr);
  const signed = join(pki.dir, 'signed-legacy.eml');
  writeFileSync(signed, s.stdout);
  // The chain from the file travels with the signature: openssl needs only the root.
  await openssl(['smime', '-verify', '-in', signed, '-CAfile', pki.caPath, '-purpose', 'any', '-out', join(pki.dir, 'verified.txt')]);
  const v = await runCli(['verify', '--ca', pki.caPath, '--json'], { input: s.stdout });
  assert.equal(v.status, 0, v.stderr);
  assert.equal(JSON.parse(v.stdout.toString()).status, 'trusted');

  const inDir = join(pki.dir, 'outbox');
  const outDir = join(pki.dir, 'signed');
  mkdirSync(inDir);
  for (let i = 0; i < 6; i++) writeFileSync(join(inDir, `m${i}.eml`), draftMessage(carol.email, bob.email, `Batch ${i}`));
  const b = await runCli(['sign', '--p12', p12, '--pass', 'pass:sign pw', '-i', inDir, '-o', outDir]);
  assert.equal(b.status, 0, b.stderr);
  assert.equal(readdirSync(outDir).filter((f) => f.endsWith('.eml')).length, 6);
  const one = await runCli(['verify', '--ca', pki.caPath, '--json'], { input: readFileSync(join(outDir, 'm5.eml')) });
  assert.equal(JSON.parse(one.stdout.toString()).status, 'trusted');

  const wrong = await runCli(['sign', '--p12', p12, '--pass', 'pass:nope'], { input: draft });
  assert.equal(wrong.status, 2);
  assert.match(wrong.stderr, /KEY_INVALID.*wrong password or damaged file/);
  const both = await runCli(['sign', '--p12', p12, '--cert', carol.certPath, '--key', carol.keyPath], { input: draft });
  assert.equal(both.status, 2);
  assert.match(both.stderr, /either --cert and --key, or --p12/);
});
