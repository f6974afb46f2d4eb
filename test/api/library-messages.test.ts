/**
 * The library's messages are shown by every front end: the API's problem details,
 * the console's pages, the gateway's replies and log. So they say what is wrong and
 * what to do in the library's terms (an option by its name in the library, e.g.
 * `allowLegacy`), never as a command-line flag (`--allow-legacy`), which means
 * nothing to an API client or a console user; the CLI adds its flag where it maps
 * the error (KakitomeError.remedy, src/cli/describe-error.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { KakitomeError } from '../../src/errors.ts';
import { describeError } from '../../src/cli/describe-error.ts';
import { loadPrivateKey } from '../../src/keys/private-key.ts';
import { generateKeyPairSync } from 'node:crypto';

const LIBRARY = ['asn1', 'x509', 'cms', 'mime', 'smime', 'pki', 'keys', 'store', 'ca', 'operations', 'policy', 'dkim', 'smtp', 'threads'];
const src = new URL('../../src/', import.meta.url).pathname;

function* sourceFiles(dir: string): Generator<string> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) yield* sourceFiles(join(dir, e.name));
    else if (e.name.endsWith('.ts')) yield join(dir, e.name);
  }
}

test('no library message names a command-line flag', () => {
  const found: string[] = [];
  for (const folder of LIBRARY) {
    for (const file of sourceFiles(join(src, folder))) {
      readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
        if (/^\s*(\/\/|\*|\/\*)/.test(line)) return;
        // A message: an error, a verdict's or a finding's sentence, a warning.
        if (!/KakitomeError\(|malformed\(|fail\(|message: |warnings\.push\(|help: /.test(line)) return;
        if (/['"`(\s]--[a-z][a-z-]+/.test(line)) found.push(`${file.slice(src.length)}:${i + 1}: ${line.trim().slice(0, 160)}`);
      });
    }
  }
  assert.deepEqual(found, []);
});

test('the CLI names its own flag for a remedy the library names in its terms', () => {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const encrypted = privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'secret' });
  let error: unknown;
  try {
    loadPrivateKey(encrypted);
  } catch (e) {
    error = e;
  }
  assert.ok(error instanceof KakitomeError && error.code === 'KEY_INVALID' && error.remedy === 'passphrase');
  assert.equal((error as Error).message, 'The private key is encrypted: give its passphrase.');
  assert.equal(describeError('sign', error), 'kakitome sign: KEY_INVALID: The private key is encrypted: give its passphrase.\n  Give the passphrase with --pass pass:TEXT, env:VAR or file:PATH.');
  // Without a remedy, the code's advice as before.
  assert.equal(describeError('sign', new KakitomeError('KEY_INVALID', 'x')), 'kakitome sign: KEY_INVALID: x\n  Check the key file, that it matches the certificate, and the passphrase (--pass).');
});
