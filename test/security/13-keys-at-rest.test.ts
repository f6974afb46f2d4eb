/**
 * Issue 9, item 13: keys at rest. Each test plays the local attacker or the careless
 * setup it defends against: a master.key another account can read, a home others can
 * write to, files created with the umask's 0644, the master key left in the
 * environment for every child process, signed/encrypted files readable by all, a
 * PKCS#12 with an empty password, a private key exported in the clear by default.
 * And the new protections work end to end: a passphrase-protected master key (the
 * library, `init --master-pass`, `master-key protect` for an existing store, the
 * terminal prompt), a key handed over a file descriptor or as a systemd credential.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPrivateKey, randomBytes } from 'node:crypto';
import { TestPki } from '../helpers/pki.ts';
import { BIN, runCli, type CliResult } from '../cli/run-cli.ts';
import { createMasterKeyFile, loadMasterKey, masterKeyFromBytes } from '../../src/keys/master-key.ts';
import { openStore } from '../../src/store/open-store.ts';
import { exportPkcs12 } from '../../src/keys/export-pkcs12.ts';
import { exportPrivateKeyPem } from '../../src/keys/export-private-key-pem.ts';
import { signFile } from '../../src/cms/stream/sign-stream.ts';
import { encryptFile } from '../../src/cms/stream/encrypt-stream.ts';
import { isKakitomeError } from '../../src/errors.ts';

const root = mkdtempSync(join(tmpdir(), 'kakitome-at-rest-'));
const pki = new TestPki('Keys At Rest Root');
const alice = pki.identity('p256', 'alice');
after(() => {
  pki.cleanup();
  rmSync(root, { recursive: true, force: true });
});
const CHEAP = { name: 'argon2id', memoryKiB: 1024, passes: 1, parallelism: 1 } as const;
const modeOf = (p: string) => statSync(p).mode & 0o777;
let n = 0;
/** A fresh private home (0700) under the test root. */
const freshHome = () => {
  const h = join(root, `home-${++n}`);
  mkdirSync(h, { mode: 0o700 });
  return h;
};
/** The environment of a CLI user with this home and nothing inherited from the machine. */
const userEnv = (home: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: home, KAKITOME_HOME: home, ...extra };
  for (const k of ['KAKITOME_MASTER_KEY', 'KAKITOME_MASTER_KEY_FILE', 'KAKITOME_MASTER_KEY_FD', 'KAKITOME_DATABASE_URL', 'KAKITOME_MASTER_PASS_SPEC', 'CREDENTIALS_DIRECTORY']) if (!(k in extra)) delete env[k];
  return env;
};
const ok = (r: CliResult, what: string) => assert.equal(r.status, 0, `${what}: ${r.stderr}`);
const secretFile = (name: string, text: string) => {
  const p = join(root, name);
  writeFileSync(p, `${text}\n`, { mode: 0o600 });
  return p;
};

test('a master.key group or others can read is refused, as ssh refuses such a key; 0600 opens', async () => {
  const home = freshHome();
  const created = createMasterKeyFile(join(home, 'master.key'));
  assert.equal(modeOf(join(home, 'master.key')), 0o600);
  for (const loose of [0o644, 0o640, 0o604, 0o660]) {
    chmodSync(join(home, 'master.key'), loose);
    assert.throws(() => loadMasterKey({ env: {}, home }), (e) => isKakitomeError(e, 'KEY_INVALID') && /group or others/.test(e.message) && /chmod 600/.test(e.message), loose.toString(8));
    await assert.rejects(openStore({ home, env: {} }), (e) => isKakitomeError(e, 'KEY_INVALID'));
  }
  chmodSync(join(home, 'master.key'), 0o644);
  const cli = await runCli(['keys', 'list', '--json'], { env: userEnv(home) });
  assert.equal(cli.status, 2, cli.stderr);
  assert.match(cli.stderr, /chmod 600/);
  // Its own advice (the owner and mode), not the key file, certificate and passphrase of KEY_INVALID.
  assert.match(cli.stderr, /\n {2}Give the path to this user \(chown\) and close it/);
  assert.doesNotMatch(cli.stderr, /passphrase \(--pass\)/);
  chmodSync(join(home, 'master.key'), 0o600);
  assert.equal(loadMasterKey({ env: {}, home }).id, created.id);
});

