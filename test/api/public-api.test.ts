/**
 * The package's entry point (src/index.ts, compiled to dist/index.js) loads and
 * exposes the operations the docs name: a renamed or dropped export fails here
 * rather than in a user's build.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as kakitome from '../../src/index.ts';

const OPERATIONS = [
  'signMessage', 'verifyMessage', 'encryptMessage', 'decryptMessage', 'decryptAttachedMessages', 'inspectMessage',
  'signMessageStream', 'verifyMessageStream', 'encryptMessageStream', 'decryptMessageStream',
  'signStream', 'verifyStream', 'encryptStream', 'decryptStream', 'signFile', 'verifyFile', 'encryptFile', 'decryptFile', 'readFileChunks',
  'createSignerValidator', 'parseCertificate', 'loadPrivateKey',
];

test('the entry point exports every documented operation as a function', () => {
  const api = kakitome as Record<string, unknown>;
  for (const name of OPERATIONS) assert.equal(typeof api[name], 'function', name);
});
