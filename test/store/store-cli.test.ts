/**
 * The store and CA commands through the real launcher, with --json: init, ca
 * init/issue/renew/revoke/crl, keys list/export/retire, certs import/list/find,
 * expiring; the exported .p12 opens in openssl pkcs12.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { draftMessage, runCli } from '../cli/run-cli.ts';
import { parseCrl } from '../../src/pki/parse-crl.ts';

const home = mkdtempSync(join(tmpdir(), 'kakitome-cli-store-'));
after(() => rmSync(home, { recursive: true, force: true }));
const env = { ...process.env, KAKITOME_HOME: home, KAKITOME_MASTER_KEY: '', KAKITOME_DATABASE_URL: '' };
async function kk(...args: string[]) {
  const r = await runCli([...args, '--json'], { env });
  return { status: r.status, json: r.stdout.length ? JSON.parse(r.stdout.toString()) : undefined, stderr: r.stderr };
}

test('a new user runs the store and the CA from the command line', async () => {
  const init = await kk('init');
  assert.equal(init.status, 0, init.stderr);
  assert.equal(init.json.masterKeyCreated, true);
  assert.equal(init.json.database, join(home, 'kakitome.db'));
  assert.equal(statSync(join(home, 'master.key')).mode & 0o777, 0o600);
  assert.equal((await kk('init')).json.masterKeyCreated, false, 'init is idempotent and never replaces the master key');

  // An OUT that cannot be written stops ca init before the CA exists: the same line then works.
  const noDir = await kk('ca', 'init', '--name', 'CLI Corp', '--key-type', 'p256', '-o', join(home, 'missing', 'root.pem'));
  assert.equal(noDir.status, 2);
  assert.match(noDir.stderr, /Cannot write .*missing\/root\.pem: the directory .*missing does not exist; create it first \(mkdir -p /);
  const made = await kk('ca', 'init', '--name', 'CLI Corp', '--key-type', 'p256', '-o', join(home, 'root.pem'));
  assert.equal(made.status, 0, made.stderr);
  assert.equal(made.json.out, join(home, 'root.pem'));
  assert.match(readFileSync(join(home, 'root.pem'), 'utf8'), /^-----BEGIN CERTIFICATE-----/);
  const noIssue = await kk('ca', 'issue', '--email', 'carol@example.com', '-o', join(home, 'missing', 'carol.pem'));
  assert.equal(noIssue.status, 2);
  assert.equal((await kk('certs', 'find', 'carol@example.com')).status, 1, 'nothing issued for an OUT that cannot be written');
  const issued = await kk('ca', 'issue', '--email', 'alice@example.com', '-o', join(home, 'alice.pem'));
  assert.equal(issued.status, 0, issued.stderr);
  const alice = issued.json.certificates[0];
  assert.deepEqual(alice.emails, ['alice@example.com']);

  const found = await kk('certs', 'find', 'alice@example.com');
  assert.equal(found.json.encryption.fingerprint, alice.fingerprint);
  assert.equal(found.json.signing.fingerprint, alice.fingerprint);
  assert.equal((await kk('certs', 'find', 'nobody@example.com')).status, 1);

  assert.equal(issued.json.out, join(home, 'alice.pem'));
  const renewed = await kk('ca', 'renew', '--fingerprint', alice.fingerprint);
  assert.equal(renewed.status, 0, renewed.stderr);
  assert.equal(renewed.json.out, null);
  // Without --json: the lines name the file written; with -o - the certificate alone fills stdout's start.
  const renewedText = await runCli(['ca', 'renew', '--fingerprint', alice.fingerprint, '--keep-key', '-o', join(home, 'alice-2.pem')], { env });
  assert.equal(renewedText.status, 0, renewedText.stderr.toString());
  assert.match(renewedText.stdout.toString(), new RegExp(`^Renewed: [0-9a-f]{64}\\nWrote the new certificate \\(PEM\\) to ${join(home, 'alice-2.pem').replace(/[.]/g, '\\.')}\\.\\n$`));
  const crlText = await runCli(['ca', 'crl', '-o', join(home, 'text.crl')], { env });
  assert.match(crlText.stdout.toString(), /^CRL \d+ with 0 revoked, next update [^\n]+\.\nWrote the CRL \(DER\) to .*text\.crl\.\n$/);
  // -o -: the CRL alone on stdout (a DER CRL that parses, nothing after it); the summary on stderr, --json too.
  for (const args of [['-o', '-'], ['-o', '-', '--pem'], ['-o', '-', '--json']]) {
    const piped = await runCli(['ca', 'crl', ...args], { env });
    assert.equal(piped.status, 0, piped.stderr);
    const der = args.includes('--pem') ? Buffer.from(piped.stdout.toString().replace(/^-----BEGIN X509 CRL-----\n([A-Za-z0-9+/=\n]+)-----END X509 CRL-----\n$/, '$1'), 'base64') : piped.stdout;
    // parseCrl refuses trailing bytes: a summary line after the CRL fails here.
    assert.equal(parseCrl(der).entries.size, 0, args.join(' '));
    assert.match(piped.stderr, args.includes('--json') ? /"crlNumber": \d+/ : /^CRL \d+ with 0 revoked, next update [^\n]+\.\n$/);
  }
  const keys = (await kk('keys', 'list')).json.keys;
  assert.equal(keys.length, 6, 'two CA keys, their two delegated OCSP signing keys, alice old and new');

  const exp = await runCli(['keys', 'export', '--id', alice.keyId, '--reason', 'move to laptop', '--pass', 'pass:secret', '-o', join(home, 'alice.p12')], { env });
  assert.equal(exp.status, 0, exp.stderr);
  const pem = execFileSync('openssl', ['pkcs12', '-in', join(home, 'alice.p12'), '-passin', 'pass:secret', '-nodes']).toString();
  assert.match(pem, /BEGIN PRIVATE KEY/);
  assert.equal((await runCli(['keys', 'export', '--id', alice.keyId, '--pass', 'pass:x'], { env })).status, 2, '--reason is required');

  assert.equal((await kk('keys', 'retire', '--id', alice.keyId, '--reason', 'renewed')).json.key.status, 'retired');

  const revoked = await kk('ca', 'revoke', '--fingerprint', renewed.json.certificate.fingerprint, '--reason', 'keyCompromise');
  assert.equal(revoked.status, 0, revoked.stderr);
  const crl = await kk('ca', 'crl', '-o', join(home, 'ca.crl'));
  assert.equal(crl.json.revoked, 1);
  assert.equal(parseCrl(readFileSync(join(home, 'ca.crl'))).entries.size, 1);

  const imported = await kk('certs', 'import', join(home, 'alice.pem'));
  assert.equal(imported.status, 0, imported.stderr);
  assert.ok((await kk('certs', 'list', '--email', 'alice@example.com')).json.certificates.length >= 2);

  const soon = await kk('expiring', '--within', '400');
  assert.equal(soon.status, 1, 'something expires within 400 days');
  assert.ok(soon.json.expiring.some((c: { fingerprint: string }) => c.fingerprint === alice.fingerprint));
  const later = await kk('expiring', '--within', '1');
  assert.equal(later.status, 0);

  const backup = await kk('backup', '-o', join(home, 'backup.db'));
  assert.equal(backup.status, 0, backup.stderr);
  assert.equal((await runCli(['keys', 'list', '--json', '--home', home], { env: { ...env, KAKITOME_HOME: '/nonexistent' } })).status, 0);

  // A wrong master key: a clear KEY_INVALID, and the store is untouched.
  const wrong = await runCli(['keys', 'list', '--json'], { env: { ...env, KAKITOME_MASTER_KEY: Buffer.alloc(32, 7).toString('base64') } });
  assert.notEqual(wrong.status, 0);
  assert.match(wrong.stdout.toString() + wrong.stderr, /KEY_INVALID/);
  assert.equal((await kk('keys', 'list')).json.keys.length, 6);
});

test('the same commands on PostgreSQL (--database-url)', async () => {
  const { startPostgres } = await import('./postgres-server.ts');
  const pg = await startPostgres();
  try {
    const db = ['--database-url', pg.url];
    const pgHome = join(home, 'pg');
    const e = { ...env, KAKITOME_HOME: pgHome };
    const run = async (...args: string[]) => {
      const r = await runCli([...args, ...db, '--json'], { env: e });
      assert.equal(r.status, 0, r.stderr);
      return JSON.parse(r.stdout.toString());
    };
    // The text says where the store is (the database, its password never shown) and what the home holds.
    const secretUrl = pg.url.replace('postgres://kakitome@', 'postgres://kakitome:not-to-be-shown@');
    const text = await runCli(['init', '--database-url', `${secretUrl}?sslmode=disable&password=not-to-be-shown`], { env: e });
    assert.equal(text.status, 0, text.stderr);
    const said = text.stdout.toString();
    assert.doesNotMatch(said + text.stderr, /not-to-be-shown/);
    assert.match(said, new RegExp(`^Store ready \\(postgres\\) in the database ${pg.url.replace(/[.?]/g, '\\$&')}\\?sslmode=disable\\.$`, 'm'));
    assert.match(said, new RegExp(`^${pgHome} holds only the master key: keys, certificates and the audit log are in the database\\.$`, 'm'));
    assert.doesNotMatch(said, new RegExp(`in ${pgHome}\\.`));
    const json = await run('init');
    assert.equal(json.engine, 'postgres');
    assert.equal(json.database, pg.url);
    await run('ca', 'init', '--name', 'PG Corp', '--key-type', 'p256');
    const issued = await run('ca', 'issue', '--email', 'bob@example.com', '--usage', 'separate', '--key-type', 'p256');
    assert.equal(issued.certificates.length, 2);
    assert.equal((await run('keys', 'list')).keys.length, 6, 'two CA keys, two OCSP signing keys, bob\'s two');
  } finally {
    pg.stop();
  }
});

test('keys import (PEM pair and .p12) and a running `ca ocsp` that openssl queries', async () => {
  const { TestPki } = await import('../helpers/pki.ts');
  const { exportPkcs12 } = await import('../../src/keys/export-pkcs12.ts');
  const { spawn } = await import('node:child_process');
  const { writeFileSync } = await import('node:fs');
  const pki = new TestPki('CLI Import Root');
  const h = join(home, 'import');
  const e = { ...env, KAKITOME_HOME: h };
  const run = async (...args: string[]) => {
    const r = await runCli([...args, '--json'], { env: e });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout.toString());
  };
  try {
    await run('init');
    const ivy = pki.identity('rsa2048', 'ivy');
    const jon = pki.identity('p256', 'jon');
    const a = await run('keys', 'import', '--key', ivy.keyPath, '--cert', ivy.certPath, '--label', 'ivy');
    assert.deepEqual(a.key.certificates, [ivy.cert.fingerprint256]);
    const p12 = join(pki.dir, 'jon.p12');
    writeFileSync(p12, exportPkcs12({ key: jon.key, certificate: jon.cert, password: 'pw', iterations: 2048 }));
    const b = await run('keys', 'import', '--p12', p12, '--pass', 'pass:pw');
    assert.deepEqual(b.key.certificates, [jon.cert.fingerprint256]);
    const mismatch = await runCli(['keys', 'import', '--key', ivy.keyPath, '--cert', jon.certPath, '--json'], { env: e });
    assert.equal(mismatch.status, 2);
    assert.match(mismatch.stdout.toString(), /KEY_INVALID/);

    await run('ca', 'init', '--name', 'OCSP Corp', '--key-type', 'p256');
    const issued = await run('ca', 'issue', '--email', 'kim@example.com', '-o', join(h, 'kim.pem'));
    assert.equal(issued.certificates.length, 1);
    const caList = (await run('certs', 'list', '--trust', 'trusted')).certificates.filter((c: { isCa: boolean }) => c.isCa);
    assert.equal(caList.length, 2);
    const rootFp = caList.find((c: { subject: string }) => /Root CA/.test(c.subject)).fingerprint;
    const issuingFp = caList.find((c: { subject: string }) => /S\/MIME CA/.test(c.subject)).fingerprint;
    // The CA certificates, for openssl, read back from the store.
    const { openStore } = await import('../../src/store/open-store.ts');
    const { encodePem } = await import('../../src/asn1/pem.ts');
    const s = await openStore({ home: h, env: e });
    const rootPem = encodePem('CERTIFICATE', (await s.findCertificateByFingerprint(rootFp))!.certificate.der);
    const issuingPem = encodePem('CERTIFICATE', (await s.findCertificateByFingerprint(issuingFp))!.certificate.der);
    await s.close();
    writeFileSync(join(h, 'issuing.pem'), issuingPem);
    writeFileSync(join(h, 'chain.pem'), issuingPem + rootPem);

    const child = spawn(process.execPath, [new URL('../../bin/kakitome.js', import.meta.url).pathname, 'ca', 'ocsp', '--port', '0', '--json'], { env: e, stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let buf = '';
        child.stdout.on('data', (d: Buffer) => {
          buf += d.toString();
          const m = /"url": "([^"]+)"/.exec(buf);
          if (m) resolve(m[1]!);
        });
        child.once('exit', (code) => reject(new Error(`ca ocsp exited ${code}`)));
      });
      const { promisify } = await import('node:util');
      const { execFile } = await import('node:child_process');
      const r = await promisify(execFile)('openssl', ['ocsp', '-issuer', join(h, 'issuing.pem'), '-cert', join(h, 'kim.pem'), '-url', url, '-CAfile', join(h, 'chain.pem')]);
      assert.match(r.stdout, /kim\.pem: good/);
      assert.match(r.stderr + r.stdout, /Response verify OK/);
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
  } finally {
    pki.cleanup();
  }
});

test('a passphrase-protected store verifies and lists certificates without the passphrase; keys still need it (issue 12, item 5)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kakitome-cli-nopass-'));
  try {
    const pass = join(dir, 'pass');
    writeFileSync(pass, 'correct horse battery staple\n', { mode: 0o600 });
    const base: NodeJS.ProcessEnv = { ...process.env, KAKITOME_HOME: join(dir, 'home'), KAKITOME_MASTER_KEY: '', KAKITOME_DATABASE_URL: '' };
    delete base.KAKITOME_MASTER_PASS_SPEC;
    const withPass = { ...base, KAKITOME_MASTER_PASS_SPEC: `file:${pass}` };
    const run = (args: string[], e: NodeJS.ProcessEnv, input?: Buffer) => runCli(args, { env: e, ...(input ? { input } : {}) });
    for (const args of [['init', '--master-pass', `file:${pass}`], ['ca', 'init', '--name', 'NoPass Corp', '--key-type', 'p256'], ['ca', 'issue', '--email', 'alice@example.com', '--key-type', 'p256']]) {
      const r = await run(args, withPass);
      assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
    }
    const signed = await run(['sign', '--from', 'alice@example.com'], withPass, draftMessage('alice@example.com', 'bob@example.com', 'No passphrase needed'));
    assert.equal(signed.status, 0, signed.stderr);

    // No passphrase anywhere, stdin is no terminal: reading certificates must not ask.
    const verified = await run(['verify', '--json'], base, signed.stdout);
    assert.equal(verified.status, 0, verified.stderr);
    assert.equal(JSON.parse(verified.stdout.toString()).status, 'trusted');
    for (const args of [['certs', 'list', '--json'], ['certs', 'find', 'alice@example.com', '--json']]) {
      const r = await run(args, base);
      assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
    }
    const encrypted = await run(['encrypt', '--to', 'alice@example.com'], base, draftMessage('bob@example.com', 'alice@example.com', 'To alice'));
    assert.equal(encrypted.status, 0, `encrypt to an address reads certificates only: ${encrypted.stderr}`);
    // Using a key still needs the master key, hence its passphrase.
    const decrypted = await run(['decrypt'], base, encrypted.stdout);
    assert.notEqual(decrypted.status, 0);
    assert.match(decrypted.stderr, /passphrase/i);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
