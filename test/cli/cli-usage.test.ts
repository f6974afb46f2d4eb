import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { TestPki } from '../helpers/pki.ts';
import { BIN, draftMessage, runCli, runProcess } from './run-cli.ts';

const pki = new TestPki('CLI Usage Root');
const alice = pki.identity('rsa2048', 'alice');
const dir = pki.dir;
const draft = draftMessage(alice.email, 'bob@example.com', 'usage');
const draftPath = join(dir, 'draft.eml');
writeFileSync(draftPath, draft);
// The same key, encrypted (PKCS#8 with AES-256-CBC), to exercise --pass.
const encKeyPath = join(dir, 'alice-enc.key');
writeFileSync(encKeyPath, alice.key.export({ format: 'pem', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase: 'correct horse' }));
test.after(() => pki.cleanup());

test('a message command loads its own command module only; --help still lists every command', async () => {
  const hook = new URL('./record-loaded-modules.ts', import.meta.url).href;
  const loaded = async (args: string[]) => {
    const r = await runProcess(process.execPath, ['--import', hook, BIN, ...args]);
    assert.equal(r.status, 0, r.stderr);
    return { stdout: r.stdout.toString('utf8'), modules: [...r.stderr.matchAll(/^loaded (.+)$/gm)].map((m) => m[1]!) };
  };
  for (const command of ['sign', 'verify', 'encrypt', 'decrypt', 'inspect']) {
    const { stdout, modules } = await loaded([command, '--help']);
    assert.match(stdout, new RegExp(`^Usage: kakitome ${command} `, 'm'));
    assert.ok(modules.some((m) => m.endsWith(`/cli/commands/${command}.ts`) || m.endsWith(`/cli/commands/${command}.js`)), `${command} loads its command module`);
    // The store, the CA and the servers' command modules stay unloaded (they were 34 of the 79 modules a sign batch's main thread loaded).
    for (const other of ['serve', 'gateway', 'ca-authority', 'tenant', 'dkim', 'policy', 'store-keys', 'store-backup']) {
      assert.ok(!modules.some((m) => /\/cli\/commands\/([\w-]+)\.[jt]s$/.exec(m)?.[1] === other), `${command} does not load commands/${other}`);
    }
    // The verdict report (and the MIME decoders behind it) loads when a verdict is printed, not before.
    assert.ok(!modules.some((m) => /\/cli\/render-verdict\.[jt]s$/.test(m)), `${command} --help does not load render-verdict`);
  }
  const all = await loaded(['--help']);
  for (const c of ['sign', 'serve', 'gateway', 'ca', 'keys', 'dkim']) assert.match(all.stdout, new RegExp(`^  ${c}\\b`, 'm'));
  assert.ok(all.modules.some((m) => /\/cli\/commands\/serve\.[jt]s$/.test(m)));
});

test('--help lists every command with examples; each command help shows its forms and examples', async () => {
  const h = await runCli(['--help']);
  assert.equal(h.status, 0);
  const text = h.stdout.toString('utf8');
  for (const c of ['sign', 'verify', 'encrypt', 'decrypt', 'inspect']) assert.match(text, new RegExp(`^  ${c}\\b`, 'm'));
  assert.match(text, /Exit status:/);
  assert.match(text, /Examples:/);
  const expected: Record<string, string[]> = {
    sign: ['--cert <file>', '--key <file>', '--p12 <file>', '--from <address>', '--home <dir>', '--database-url <url>', '--chain <file>', '--opaque', '--hash <alg>', '--pss', '--pass <spec>', '-i, --in <file>', '-o, --out <file>'],
    verify: ['--ca <file>', '--no-harvest', '--json', '-i, --in <file>', '-o, --out <file>'],
    encrypt: ['--to <cert|address>', '--no-self', '--sign ', '--cipher <name>', '--oaep', '--sign-cert <file>', '--sign-key <file>'],
    decrypt: ['--cert <file>', '--key <file>', '--p12 <file>', '--pass <spec>', '--ca <file>', '--json'],
    inspect: ['--json', '-i, --in <file>'],
  };
  for (const [c, options] of Object.entries(expected)) {
    const r = await runCli([c, '--help']);
    assert.equal(r.status, 0);
    const t = r.stdout.toString('utf8');
    for (const o of options) assert.ok(t.includes(o), `${c} --help mentions ${o}`);
    assert.match(t, /Examples:\n  kakitome /);
  }
  const v = await runCli(['--version']);
  assert.equal(v.status, 0);
  assert.match(v.stdout.toString('utf8'), /^\d+\.\d+\.\d+/);
});