test('a home (or key directory) that group or others can write to is refused', async () => {
  for (const loose of [0o777, 0o775, 0o1777]) {
    const home = freshHome();
    createMasterKeyFile(join(home, 'master.key'));
    chmodSync(home, loose);
    await assert.rejects(openStore({ home, env: {} }), (e) => isKakitomeError(e, 'KEY_INVALID') && /writable by group or others/.test(e.message), loose.toString(8));
    // With the key elsewhere, the database in that home is still refused.
    await assert.rejects(openStore({ home, env: {}, masterKey: masterKeyFromBytes(randomBytes(32)) }), (e) => isKakitomeError(e, 'KEY_INVALID'));
    if (loose === 0o777) {
      const cli = await runCli(['keys', 'list'], { env: userEnv(home) });
      assert.equal(cli.status, 2, cli.stderr);
      assert.match(cli.stderr, /KEY_INVALID: .*writable by group or others.*\n {2}Give the path to this user \(chown\)/);
      assert.doesNotMatch(cli.stderr, /passphrase/);
    }
    chmodSync(home, 0o700);
    await (await openStore({ home, env: {} })).close();
  }
});

test('the database, its WAL and a backup are created 0600 whatever the umask', async () => {
  const home = freshHome();
  const old = process.umask(0o022);
  try {
    const store = await openStore({ home, env: {}, masterKey: masterKeyFromBytes(randomBytes(32)) });
    await store.audit('test.write');
    for (const f of readdirSync(home).filter((f) => f.startsWith('kakitome.db'))) assert.equal(modeOf(join(home, f)), 0o600, f);
    assert.ok(existsSync(join(home, 'kakitome.db-wal')));
    await store.close();
    const { backupSqliteStore } = await import('../../src/store/backup-store.ts');
    await backupSqliteStore(join(home, 'kakitome.db'), join(home, 'backup.db'));
    assert.equal(modeOf(join(home, 'backup.db')), 0o600);
  } finally {
    process.umask(old);
  }
});

test('KAKITOME_MASTER_KEY is removed from the environment once read: child processes never see it', async () => {
  const home = freshHome();
  const raw = randomBytes(32).toString('base64');
  // In this process: openStore reads process.env and deletes the variable.
  process.env.KAKITOME_MASTER_KEY = raw;
  try {
    const store = await openStore({ home });
    await store.close();
    assert.equal(process.env.KAKITOME_MASTER_KEY, undefined);
  } finally {
    delete process.env.KAKITOME_MASTER_KEY;
  }
  // In a real program: what it starts after opening the store does not inherit it.
  const script = `import { openStore } from ${JSON.stringify(new URL('../../src/store/open-store.ts', import.meta.url).href)};
    import { execFileSync } from 'node:child_process';
    const s = await openStore({ home: process.argv[1] }); await s.close();
    process.stdout.write(execFileSync('env').toString());`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script, home], { env: userEnv(home, { KAKITOME_MASTER_KEY: raw }) }).toString();
  assert.doesNotMatch(out, /KAKITOME_MASTER_KEY/);
  assert.ok(!out.includes(raw));
  // And the CLI's batch workers still get the key (handed over, not inherited from the environment).
  const env = userEnv(home, { KAKITOME_MASTER_KEY: raw });
  ok(await runCli(['ca', 'init', '--name', 'Env Corp', '--key-type', 'p256'], { env }), 'ca init');
  ok(await runCli(['ca', 'issue', '--email', 'eve@example.com', '--key-type', 'p256'], { env }), 'ca issue');
  const inbox = join(root, 'batch-in');
  mkdirSync(inbox);
  for (const i of [1, 2]) writeFileSync(join(inbox, `${i}.eml`), `From: eve@example.com\r\nTo: bob@example.com\r\nSubject: ${i}\r\n\r\nbody ${i}\r\n`);
  ok(await runCli(['sign', '--jobs', '2', '-i', inbox, '-o', join(root, 'batch-out')], { env }), 'sign batch');
  assert.equal(readdirSync(join(root, 'batch-out')).length, 2);
});

test('signFile and encryptFile write their output 0600', async () => {
  const input = join(root, 'content.bin');
  writeFileSync(input, randomBytes(4096));
  const old = process.umask(0o022);
  try {
    await signFile(input, join(root, 'content.p7s'), { signers: [{ certificate: alice.cert, key: alice.key }] });
    await encryptFile(input, join(root, 'content.p7m'), { recipients: [{ certificate: alice.cert }] });
  } finally {
    process.umask(old);
  }
  assert.equal(modeOf(join(root, 'content.p7s')), 0o600);
  assert.equal(modeOf(join(root, 'content.p7m')), 0o600);
});

