import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolvePassSpec } from '../../src/cli/pass-spec.ts';
import { isKakitomeError } from '../../src/errors.ts';

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
