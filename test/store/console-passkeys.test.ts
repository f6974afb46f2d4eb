/**
 * The console's passkeys in the store, on both engines (migration 13): kept with
 * their public key bytes intact, at most MAX_PASSKEYS a person, a credential id
 * once across people, names checked, a counter recorded only over the value read
 * (two sign-ins racing: one wins), removal only by the owner, gone with the person.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { engineFactories } from './engine-factories.ts';
import { Store } from '../../src/store/store.ts';
import { PeopleDirectory } from '../../src/store/people-directory.ts';
import { MAX_PASSKEYS, PasskeyDirectory } from '../../src/store/console-passkeys.ts';
import { masterKeyFromBytes } from '../../src/keys/master-key.ts';
import { isKakitomeError } from '../../src/errors.ts';

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    assert.ok(isKakitomeError(e), String(e));
    return e.code;
  }
  assert.fail('expected a failure');
}

for (const f of engineFactories('kakitome-passkeys-')) {
  describe(`console passkeys on ${f.name}`, () => {
    let store: Store;
    before(async () => {
      await f.setup();
      store = await Store.open(f.make(), { masterKey: masterKeyFromBytes(randomBytes(32)), actor: 'test' });
    });
    after(async () => {
      await store?.close();
      await f.teardown();
    });

    test('kept, limited, unique, raced, removed by the owner only, gone with the person', async () => {
      const people = new PeopleDirectory(store, { passwordHash: { memoryKiB: 1024, passes: 1, parallelism: 1 } });
      const a = await people.addPerson({ email: 'a@example.jp' });
      const b = await people.addPerson({ email: 'b@example.jp' });
      const dir = new PasskeyDirectory(store);
      const key = new Uint8Array(randomBytes(77));
      const added = await dir.add({ personId: a.id, email: a.email, id: 'cred-a', publicKey: key, signCount: 3, transports: ['usb', 'internal', 'bogus'], name: ' 会社の鍵 ' });
      assert.deepEqual(Buffer.from(added.publicKey), Buffer.from(key));
      assert.equal(added.name, '会社の鍵');
      assert.deepEqual(added.transports, ['usb', 'internal'], 'unknown transports are not kept');
      assert.equal(await code(dir.add({ personId: b.id, email: b.email, id: 'cred-a', publicKey: key, signCount: 0, name: 'x' })), 'INVALID_ARGUMENT', 'a credential id once');
      for (const bad of ['', ' ', 'a\u0000b', 'x'.repeat(61), 'a\u202eb']) assert.equal(await code(dir.add({ personId: b.id, email: b.email, id: `n-${bad.length}`, publicKey: key, signCount: 0, name: bad })), 'INVALID_ARGUMENT', JSON.stringify(bad));
      for (let i = 1; i < MAX_PASSKEYS; i++) await dir.add({ personId: a.id, email: a.email, id: `cred-a${i}`, publicKey: key, signCount: 0, name: `k${i}` });
      assert.equal(await code(dir.add({ personId: a.id, email: a.email, id: 'one-too-many', publicKey: key, signCount: 0, name: 'k' })), 'LIMIT');
      assert.equal(await dir.count(a.id), MAX_PASSKEYS);
      // Two sign-ins read counter 3; only one may record its new counter.
      const read = (await dir.find(a.id, 'cred-a'))!;
      assert.deepEqual(await Promise.all([dir.recordUse(read, 4), dir.recordUse(read, 4)]).then((r) => r.sort()), [false, true]);
      assert.equal((await dir.find(a.id, 'cred-a'))!.signCount, 4);
      assert.ok((await dir.find(a.id, 'cred-a'))!.lastUsedAt);
      // b cannot see or remove a's passkey.
      assert.equal(await dir.find(b.id, 'cred-a'), undefined);
      assert.equal(await dir.remove(b.id, b.email, 'cred-a'), false);
      assert.equal(await dir.remove(a.id, a.email, 'cred-a'), true);
      assert.equal(await dir.count(a.id), MAX_PASSKEYS - 1);
      assert.ok((await store.auditLog({ object: 'a@example.jp' })).some((e) => e.action === 'person.passkey.remove' && e.detail === '会社の鍵'));
      await store.engine.run('DELETE FROM people WHERE id = ?', [a.id]);
      assert.equal(await dir.count(a.id), 0, 'gone with the person');
    });
  });
}
