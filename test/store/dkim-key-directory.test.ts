/**
 * DKIM keys in the store, on both engines: sealed at rest under the master key
 * (never as PKCS#8 in the clear, never opening as another record's key), one active
 * key per domain and type, a selector used once ever, rotation and retirement,
 * every use audited before the key is handed out, and a master-key rotation that
 * re-wraps DKIM keys with the rest. Then the `kakitome dkim` commands.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { engineFactories } from './engine-factories.ts';
import { Store, dkimRecordId } from '../../src/store/store.ts';
import { DkimKeyDirectory } from '../../src/store/dkim-key-directory.ts';
import { masterKeyFromBytes } from '../../src/keys/master-key.ts';
import { openSealedPrivateKey } from '../../src/keys/seal-private-key.ts';
import { dkimPublicKeyData } from '../../src/dkim/dkim-key.ts';
import { isKakitomeError } from '../../src/errors.ts';
import { runCli } from '../cli/run-cli.ts';

const master = masterKeyFromBytes(randomBytes(32));

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    assert.ok(isKakitomeError(e), String(e));
    return e.code;
  }
  assert.fail('expected a failure');
}

for (const f of engineFactories('kakitome-dkim-')) {
  describe(`DKIM keys on ${f.name}`, () => {
    let store: Store;
    let dkim: DkimKeyDirectory;
    before(async () => {
      await f.setup();
      store = await Store.open(f.make(), { masterKey: master, actor: 'tester' });
      dkim = new DkimKeyDirectory(store);
    });
    after(async () => {
      await store.close();
      await f.teardown();
    });

    test('a new key is sealed at rest and its record publishes its public key', async () => {
      const k = await dkim.addKey('Example.COM.', '2026A', { algorithm: 'rsa-2048' });
      assert.equal(k.domain, 'example.com');
      assert.equal(k.selector, '2026a');
      assert.equal(k.status, 'active', 'the domain\'s first RSA key is active');
      assert.equal(k.dns.name, '2026a._domainkey.example.com');
      assert.match(k.dns.value, /^v=DKIM1; k=rsa; p=MIIBIjAN/);
      const row = (await store.engine.all('SELECT * FROM dkim_keys WHERE id = ?', [k.id]))[0]!;
      const sealed = Buffer.from(row.sealed as Uint8Array);
      const opened = openSealedPrivateKey(master, dkimRecordId(k.id), sealed);
      assert.equal(k.dns.value, `v=DKIM1; k=rsa; p=${dkimPublicKeyData(createPublicKey(opened))}`);
      assert.ok(!sealed.includes(opened.export({ format: 'der', type: 'pkcs8' }).subarray(30, 60)), 'no key material in the clear');
      assert.throws(() => openSealedPrivateKey(master, k.id, sealed), /could not be opened/, 'the blob does not open as an S/MIME key record');
      assert.throws(() => openSealedPrivateKey(masterKeyFromBytes(randomBytes(32)), dkimRecordId(k.id), sealed), /could not be opened/);
    });

    test('one active key per type; a later one is pending until rotated in; selectors are never reused', async () => {
      const ed = await dkim.addKey('example.com', 'ed1', { algorithm: 'ed25519' });
      assert.equal(ed.status, 'active', 'Ed25519 beside RSA');
      assert.match(ed.dns.value, /^v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]{43}=$/);
      const next = await dkim.addKey('example.com', '2026b', { algorithm: 'rsa-2048' });
      assert.equal(next.status, 'pending');
      assert.deepEqual((await dkim.signingKeys('example.com')).map((k) => k.selector), ['2026a', 'ed1'], 'RSA first, then Ed25519; pending does not sign');
      assert.equal(await code(dkim.addKey('example.com', '2026B', { algorithm: 'ed25519' })), 'INVALID_ARGUMENT', 'a used selector');
      const { activated, retired } = await dkim.activateKey('example.com', '2026b');
      assert.equal(activated.status, 'active');
      assert.deepEqual(retired.map((r) => [r.selector, r.status]), [['2026a', 'retired']]);
      assert.deepEqual((await dkim.signingKeys('example.com')).map((k) => k.selector), ['2026b', 'ed1']);
      assert.equal(await code(dkim.activateKey('example.com', '2026a')), 'INVALID_ARGUMENT', 'a retired key never signs again');
      assert.equal((await dkim.retireKey('example.com', 'ed1')).status, 'retired');
      assert.deepEqual((await dkim.signingKeys('example.com')).map((k) => k.selector), ['2026b']);
      assert.equal(await code(dkim.retireKey('example.com', 'nope')), 'NOT_FOUND');
      assert.deepEqual(await dkim.signingKeys('other.example'), []);
      assert.deepEqual((await dkim.listKeys('example.com')).map((k) => k.status).sort(), ['active', 'retired', 'retired']);
    });

    test('imported keys: RSA 2048-4096 and Ed25519; weak or unsuitable ones refused', async () => {
      const rsa3072 = generateKeyPairSync('rsa', { modulusLength: 3072 }).privateKey;
      const k = await dkim.addKey('example.org', 'old', { key: rsa3072, source: 'opendkim.private' });
      assert.equal(k.bits, 3072);
      assert.equal(k.source, 'opendkim.private');
      assert.equal(await code(dkim.addKey('example.org', 'weak', { key: generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey, source: 'x' })), 'KEY_INVALID');
      assert.equal(await code(dkim.addKey('example.org', 'ec', { key: generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey, source: 'x' })), 'KEY_INVALID');
      assert.equal(await code(dkim.addKey('example.org', 'pub', { key: createPublicKey(rsa3072), source: 'x' })), 'KEY_INVALID');
      assert.equal(await code(dkim.addKey('not a domain', 's', { algorithm: 'ed25519' })), 'INVALID_ARGUMENT');
      assert.equal(await code(dkim.addKey('example.org', '-bad-', { algorithm: 'ed25519' })), 'INVALID_ARGUMENT');
    });

    test('each use is audited before the key is handed out; a master-key rotation re-wraps DKIM keys', async () => {
      const [used] = await dkim.signingKeys('example.org');
      await store.close();
      store = await Store.open(f.make(), { masterKey: master, actor: 'tester' });
      const uses = (await store.auditLog({ limit: 50 })).filter((e) => e.action === 'key.use.dkim');
      assert.ok(uses.some((e) => e.detail === 'old._domainkey.example.org'), 'the use is on record');
      const next = masterKeyFromBytes(randomBytes(32));
      const rotated = await store.rotateMasterKey(next);
      const again = await new DkimKeyDirectory(rotated).signingKeys('example.org');
      assert.ok(createPublicKey(again[0]!.key).export({ format: 'der', type: 'spki' }).equals(createPublicKey(used!.key).export({ format: 'der', type: 'spki' })));
      store = rotated;
      dkim = new DkimKeyDirectory(store);
      assert.equal(await code(Store.open(f.make(), { masterKey: master })), 'KEY_INVALID', 'the old master key no longer opens the store');
    });
  });
}

test('kakitome dkim: add prints the record, import a PEM key, list, record, rotate, retire', async () => {
  const home = mkdtempSync(join(tmpdir(), 'kakitome-dkim-cli-'));
  try {
    const env = { ...process.env, KAKITOME_HOME: home, KAKITOME_MASTER_KEY: '', KAKITOME_DATABASE_URL: '' };
    const kk = async (...args: string[]) => {
      const r = await runCli(args, { env });
      return { status: r.status, out: r.stdout.toString(), stderr: r.stderr };
    };
    assert.equal((await kk('init')).status, 0);
    const add = await kk('dkim', 'add', 'example.com', '--selector', 's1');
    assert.equal(add.status, 0, add.stderr);
    assert.match(add.out, /s1\._domainkey\.example\.com\. IN TXT \( "v=DKIM1; k=rsa; p=[^"]{200,}" "[^"]+" \)/, 'a zone line with strings of at most 255 bytes');
    const pem = join(home, 'ed.pem');
    writeFileSync(pem, generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }));
    const imp = await kk('dkim', 'import', 'example.com', '--selector', 'e1', '--key', pem, '--json');
    assert.equal(imp.status, 0, imp.stderr);
    assert.equal(JSON.parse(imp.out).key.status, 'active');
    const pending = JSON.parse((await kk('dkim', 'add', 'example.com', '--selector', 's2', '--json')).out).key;
    assert.equal(pending.status, 'pending');
    assert.equal((await kk('dkim', 'add', 'example.com', '--selector', 's2')).status, 2, 'selector reused');
    const record = await kk('dkim', 'record', 'example.com', '--selector', 's2', '--json');
    assert.deepEqual(JSON.parse(record.out).key.dns, pending.dns);
    assert.equal((await kk('dkim', 'rotate', 'example.com', '--selector', 's2')).status, 0);
    assert.equal((await kk('dkim', 'retire', 'example.com', '--selector', 'e1')).status, 0);
    const list = JSON.parse((await kk('dkim', 'list', '--json')).out).keys as Array<{ selector: string; status: string }>;
    assert.deepEqual(Object.fromEntries(list.map((k) => [k.selector, k.status])), { s1: 'retired', s2: 'active', e1: 'retired' });
    assert.equal((await kk('dkim', 'retire', 'example.com', '--selector', 'zz')).status === 0, false);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});