test('usage errors exit 2 with a message saying what to do', async () => {
  const cases: Array<[string[], RegExp]> = [
    [[], /Usage: kakitome/],
    [['frobnicate'], /unknown command/],
    [['sign', '--cert', alice.certPath], /--cert and --key go together/],
    [['sign', '--cert', alice.certPath, '--key', alice.keyPath, '--hash', 'md5'], /Allowed choices are sha256, sha384, sha512/],
    [['verify', '--bogus'], /unknown option '--bogus'/],
    [['encrypt', '-i', draftPath], /at least one recipient/],
    [['encrypt', '--to', alice.certPath, '--cipher', 'des-cbc'], /Allowed choices/],
    [['encrypt', '--to', alice.certPath, '--sign-cert', alice.certPath], /--sign-cert and --sign-key go together/],
    [['decrypt', '-i', draftPath], /--cert FILE --key FILE, --p12 FILE, or a key store/],
    [['decrypt', '--cert', alice.certPath, '--key', alice.keyPath, '--p12', 'x.p12'], /either --cert and --key, or --p12/],
    [['sign', '--cert', join(dir, 'absent.pem'), '--key', alice.keyPath, '-i', draftPath], /--cert .*absent\.pem.*no such file/],
    [['sign', '--cert', alice.keyPath, '--key', alice.keyPath, '-i', draftPath], /MALFORMED/],
    [['sign', '--cert', alice.certPath, '--key', alice.keyPath, '-i', join(dir, 'nope.eml')], /no such file/],
    [['sign', '--cert', alice.certPath, '--key', alice.keyPath, '--jobs', '0', '-i', draftPath], /worker threads/],
  ];
  for (const [args, pattern] of cases) {
    const r = await runCli(args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, pattern, args.join(' '));
  }
});

test('malformed messages exit 2; verify of an unsigned message exits 1', async () => {
  const garbage = await runCli(['verify', '--ca', pki.caPath, '--json'], { input: Buffer.from('\x00\x01 not a message') });
  assert.equal(garbage.status, 2);
  assert.equal(JSON.parse(garbage.stdout.toString('utf8')).status, 'error');
  const unsigned = await runCli(['verify', '--ca', pki.caPath, '--json'], { input: draft });
  assert.equal(unsigned.status, 1);
  assert.equal(JSON.parse(unsigned.stdout.toString('utf8')).status, 'unsigned');
});

test('--pass: pass:, env:, file: open an encrypted key; a missing or wrong passphrase is exit 2 and never echoed', async () => {
  const passFile = join(dir, 'pass.txt');
  writeFileSync(passFile, 'correct horse\n');
  chmodSync(passFile, 0o600);
  const forms: Array<[string, NodeJS.ProcessEnv]> = [
    ['pass:correct horse', process.env],
    ['env:KAKITOME_TEST_PASS', { ...process.env, KAKITOME_TEST_PASS: 'correct horse' }],
    [`file:${passFile}`, process.env],
  ];
  for (const [spec, env] of forms) {
    const r = await runCli(['sign', '--cert', alice.certPath, '--key', encKeyPath, '--pass', spec, '-i', draftPath], { env });
    assert.equal(r.status, 0, `${spec}: ${r.stderr}`);
    assert.match(r.stdout.toString('latin1'), /multipart\/signed/);
  }
  const missing = await runCli(['sign', '--cert', alice.certPath, '--key', encKeyPath, '-i', draftPath]);
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /KEY_INVALID: --key .*encrypted: give its passphrase\.\n  Give the passphrase with --pass prompt, env:VAR, file:PATH or fd:N\./);
  const wrong = await runCli(['sign', '--cert', alice.certPath, '--key', encKeyPath, '--pass', 'pass:battery staple', '-i', draftPath]);
  assert.equal(wrong.status, 2);
  assert.match(wrong.stderr, /wrong passphrase/);
  assert.doesNotMatch(wrong.stderr, /battery staple|correct horse/);
  const noPrefix = await runCli(['sign', '--cert', alice.certPath, '--key', encKeyPath, '--pass', 'correct horse', '-i', draftPath]);
  assert.equal(noPrefix.status, 2);
  assert.doesNotMatch(noPrefix.stderr, /correct horse/);
  const unset = await runCli(['sign', '--cert', alice.certPath, '--key', encKeyPath, '--pass', 'env:KAKITOME_UNSET_VAR', '-i', draftPath]);
  assert.equal(unset.status, 2);
  assert.match(unset.stderr, /KAKITOME_UNSET_VAR is not set/);
});

test('a failed sign leaves no OUT file behind', async () => {
  const out = join(dir, 'signed-fail.eml');
  const r = await runCli(['sign', '--cert', alice.certPath, '--key', encKeyPath, '--pass', 'pass:wrong', '-i', draftPath, '-o', out]);
  assert.equal(r.status, 2);
  assert.equal(existsSync(out), false);
  const garbage = join(dir, 'garbage.eml');
  writeFileSync(garbage, 'no header here at all');
  const r2 = await runCli(['sign', '--cert', alice.certPath, '--key', alice.keyPath, '-i', garbage, '-o', out]);
  assert.equal(r2.status, 2);
  assert.equal(existsSync(out), false);
});
