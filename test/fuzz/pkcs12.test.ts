/**
 * Mutation fuzzing of importPkcs12 (modern PBES2, legacy 3DES/SHA-1 files, and
 * OpenSSL's -legacy files with RC2-40 certificates, whose decryption goes to the
 * legacy-provider child only when a mutant still passes the MAC).
 * Oracle: typed errors only. A damaged iteration count is bounded by
 * MAX_PKCS12_ITERATIONS (2,000,000), so a single case can cost up to about half
 * a second: the default count is kept small.
 */
import { test, after } from 'node:test';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { TestPki } from '../helpers/pki.ts';
import { exportPkcs12 } from '../../src/keys/export-pkcs12.ts';
import { importPkcs12 } from '../../src/keys/import-pkcs12.ts';
import { fuzz, iterations, seed, timeoutFor, REPLAYING } from './fuzz-kit.ts';

const pki = new TestPki('Kakitome Fuzz PKCS12 Root');
after(() => pki.cleanup());
const id = pki.identity('p256');
const seeds = [
  seed('modern', exportPkcs12({ key: id.key, certificate: id.cert, chain: [pki.caCert], password: 'pw', iterations: 1000 })),
  seed('legacy', exportPkcs12({ key: id.key, certificate: id.cert, password: 'pw', profile: 'legacy', iterations: 1000 })),
  seed('openssl-legacy-rc2', opensslLegacy()),
];

function opensslLegacy(): Buffer {
  const out = join(pki.dir, 'fuzz-legacy.p12');
  execFileSync('openssl', ['pkcs12', '-export', '-legacy', '-iter', '1000', '-in', id.certPath, '-inkey', id.keyPath, '-out', out, '-passout', 'pass:pw'], { stdio: 'pipe' });
  return readFileSync(out);
}

test('importPkcs12 fails only with typed errors', { timeout: timeoutFor(400, 600) }, async () => {
  const outcomes = await fuzz('pkcs12', seeds, iterations(400), (m) => importPkcs12(m.bytes, 'pw'));
  assert.ok(REPLAYING || (outcomes.get('MALFORMED') ?? 0) > 0 && (outcomes.get('ok') ?? 0) > 0, `explores: ${[...outcomes]}`);
});
