/**
 * The library's messages are shown by every front end: the API's problem details,
 * the console's pages, the gateway's replies and log. So they say what is wrong and
 * what to do in the library's terms (an option by its name in the library, e.g.
 * `allowLegacy`), never as a command-line flag (`--allow-legacy`), which means
 * nothing to an API client or a console user; the CLI adds its flag where it maps
 * the error (KakitomeError.remedy, src/cli/describe-error.ts). Nor does it name a
 * command of the CLI (`kakitome ca init`): it names the action ("initialise the
 * internal CA"), and the CLI prints its command for the remedy.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { KakitomeError } from '../../src/errors.ts';
import { describeError } from '../../src/cli/describe-error.ts';
import { loadPrivateKey } from '../../src/keys/private-key.ts';
import { Store } from '../../src/store/store.ts';
import { HeldMessages } from '../../src/store/held-messages.ts';
import { findUnknownRoot } from '../../src/store/list-unknown-roots.ts';
import { DkimKeyDirectory } from '../../src/store/dkim-key-directory.ts';
import { prepareTrustedEncryption } from '../../src/operations/encrypt-to-trusted-recipients.ts';
import { startOcspResponder } from '../../src/ca/ocsp-responder.ts';
import { readMasterKeyText } from '../../src/keys/master-key.ts';
import { openSqliteEngine } from '../../src/store/sqlite-engine.ts';
import { storeTrustOptions } from '../../src/operations/trust-options.ts';
import { generateKeyPairSync } from 'node:crypto';

const LIBRARY = ['asn1', 'x509', 'cms', 'mime', 'smime', 'pki', 'keys', 'store', 'ca', 'operations', 'policy', 'dkim', 'smtp', 'threads'];
const src = new URL('../../src/', import.meta.url).pathname;

function* sourceFiles(dir: string): Generator<string> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) yield* sourceFiles(join(dir, e.name));
    else if (e.name.endsWith('.ts')) yield join(dir, e.name);
  }
}

/** The library's code lines (comments left out) that `offends`, as FILE:LINE: TEXT. */
function libraryLinesWhere(offends: (line: string) => boolean): string[] {
  const found: string[] = [];
  for (const folder of LIBRARY) {
    for (const file of sourceFiles(join(src, folder))) {
      readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
        if (!/^\s*(\/\/|\*|\/\*)/.test(line) && offends(line)) found.push(`${file.slice(src.length)}:${i + 1}: ${line.trim().slice(0, 160)}`);
      });
    }
  }
  return found;
}

test('no library message names a command-line flag', () => {
  // A message: an error, a verdict's or a finding's sentence, a warning.
  const found = libraryLinesWhere((line) => /KakitomeError\(|malformed\(|fail\(|message: |warnings\.push\(|help: /.test(line) && /['"`(\s]--[a-z][a-z-]+/.test(line));
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
  assert.equal(describeError('sign', error), 'kakitome sign: KEY_INVALID: The private key is encrypted: give its passphrase.\n  Give the passphrase with --pass prompt, env:VAR, file:PATH or fd:N.');
  // Without a remedy, the code's advice as before.
  assert.equal(describeError('sign', new KakitomeError('KEY_INVALID', 'x')), 'kakitome sign: KEY_INVALID: x\n  Check the key file, that it matches the certificate, and the passphrase (--pass).');
});

/** String literals of a line that are not part of a comment (a rough cut: enough for messages). */
const literals = (line: string) => line.match(/'(?:[^'\\]|\\.)*'|`(?:[^`\\]|\\.)*`|"(?:[^"\\]|\\.)*"/g) ?? [];

test('no library message names a command of the CLI', () => {
  // Any string: messages span lines (a throw's message on the line below it).
  // Not a message: the labels a sealed key and the master key id are bound to.
  const found = libraryLinesWhere((line) => literals(line).some((l) => /kakitome [a-z]/.test(l) && !/kakitome (\$\{purpose\} v1|master key id)/.test(l)));
  assert.deepEqual(found, []);
});

/** The error `run` throws. */
async function thrown(run: () => unknown): Promise<KakitomeError> {
  try {
    await run();
  } catch (e) {
    assert.ok(e instanceof KakitomeError, String(e));
    return e;
  }
  assert.fail('nothing thrown');
}

test('library errors name the action; the CLI prints the command for it', async () => {
  const store = await Store.open(openSqliteEngine(':memory:'), { actor: 'test' });
  try {
    const cases: Array<[KakitomeError, RegExp]> = [
      [await thrown(() => prepareTrustedEncryption(store, { certificates: [], addresses: ['dave@example.com'], oaep: false, trust: storeTrustOptions('off') })), /kakitome certs import FILE/],
      [await thrown(() => startOcspResponder(store)), /kakitome ca init/],
      [await thrown(() => findUnknownRoot(store, 'ab'.repeat(32))), /kakitome certs roots/],
      [await thrown(() => new DkimKeyDirectory(store).retireKey('example.com', 'nope')), /kakitome dkim list/],
      [await thrown(() => new HeldMessages(store).find('not-an-id')), /kakitome gateway held list/],
      [await thrown(() => readMasterKeyText({ home: '/nonexistent-kakitome-home', env: {} })), /kakitome init/],
    ];
    for (const [error, command] of cases) {
      assert.ok(!error.message.includes('kakitome '), `${error.code}: ${error.message}`);
      assert.ok(error.remedy, `${error.code}: ${error.message} names its remedy`);
      const printed = describeError('x', error).split('\n')[1]!;
      assert.match(printed, command, printed);
    }
  } finally {
    await store.close();
  }
});
