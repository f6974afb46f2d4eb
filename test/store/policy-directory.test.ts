/**
 * The gateway policy and held messages in the store (migration 6), on SQLite and on
 * PostgreSQL: levels set, unset and imported (each part the document carries
 * replaced, the rest kept), a new revision with every change and none for an
 * import that changes nothing, every change audited, rows checked again when read;
 * held messages kept once per envelope and message, found, removed.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Store } from '../../src/store/store.ts';
import { masterKeyFromBytes } from '../../src/keys/master-key.ts';
import { PolicyDirectory } from '../../src/store/policy-directory.ts';
import { HeldMessages } from '../../src/store/held-messages.ts';
import { GLOBAL_LEVEL, levelRef, parsePolicyDocument } from '../../src/policy/policy-levels.ts';
import { KakitomeError } from '../../src/errors.ts';
import { engineFactories } from './engine-factories.ts';

for (const factory of engineFactories('kakitome-policy-')) {
  describe(`policy in the store (${factory.name})`, () => {
    let store: Store;
    before(async () => {
      await factory.setup();
      store = await Store.open(factory.make(), { masterKey: masterKeyFromBytes(randomBytes(32)), actor: 'test' });
    });
    after(async () => {
      await store?.close();
      await factory.teardown();
    });

    test('set, unset, import and load: levels, revisions and the audit trail', async () => {
      const policies = new PolicyDirectory(store);
      assert.equal(await policies.revision(), '');
      assert.deepEqual((await policies.load()).levels.global, {});
      await policies.set(GLOBAL_LEVEL, { encrypt: 'never', maxConnections: 7 });
      const r1 = await policies.revision();
      assert.notEqual(r1, '');
      await policies.set(levelRef('domain', 'corp.test'), { encrypt: 'required', skipSignDomains: ['relay.example'] });
      await policies.set(levelRef('address', 'ceo@corp.test'), { subjectTags: 'ja' });
      let snap = await policies.load();
      assert.notEqual(snap.revision, r1);
      assert.deepEqual(snap.levels.global, { encrypt: 'never', maxConnections: 7 });
      assert.deepEqual(snap.levels.domains.get('corp.test'), { encrypt: 'required', skipSignDomains: ['relay.example'] });
      assert.deepEqual(snap.levels.addresses.get('ceo@corp.test'), { subjectTags: 'ja' });
      // Overwrite one value, unset another.
      await policies.set(levelRef('domain', 'corp.test'), { encrypt: 'if-possible' });
      assert.equal(await policies.unset(levelRef('domain', 'corp.test'), ['skipSignDomains', 'sign']), 1);
      assert.equal(await policies.unset(levelRef('domain', 'corp.test'), ['sign']), 0, 'nothing was set: nothing changes');
      snap = await policies.load();
      assert.deepEqual(snap.levels.domains.get('corp.test'), { encrypt: 'if-possible' });
      // A flat (global-only) import replaces the global level and leaves the others.
      const before = await policies.revision();
      assert.equal(await policies.import(parsePolicyDocument('{"revocation": "allow-unknown"}', 'f'), { source: 'f' }), true);
      snap = await policies.load();
      assert.deepEqual(snap.levels.global, { revocation: 'allow-unknown' });
      assert.deepEqual(snap.levels.domains.get('corp.test'), { encrypt: 'if-possible' });
      assert.notEqual(snap.revision, before);
      // The same import again changes nothing and keeps the revision (nodes importing one file do not make each other reload).
      assert.equal(await policies.import(parsePolicyDocument('{"revocation": "allow-unknown"}', 'f'), { source: 'f' }), false);
      assert.equal(await policies.revision(), snap.revision);
      // A levelled import replaces each part it carries.
      await policies.import(parsePolicyDocument('{"domains": {"other.test": {"sign": false}}}', 'g'), { source: 'g' });
      snap = await policies.load();
      assert.equal(snap.levels.domains.has('corp.test'), false);
      assert.deepEqual(snap.levels.domains.get('other.test'), { sign: false });
      assert.deepEqual(snap.levels.addresses.get('ceo@corp.test'), { subjectTags: 'ja' }, 'addresses were not in the file: kept');
      // Merge sets over what is there.
      await policies.import(parsePolicyDocument('{"domains": {"corp.test": {"hideSubject": true}}}', 'h'), { merge: true, source: 'h' });
      snap = await policies.load();
      assert.deepEqual([...snap.levels.domains.keys()].sort(), ['corp.test', 'other.test']);
      const audit = (await store.auditLog({ limit: 50 })).map((a) => a.action);
      for (const a of ['policy.set', 'policy.unset', 'policy.import']) assert.ok(audit.includes(a), `${a} audited`);
    });

    test('a row that is no valid setting is refused when read, naming its level and setting', async () => {
      const policies = new PolicyDirectory(store);
      await store.engine.run("INSERT INTO policy_settings (level, name, setting, value, updated_at) VALUES ('domain', 'bad.test', 'encrypt', '\"sometimes\"', 'x')");
      await assert.rejects(policies.load(), (e: unknown) => e instanceof KakitomeError && /domain bad\.test: "encrypt" must be/.test(e.message));
      await store.engine.run("UPDATE policy_settings SET setting = 'futureSetting', value = 'true' WHERE name = 'bad.test'");
      await assert.rejects(policies.load(), (e: unknown) => e instanceof KakitomeError && /domain bad\.test: unknown setting "futureSetting"/.test(e.message));
      await store.engine.run("UPDATE policy_settings SET level = 'address', setting = 'maxConnections', value = '5' WHERE name = 'bad.test'");
      await assert.rejects(policies.load(), /process-wide/);
      await store.engine.run("DELETE FROM policy_settings WHERE name = 'bad.test'");
      await policies.load();
    });

    test('held messages: one row per envelope and message, found by id, removed once', async () => {
      const held = new HeldMessages(store);
      const message = Buffer.from('From: alice@corp.test\r\nTo: erin@example.com\r\nSubject: held\r\n\r\nsecret figures\r\n');
      const input = { sender: 'alice@corp.test', recipients: ['erin@example.com'], message, reasonCode: 'ENCRYPTION_REQUIRED', reason: 'no certificate', queueId: 'Q1' };
      const id = await held.hold(input);
      assert.match(id, /^[0-9a-f]{32}$/);
      assert.equal((await held.find(id)).generation, 0);
      assert.equal(await held.hold(input), id, 'held again (a retry): the same row');
      assert.equal((await held.list()).length, 1);
      assert.equal((await held.find(id)).generation, 1, 'a later generation');
      assert.equal(await held.remove(id, 0, 'release', 'sent generation 0'), false, 'held again since it was sent: it stays');
      assert.notEqual(await held.hold({ ...input, recipients: ['frank@example.com'] }), id);
      const found = await held.find(id);
      assert.deepEqual(await found.message(), message);
      assert.deepEqual([found.sender, found.recipients, found.queueId, found.size], ['alice@corp.test', ['erin@example.com'], 'Q1', message.length]);
      await assert.rejects(held.find('nope'), /not a held message id/);
      assert.equal(await held.remove(id, 1, 'release', 'via 127.0.0.1:25'), true);
      assert.equal(await held.remove(id, 1, 'release', 'again'), false);
      await assert.rejects(held.find(id), (e: unknown) => e instanceof KakitomeError && e.code === 'NOT_FOUND');
      const audit = (await store.auditLog({ limit: 50 })).map((a) => a.action);
      assert.ok(audit.includes('message.hold') && audit.includes('message.release'));
    });

    test('held messages keep the sender\'s DSN requests (migration 21): RET, ENVID, each recipient\'s NOTIFY and ORCPT; a row held before has none; a row that cannot be relayed is refused', async () => {
      const held = new HeldMessages(store);
      const message = Buffer.from('From: alice@corp.test\r\nTo: erin@example.com\r\nSubject: held with DSN\r\n\r\nfigures\r\n');
      const input = { sender: 'alice@corp.test', recipients: ['erin@example.com', 'Erin@example.com', 'frank@example.com'], message, reasonCode: 'ENCRYPTION_REQUIRED', reason: 'no certificate' };
      const asked = { dsn: { ret: 'HDRS' as const, envid: 'ref 7+=' }, recipientDsn: [{ notify: ['SUCCESS', 'DELAY'] as const, orcpt: 'rfc822;erin@example.com' }, { notify: ['NEVER'] as const }, undefined] };
      const id = await held.hold({ ...input, ...asked });
      const found = await held.find(id);
      assert.deepEqual([found.dsn, found.recipientDsn], [asked.dsn, asked.recipientDsn]);
      // Held again (a retry) with other requests: the latest stand.
      await held.hold({ ...input, recipientDsn: [undefined, undefined, { notify: ['FAILURE'] }] });
      const again = await held.find(id);
      assert.deepEqual([again.generation, again.dsn, again.recipientDsn], [1, undefined, [undefined, undefined, { notify: ['FAILURE'] }]]);
      // Nothing asked: nothing kept.
      const plain = await held.hold({ ...input, recipients: ['grace@example.com'] });
      assert.equal((await store.engine.all('SELECT dsn FROM held_messages WHERE id = ?', [plain]))[0]!.dsn, null);
      assert.deepEqual(Object.keys(await held.find(plain)).filter((k) => /dsn/i.test(k)), []);
      // A row held before migration 21 has NULL there: found, with none.
      await store.engine.run('UPDATE held_messages SET dsn = NULL WHERE id = ?', [id]);
      const old = await held.find(id);
      assert.deepEqual([old.dsn, old.recipientDsn, await old.message()], [undefined, undefined, message]);
      // An edited row whose requests could not be relayed is refused before anything is sent.
      await store.engine.run('UPDATE held_messages SET dsn = ? WHERE id = ?', [JSON.stringify({ recipients: [{ orcpt: 'rfc822;caf\u00e9@example.com' }, null, null] }), id]);
      await assert.rejects(held.find(id), (e: unknown) => e instanceof KakitomeError && e.code === 'MALFORMED' && /printable US-ASCII/.test(e.message));
      await store.engine.run('UPDATE held_messages SET dsn = ? WHERE id = ?', [JSON.stringify({ recipients: [null] }), id]);
      await assert.rejects(held.find(id), /one entry per recipient/);
      await assert.rejects(held.hold({ ...input, recipientDsn: [undefined] }), /3 recipient\(s\) and 1 sets/);
    });
  });
}