test('a passphrase-protected master key: round trip, wrong or missing passphrase, altered parameters, no partial file', () => {
  const home = freshHome();
  const file = join(home, 'master.key');
  const created = createMasterKeyFile(file, { passphrase: 'correct horse battery', kdf: CHEAP });
  assert.equal(modeOf(file), 0o600);
  assert.deepEqual(readdirSync(home), ['master.key'], 'no temporary file left');
  const text = readFileSync(file, 'latin1');
  assert.match(text, /^kakitome-master-key 2\n/);
  assert.ok(text.includes(`id ${created.id}`));
  assert.equal(loadMasterKey({ env: {}, file, passphrase: 'correct horse battery' }).id, created.id);
  assert.throws(() => loadMasterKey({ env: {}, file, passphrase: 'correct horse batterY' }), (e) => isKakitomeError(e, 'KEY_INVALID') && /wrong passphrase/.test(e.message) && !e.message.includes('batter'));
  assert.throws(() => loadMasterKey({ env: {}, file }), (e) => isKakitomeError(e, 'KEY_INVALID') && /protected by a passphrase/.test(e.message));
  // Weakening the stored parameters breaks the authentication; absurd ones are refused before any work.
  writeFileSync(file, text.replace('t=1', 't=2'), { mode: 0o600 });
  assert.throws(() => loadMasterKey({ env: {}, file, passphrase: 'correct horse battery' }), (e) => isKakitomeError(e, 'KEY_INVALID'));
  writeFileSync(file, text.replace('m=1024', 'm=99999999'), { mode: 0o600 });
  assert.throws(() => loadMasterKey({ env: {}, file, passphrase: 'correct horse battery' }), (e) => isKakitomeError(e, 'KEY_INVALID') && /out of range/.test(e.message));
  assert.throws(() => createMasterKeyFile(join(home, 'other.key'), { passphrase: '' }), (e) => isKakitomeError(e, 'INVALID_ARGUMENT'));
  assert.ok(!existsSync(join(home, 'other.key')));
});

test('the CLI: init --master-pass, a wrong passphrase, and moving an existing store to a passphrase', async () => {
  const pass = secretFile('master.pass', 'a long master passphrase');
  const wrong = secretFile('wrong.pass', 'not it');
  // A new store with a protected key.
  const home = freshHome();
  ok(await runCli(['init', '--master-pass', `file:${pass}`], { env: userEnv(home) }), 'init');
  assert.match(readFileSync(join(home, 'master.key'), 'latin1'), /^kakitome-master-key 2\nid [0-9a-f]{16}\nkdf argon2id m=65536 t=3 p=4\n/);
  ok(await runCli(['keys', 'list'], { env: userEnv(home, { KAKITOME_MASTER_PASS_SPEC: `file:${pass}` }) }), 'keys list');
  const bad = await runCli(['keys', 'list'], { env: userEnv(home, { KAKITOME_MASTER_PASS_SPEC: `file:${wrong}` }) });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /KEY_INVALID|wrong passphrase/);
  // An existing store with a plain key: protect it; the key (and so the store) is unchanged.
  const old = freshHome();
  ok(await runCli(['init'], { env: userEnv(old) }), 'init plain');
  ok(await runCli(['ca', 'init', '--name', 'Old Corp', '--key-type', 'p256'], { env: userEnv(old) }), 'ca init');
  const id = loadMasterKey({ env: {}, home: old }).id;
  ok(await runCli(['master-key', 'protect', '--new-pass', `file:${pass}`], { env: userEnv(old) }), 'protect');
  assert.match(readFileSync(join(old, 'master.key'), 'latin1'), new RegExp(`^kakitome-master-key 2\\nid ${id}\\n`));
  assert.equal(modeOf(join(old, 'master.key')), 0o600);
  assert.deepEqual(readdirSync(old).filter((f) => f.includes('master')), ['master.key']);
  const listed = await runCli(['keys', 'list', '--json'], { env: userEnv(old, { KAKITOME_MASTER_PASS_SPEC: `file:${pass}` }) });
  ok(listed, 'keys list after protect');
  assert.equal(JSON.parse(listed.stdout.toString()).keys.length, 4);
  assert.equal((await runCli(['keys', 'list'], { env: userEnv(old) })).status, 2, 'no terminal, no passphrase source: refused');
});

