import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolvePassSpec } from '../../src/cli/pass-spec.ts';
import { isKakitomeError } from '../../src/errors.ts';
import { BIN, runCli } from './run-cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'kakitome-pass-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

test('pass:TEXT gives the text, colons included', async () => {
  assert.equal(await resolvePassSpec('pass:s3cret:with:colons'), 's3cret:with:colons');
  assert.equal(await resolvePassSpec('pass:'), '');
});

test('env:VAR reads the variable; a missing one is INVALID_ARGUMENT naming it', async () => {
  assert.equal(await resolvePassSpec('env:KK_PASS', { env: { KK_PASS: 'from-env' } }), 'from-env');
  await assert.rejects(resolvePassSpec('env:KK_MISSING', { env: {} }), (e) => isKakitomeError(e, 'INVALID_ARGUMENT') && /KK_MISSING/.test(e.message));
  await assert.rejects(resolvePassSpec('env:', { env: {} }), (e) => isKakitomeError(e, 'INVALID_ARGUMENT'));
});

test('file:PATH reads the first line only, without CR/LF (as openssl)', async () => {
  const p = join(dir, 'pw');
  writeFileSync(p, 'first line\r\nsecond line\n');
  assert.equal(await resolvePassSpec(`file:${p}`), 'first line');
  writeFileSync(p, 'no newline');
  assert.equal(await resolvePassSpec(`file:${p}`), 'no newline');
  await assert.rejects(resolvePassSpec(`file:${join(dir, 'absent')}`), (e) => isKakitomeError(e, 'INVALID_ARGUMENT') && /ENOENT/.test(e.message));
});

test('unknown forms are refused without echoing the argument (it may be the passphrase)', async () => {
  for (const spec of ['hunter2', 'pass', 'stdin:x', 'fd:abc', 'ftp:x']) {
    await assert.rejects(resolvePassSpec(spec), (e) => isKakitomeError(e, 'INVALID_ARGUMENT') && !e.message.includes('hunter2') && !e.message.includes('ftp:x'));
  }
});

test('stdin and fd:0 are refused when standard input carries the message', async () => {
  await assert.rejects(resolvePassSpec('stdin', { stdinInUse: true }), (e) => isKakitomeError(e, 'INVALID_ARGUMENT'));
  await assert.rejects(resolvePassSpec('fd:0', { stdinInUse: true }), (e) => isKakitomeError(e, 'INVALID_ARGUMENT'));
});

test('pass:TEXT warns on a terminal (util-linux script gives one) that every local user can read it, and stays silent on a pipe', { skip: spawnSync('sh', ['-c', 'command -v script']).status !== 0 && 'needs util-linux script for a terminal' }, async () => {
  const secret = 'correct-horse-battery-staple';
  const envFor = (name: string): NodeJS.ProcessEnv => ({ ...process.env, KAKITOME_HOME: join(dir, name), KAKITOME_MASTER_KEY: '', KAKITOME_DATABASE_URL: '' });
  const cmd = [process.execPath, BIN, 'init', '--master-pass', `pass:${secret}`].map((a) => `'${a}'`).join(' ');
  const tty = spawnSync('script', ['-qec', cmd, '/dev/null'], { env: envFor('tty-home'), encoding: 'utf8' });
  assert.equal(tty.status, 0, tty.stdout + tty.stderr);
  assert.match(tty.stdout, /kakitome: warning: pass:TEXT puts the passphrase on the command line, where every user of this machine can read it \(ps, \/proc\) while the command runs; use env:VAR, file:PATH, fd:N or prompt\./);
  assert.equal(tty.stdout.split('warning: pass:TEXT').length, 2, 'once');
  assert.ok(!tty.stdout.includes(secret), 'the warning does not repeat the passphrase');
  const piped = await runCli(['init', '--master-pass', `pass:${secret}`], { env: envFor('piped-home') });
  assert.equal(piped.status, 0, piped.stderr);
  assert.equal(piped.stderr, '');
});
