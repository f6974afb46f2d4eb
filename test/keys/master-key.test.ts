import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes, generateKeyPairSync } from 'node:crypto';
import { loadMasterKey, createMasterKeyFile, masterKeyFromBytes } from '../../src/keys/master-key.ts';
import { sealPrivateKey, openSealedPrivateKey, rewrapSealedPrivateKey } from '../../src/keys/seal-private-key.ts';
import { isKakitomeError } from '../../src/errors.ts';

test('master key from the environment (hex or base64), a key file, or KAKITOME_HOME/master.key', () => {
  const raw = randomBytes(32);
  assert.equal(loadMasterKey({ env: { KAKITOME_MASTER_KEY: raw.toString('hex') } }).id, masterKeyFromBytes(raw).id);
  assert.equal(loadMasterKey({ env: { KAKITOME_MASTER_KEY: raw.toString('base64') } }).id, masterKeyFromBytes(raw).id);
  const home = mkdtempSync(join(tmpdir(), 'kakitome-mk-'));
  try {
    assert.throws(() => loadMasterKey({ env: { KAKITOME_HOME: home } }), (e) => isKakitomeError(e, 'KEY_INVALID') && e.message.includes('master.key'));
    const created = createMasterKeyFile(join(home, 'master.key'));
    assert.equal(statSync(join(home, 'master.key')).mode & 0o777, 0o600);
    assert.equal(loadMasterKey({ env: { KAKITOME_HOME: home } }).id, created.id);
    assert.throws(() => createMasterKeyFile(join(home, 'master.key')), (e) => isKakitomeError(e, 'INVALID_ARGUMENT'));
    assert.ok(!readFileSync(join(home, 'master.key'), 'latin1').includes(created.id));
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
  assert.throws(() => loadMasterKey({ env: { KAKITOME_MASTER_KEY: 'short' } }), (e) => isKakitomeError(e, 'KEY_INVALID') && !e.message.includes('short'));
});

test('sealed keys open only with the right master key and record id; rewrap rotates the master key', () => {
  const a = masterKeyFromBytes(randomBytes(32));
  const b = masterKeyFromBytes(randomBytes(32));
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const sealed = sealPrivateKey(a, 'rec-1', privateKey);
  assert.deepEqual(openSealedPrivateKey(a, 'rec-1', sealed).export({ format: 'der', type: 'pkcs8' }), privateKey.export({ format: 'der', type: 'pkcs8' }));
  assert.throws(() => openSealedPrivateKey(b, 'rec-1', sealed), (e) => isKakitomeError(e, 'KEY_INVALID'));
  assert.throws(() => openSealedPrivateKey(a, 'rec-2', sealed), (e) => isKakitomeError(e, 'KEY_INVALID'));
  const flipped = Buffer.from(sealed);
  flipped[flipped.length - 1]! ^= 1;
  assert.throws(() => openSealedPrivateKey(a, 'rec-1', flipped), (e) => isKakitomeError(e, 'KEY_INVALID'));
  const rotated = rewrapSealedPrivateKey(a, b, 'rec-1', sealed);
  assert.equal(openSealedPrivateKey(b, 'rec-1', rotated).asymmetricKeyType, 'ec');
  assert.throws(() => openSealedPrivateKey(a, 'rec-1', rotated), (e) => isKakitomeError(e, 'KEY_INVALID'));
});
