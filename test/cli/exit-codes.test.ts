import { test } from 'node:test';
import assert from 'node:assert/strict';
import { exitCodeForError, exitCodeForVerdict, worstExitCode } from '../../src/cli/exit-codes.ts';
import { DecryptionError, KakitomeError } from '../../src/errors.ts';

test('thrown errors: input/usage codes exit 2, verdict codes exit 1, file errors 2, bugs 3', () => {
  for (const code of ['MALFORMED', 'LIMIT', 'INVALID_ARGUMENT', 'KEY_INVALID'] as const) assert.equal(exitCodeForError(new KakitomeError(code, 'x')), 2, code);
  for (const code of ['BAD_SIG', 'CERT_UNTRUSTED', 'NOT_RECIPIENT', 'UNSUPPORTED_ALG', 'WEAK_ALG'] as const) assert.equal(exitCodeForError(new KakitomeError(code, 'x')), 1, code);
  assert.equal(exitCodeForError(new DecryptionError()), 1);
  const enoent = Object.assign(new Error('ENOENT: no such file'), { code: 'ENOENT', syscall: 'open', path: '/x' });
  assert.equal(exitCodeForError(enoent), 2);
  assert.equal(exitCodeForError(new TypeError('bug')), 3);
});

test('verdicts: only trusted is success; a malformed verdict is 2', () => {
  assert.equal(exitCodeForVerdict({ status: 'trusted', code: undefined }), 0);
  for (const status of ['valid-untrusted', 'invalid', 'partial', 'unsigned']) assert.equal(exitCodeForVerdict({ status, code: 'CERT_UNTRUSTED' }), 1);
  assert.equal(exitCodeForVerdict({ status: 'invalid', code: 'MALFORMED' }), 2);
  assert.equal(worstExitCode([0, 1, 0]), 1);
  assert.equal(worstExitCode([0, 2, 1]), 2);
  assert.equal(worstExitCode([]), 0);
});
