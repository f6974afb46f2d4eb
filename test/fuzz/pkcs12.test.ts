/**
 * Mutation fuzzing of importPkcs12 (modern PBES2 and legacy 3DES/SHA-1 files).
 * Oracle: typed errors only. A damaged iteration count is bounded by
 * MAX_PKCS12_ITERATIONS (2,000,000), so a single case can cost up to about half
 * a second: the default count is kept small.
 */
import { test, after } from 'node:test';
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
];

test('importPkcs12 fails only with typed errors', { timeout: timeoutFor(400, 600) }, async () => {
  const outcomes = await fuzz('pkcs12', seeds, iterations(400), (m) => importPkcs12(m.bytes, 'pw'));
  assert.ok(REPLAYING || (outcomes.get('MALFORMED') ?? 0) > 0 && (outcomes.get('ok') ?? 0) > 0, `explores: ${[...outcomes]}`);
});