/** Runs the CLI on a pseudo-terminal (util-linux `script`), typing `answer` when the prompt appears. */
function runOnTerminal(args: string[], env: NodeJS.ProcessEnv, answer: string): Promise<{ status: number | null; output: string; prompted: boolean }> {
  const cmd = [process.execPath, BIN, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const child = spawn('script', ['-qec', cmd, '/dev/null'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  let typed = false;
  child.stdout.on('data', (d: Buffer) => {
    output += d.toString();
    if (!typed && /passphrase: $/.test(output)) {
      typed = true;
      child.stdin.write(`${answer}\r`);
    }
  });
  return new Promise((resolve) => child.on('close', (status) => resolve({ status, output, prompted: typed })));
}

test('the passphrase typed at the terminal prompt is not echoed', async () => {
  const home = freshHome();
  createMasterKeyFile(join(home, 'master.key'), { passphrase: 'typed at the prompt', kdf: CHEAP });
  const r = await runOnTerminal(['keys', 'list', '--json'], userEnv(home), 'typed at the prompt');
  assert.ok(r.prompted, `asked for the passphrase: ${r.output}`);
  assert.match(r.output, /Kakitome master key passphrase: /);
  assert.equal(r.status, 0, r.output);
  assert.match(r.output, /"keys": \[\]/);
  assert.ok(!r.output.includes('typed at the prompt'), 'no echo');
});

test('the master key from a file descriptor, or from systemd credentials', async () => {
  const raw = randomBytes(32);
  const home = freshHome();
  const store = await openStore({ home, env: {}, masterKey: masterKeyFromBytes(raw) });
  await store.close();
  // KAKITOME_MASTER_KEY_FD=3: nothing in the environment, nothing on disk.
  const child = spawn(process.execPath, [BIN, 'keys', 'list', '--json'], { env: userEnv(home, { KAKITOME_MASTER_KEY_FD: '3' }), stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
  (child.stdio[3] as NodeJS.WritableStream).end(`${raw.toString('base64')}\n`);
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  assert.equal(await new Promise((r) => child.on('close', r)), 0, err);
  // $CREDENTIALS_DIRECTORY/kakitome-master-key, as systemd's LoadCredential= provides it.
  const creds = join(root, 'credentials');
  mkdirSync(creds, { mode: 0o700 });
  writeFileSync(join(creds, 'kakitome-master-key'), raw.toString('base64'), { mode: 0o400 });
  ok(await runCli(['keys', 'list'], { env: userEnv(home, { CREDENTIALS_DIRECTORY: creds }) }), 'systemd credential');
  assert.equal((await runCli(['keys', 'list'], { env: userEnv(home) })).status, 2, 'and without either, no key');
});

test('an empty PKCS#12 export password and an unencrypted PEM export without --unencrypted are refused', async () => {
  assert.throws(() => exportPkcs12({ key: alice.key, certificate: alice.cert, password: '', iterations: 2048 }), (e) => isKakitomeError(e, 'INVALID_ARGUMENT'));
  assert.throws(() => exportPrivateKeyPem(alice.key, { passphrase: '' }), (e) => isKakitomeError(e, 'INVALID_ARGUMENT'));
  const home = freshHome();
  const env = userEnv(home);
  ok(await runCli(['init'], { env }), 'init');
  ok(await runCli(['keys', 'import', '--key', alice.keyPath, '--cert', alice.certPath], { env }), 'import');
  const keyId = JSON.parse((await runCli(['keys', 'list', '--json'], { env })).stdout.toString()).keys[0].id;
  const empty = secretFile('empty.pass', '');
  const pass = secretFile('export.pass', 'export passphrase');
  const out = (name: string) => join(root, name);

  const p12 = await runCli(['keys', 'export', '--id', keyId, '--reason', 't', '--pass', `file:${empty}`, '-o', out('empty.p12')], { env });
  assert.equal(p12.status, 2, p12.stderr);
  assert.match(p12.stderr, /empty/);
  assert.ok(!existsSync(out('empty.p12')));

  const clear = await runCli(['keys', 'export', '--id', keyId, '--reason', 't', '--format', 'pem', '-o', out('clear.pem')], { env });
  assert.equal(clear.status, 2, clear.stderr);
  assert.match(clear.stderr, /--unencrypted/);
  assert.ok(!existsSync(out('clear.pem')));

  ok(await runCli(['keys', 'export', '--id', keyId, '--reason', 't', '--format', 'pem', '--pass', `file:${pass}`, '-o', out('enc.pem')], { env }), 'encrypted pem');
  const enc = readFileSync(out('enc.pem'), 'latin1');
  assert.match(enc, /^-----BEGIN ENCRYPTED PRIVATE KEY-----/);
  assert.equal(modeOf(out('enc.pem')), 0o600);
  // A real peer opens it with the passphrase.
  const opened = execFileSync('openssl', ['pkey', '-in', out('enc.pem'), '-passin', `file:${pass}`]).toString();
  assert.deepEqual(createPrivateKey(opened).export({ format: 'der', type: 'pkcs8' }), alice.key.export({ format: 'der', type: 'pkcs8' }));

  ok(await runCli(['keys', 'export', '--id', keyId, '--reason', 't', '--format', 'pem', '--unencrypted', '-o', out('plain.pem')], { env }), 'explicitly unencrypted');
  assert.match(readFileSync(out('plain.pem'), 'latin1'), /^-----BEGIN PRIVATE KEY-----/);
});
