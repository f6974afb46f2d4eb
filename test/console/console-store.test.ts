/**
 * The console's store concepts on both engines (SQLite and a real PostgreSQL on
 * loopback): people and their password hashes, sessions (rotation, idle and
 * absolute limits, ending) and their step-up proofs, single-use links (one winner of a race, expiry,
 * replacement) and the organisation's settings. Time is the store's injected
 * clock, moved by the test.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { engineFactories } from '../store/engine-factories.ts';
import { Store } from '../../src/store/store.ts';
import { masterKeyFromBytes } from '../../src/keys/master-key.ts';
import { PeopleDirectory } from '../../src/store/people-directory.ts';
import { ConsoleSessions } from '../../src/store/console-sessions.ts';
import { OrganisationSettings, parseMailDomains } from '../../src/store/organisation-settings.ts';
import { hashPassword, needsRehash, verifyPassword } from '../../src/keys/password-hash.ts';
import { isKakitomeError } from '../../src/errors.ts';

const master = masterKeyFromBytes(randomBytes(32));
const MINUTE = 60_000;
const FAST = { memoryKiB: 1024, passes: 1, parallelism: 1 };

test('password hashes: Argon2id in PHC form, salted, bounded, and no answer for a hash that is not one', async () => {
  const a = await hashPassword('correct horse battery');
  const b = await hashPassword('correct horse battery');
  assert.match(a, /^\$argon2id\$v=19\$m=65536,t=3,p=4\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
  assert.notEqual(a, b, 'a fresh salt each time');
  assert.equal(await verifyPassword('correct horse battery', a), true);
  assert.equal(await verifyPassword('correct horse batterY', a), false);
  // NFC: the same password typed with a combining mark matches.
  const composed = await hashPassword('パスワードはがき', FAST);
  assert.equal(await verifyPassword('パスワードはがき'.normalize('NFD'), composed), true);
  // A row someone edited to demand 4 GiB, or that is not a hash at all, is a refusal, never an allocation or a throw.
  assert.equal(await verifyPassword('x', a.replace('m=65536', 'm=4194304')), false);
  assert.equal(await verifyPassword('x', 'plaintext'), false);
  assert.equal(await verifyPassword('x', undefined), false);
  assert.equal(needsRehash(composed), true);
  assert.equal(needsRehash(a), false);
  for (const bad of ['short', 'x'.repeat(1025)]) {
    await assert.rejects(hashPassword(bad), (e: unknown) => isKakitomeError(e, 'INVALID_ARGUMENT'));
  }
});

test('mail domains are parsed from free text and checked', () => {
  assert.deepEqual(parseMailDomains('Example.co.jp, @branch.example.co.jp\nexample.co.jp.'), ['example.co.jp', 'branch.example.co.jp']);
  assert.throws(() => parseMailDomains('example'), (e: unknown) => isKakitomeError(e, 'INVALID_ARGUMENT'));
  assert.throws(() => parseMailDomains('exa mple.com <script>'), (e: unknown) => isKakitomeError(e, 'INVALID_ARGUMENT'));
});

for (const f of engineFactories('kakitome-console-store-')) {
  describe(`console store on ${f.name}`, () => {
    let now = new Date('2026-12-06T09:00:00Z');
    let store: Store;
    let people: PeopleDirectory;
    let sessions: ConsoleSessions;
    let organisation: OrganisationSettings;
    before(async () => {
      await f.setup();
      store = await Store.open(f.make(), { masterKey: master, actor: 'tester', clock: () => now });
      people = new PeopleDirectory(store);
      sessions = new ConsoleSessions(store, people, { idleMs: 30 * MINUTE, absoluteMs: 12 * 60 * MINUTE });
      organisation = new OrganisationSettings(store);
    });
    after(async () => {
      await store.close();
      await f.teardown();
    });

    test('people: one account per mailbox, roles checked, the last administrator stays one', async () => {
      const admin = await people.addPerson({ email: 'Admin@Example.co.jp', displayName: '管理 太郎', roles: ['administrator'], password: 'correct horse battery' });
      assert.equal(admin.email, 'admin@example.co.jp');
      assert.deepEqual(admin.roles, ['administrator']);
      assert.equal(admin.hasPassword, true);
      await assert.rejects(people.addPerson({ email: 'admin@example.co.jp' }), /has an account already/);
      await assert.rejects(people.addPerson({ email: 'x@example.co.jp', roles: ['root' as 'auditor'] }), /Unknown role root/);
      await assert.rejects(people.addPerson({ email: 'not an address' }), (e: unknown) => isKakitomeError(e, 'INVALID_ARGUMENT'));
      await assert.rejects(people.addPerson({ email: 'y@example.co.jp', displayName: 'evil\u202Ename' }), /control characters/);
      const user = await people.addPerson({ email: 'taro@example.co.jp' });
      assert.deepEqual(user.roles, []);
      assert.equal(user.hasPassword, false);
      assert.equal(user.displayName, 'taro');
      assert.equal(await people.countAdministrators(), 1);
      await assert.rejects(people.setRoles(admin.id, ['auditor']), /last administrator/);
      await people.setRoles(user.id, ['administrator', 'auditor']);
      assert.equal(await people.countAdministrators(), 2);
      await people.setRoles(user.id, []);
      assert.deepEqual((await people.listPeople()).map((p) => p.email), ['admin@example.co.jp', 'taro@example.co.jp']);
      assert.ok((await store.auditLog({ limit: 20 })).some((e) => e.action === 'person.roles' && e.object === 'taro@example.co.jp'));
    });

    test('people: an internationalised domain may be typed with its Unicode labels; the account is filed and found under its A-label form', async () => {
      const p = await people.addPerson({ email: '山田@例え.jp', password: 'correct horse battery' });
      assert.equal(p.email, '山田@xn--r8jz45g.jp');
      await assert.rejects(people.addPerson({ email: '山田@xn--r8jz45g.jp' }), /has an account already/);
      for (const form of ['山田@例え.jp', '山田@XN--R8JZ45G.jp', '山田@xn--r8jz45g.jp.']) {
        assert.equal((await people.checkPassword(form, 'correct horse battery'))?.id, p.id, form);
        assert.equal((await people.findPersonByEmail(form))?.id, p.id, form);
      }
      await assert.rejects(people.addPerson({ email: 'x@例え' }), (e: unknown) => isKakitomeError(e, 'INVALID_ARGUMENT'), 'one label is no mail domain');
    });

    test('checkPassword: the right password only, never for a person without one, and a weak hash is upgraded', async () => {
      assert.equal((await people.checkPassword('ADMIN@example.co.jp', 'correct horse battery'))?.email, 'admin@example.co.jp');
      assert.equal(await people.checkPassword('admin@example.co.jp', 'wrong horse battery'), undefined);
      assert.equal(await people.checkPassword('nobody@example.co.jp', 'correct horse battery'), undefined);
      assert.equal(await people.checkPassword('taro@example.co.jp', ''), undefined, 'an invited person has no password yet');
      assert.equal(await people.checkPassword('<script>', 'x'), undefined);
      const weak = await hashPassword('weak but right', FAST);
      const taro = (await people.findPersonByEmail('taro@example.co.jp'))!;
      await store.engine.run('UPDATE people SET password_hash = ? WHERE id = ?', [weak, taro.id]);
      assert.ok(await people.checkPassword('taro@example.co.jp', 'weak but right'));
      const stored = String((await store.engine.all('SELECT password_hash FROM people WHERE id = ?', [taro.id]))[0]!.password_hash);
      assert.notEqual(stored, weak);
      assert.equal(needsRehash(stored), false);
    });

    test('sessions: only the digest is stored, a new one per sign-in, idle and absolute limits end them', async () => {
      const admin = (await people.findPersonByEmail('admin@example.co.jp'))!;
      const first = await sessions.start(admin);
      const rows = await store.engine.all('SELECT id FROM console_sessions');
      assert.ok(rows.every((r) => String(r.id) !== first.secret && /^[0-9a-f]{64}$/.test(String(r.id))), 'the secret itself is never stored');
      assert.equal((await sessions.resume(first.secret))?.person.email, 'admin@example.co.jp');
      const second = await sessions.start(admin);
      assert.notEqual(second.secret, first.secret);
      assert.equal(await sessions.resume('A'.repeat(43)), undefined);
      assert.equal(await sessions.resume('not a secret'), undefined);
      // Idle: 29 minutes is fine (and counts as activity), 30 more end it.
      now = new Date(now.getTime() + 29 * MINUTE);
      assert.ok(await sessions.resume(first.secret));
      now = new Date(now.getTime() + 30 * MINUTE);
      assert.equal(await sessions.resume(first.secret), undefined);
      assert.equal(await sessions.resume(second.secret), undefined);
      // Absolute: active every 20 minutes, still over after 12 hours.
      const busy = await sessions.start(admin);
      for (let i = 0; i < 35; i++) {
        now = new Date(now.getTime() + 20 * MINUTE);
        assert.ok(await sessions.resume(busy.secret), `still live after ${(i + 1) * 20} minutes`);
      }
      now = new Date(now.getTime() + 20 * MINUTE);
      assert.equal(await sessions.resume(busy.secret), undefined);
      const ended = await sessions.start(admin);
      await sessions.end(ended.secret);
      assert.equal(await sessions.resume(ended.secret), undefined);
      const a = await sessions.start(admin);
      const b = await sessions.start(admin);
      await sessions.endAllFor(admin.id);
      assert.equal(await sessions.resume(a.secret), undefined);
      assert.equal(await sessions.resume(b.secret), undefined);
      // A disabled person's session opens nothing.
      const c = await sessions.start(admin);
      await store.engine.run('UPDATE people SET disabled_at = ? WHERE id = ?', [now.toISOString(), admin.id]);
      assert.equal(await sessions.resume(c.secret), undefined);
      assert.equal(await people.checkPassword('admin@example.co.jp', 'correct horse battery'), undefined);
      await store.engine.run('UPDATE people SET disabled_at = NULL WHERE id = ?', [admin.id]);
    });

    test('step-up proofs: for the session that made it only, for the window only, gone with the session', async () => {
      const admin = (await people.findPersonByEmail('admin@example.co.jp'))!;
      const taro = (await people.findPersonByEmail('taro@example.co.jp'))!;
      const proofs = async () => (await store.engine.all("SELECT id FROM console_tokens WHERE purpose = 'step-up'")).map((r) => String(r.id));
      const a = await sessions.start(admin);
      const b = await sessions.start(admin);
      assert.equal(await sessions.stepUpUntil(a.secret, admin.id), undefined);
      const until = await sessions.recordStepUp(a.secret, admin.id, 5 * MINUTE);
      assert.equal(until.getTime(), now.getTime() + 5 * MINUTE);
      assert.equal((await sessions.stepUpUntil(a.secret, admin.id))?.getTime(), until.getTime());
      assert.equal(await sessions.stepUpUntil(b.secret, admin.id), undefined, 'another session of the same person');
      assert.equal(await sessions.stepUpUntil(a.secret, taro.id), undefined, 'another person');
      assert.equal(await sessions.stepUpUntil(undefined, admin.id), undefined);
      assert.equal(await sessions.stepUpUntil('not a secret', admin.id), undefined);
      await assert.rejects(sessions.recordStepUp('not a secret', admin.id, MINUTE));
      // Neither the session's secret nor its stored digest names the proof's row.
      const sessionIds = (await store.engine.all('SELECT id FROM console_sessions')).map((r) => String(r.id));
      assert.ok((await proofs()).every((id) => /^[0-9a-f]{64}$/.test(id) && !sessionIds.includes(id) && id !== a.secret));
      now = new Date(now.getTime() + 5 * MINUTE - 1000);
      assert.ok(await sessions.stepUpUntil(a.secret, admin.id));
      now = new Date(now.getTime() + 1000);
      assert.equal(await sessions.stepUpUntil(a.secret, admin.id), undefined, 'the window is over');
      // A newer proof replaces the older one; ending the session, or all the person's, ends it.
      await sessions.recordStepUp(a.secret, admin.id, 5 * MINUTE);
      await sessions.recordStepUp(a.secret, admin.id, 5 * MINUTE);
      assert.equal((await proofs()).length, 1);
      await sessions.end(a.secret);
      assert.equal(await sessions.stepUpUntil(a.secret, admin.id), undefined);
      assert.deepEqual(await proofs(), []);
      await sessions.recordStepUp(b.secret, admin.id, 5 * MINUTE);
      await sessions.endAllFor(admin.id);
      assert.deepEqual(await proofs(), []);
    });

    test('links: single use under a race, purpose-bound, expiring; a new setup link replaces the old', async () => {
      const taro = (await people.findPersonByEmail('taro@example.co.jp'))!;
      const invite = await sessions.issueLink('invitation', 60 * MINUTE, taro.id);
      assert.deepEqual(await sessions.checkLink(invite.secret, 'invitation'), { personId: taro.id });
      assert.equal(await sessions.checkLink(invite.secret, 'setup'), undefined, 'an invitation is not a setup link');
      assert.equal(await sessions.consumeLink(invite.secret, 'setup'), false);
      const race = await Promise.all(Array.from({ length: 8 }, () => sessions.consumeLink(invite.secret, 'invitation')));
      assert.equal(race.filter(Boolean).length, 1, 'exactly one request uses the link');
      assert.equal(await sessions.checkLink(invite.secret, 'invitation'), undefined);
      const late = await sessions.issueLink('invitation', 60 * MINUTE, taro.id);
      now = new Date(now.getTime() + 61 * MINUTE);
      assert.equal(await sessions.checkLink(late.secret, 'invitation'), undefined);
      assert.equal(await sessions.consumeLink(late.secret, 'invitation'), false);
      const one = await sessions.issueLink('setup', 60 * MINUTE);
      const two = await sessions.issueLink('setup', 60 * MINUTE);
      assert.equal(await sessions.checkLink(one.secret, 'setup'), undefined, 'only the last setup link printed works');
      assert.deepEqual(await sessions.checkLink(two.secret, 'setup'), { personId: '' });
      assert.equal(await sessions.consumeLink(two.secret, 'setup'), true);
      assert.equal(await sessions.consumeLink(two.secret, 'setup'), false);
    });

    test('organisation: name, domains and the check page setting, audited', async () => {
      assert.equal(await organisation.checkPageAccess(), 'public');
      await organisation.setName('株式会社サンプル');
      assert.equal(await organisation.name(), '株式会社サンプル');
      await assert.rejects(organisation.setName(''), (e: unknown) => isKakitomeError(e, 'INVALID_ARGUMENT'));
      assert.deepEqual(await organisation.setDomains(['example.co.jp', 'Branch.Example.co.jp']), ['example.co.jp', 'branch.example.co.jp']);
      assert.equal(await organisation.ownsMailbox('Taro@EXAMPLE.co.jp'), true);
      assert.equal(await organisation.ownsMailbox('taro@example.co.jp.evil.example'), false);
      assert.equal(await organisation.ownsMailbox('taro@sub.example.co.jp'), false, 'a subdomain is not the domain');
      await assert.rejects(organisation.setDomains([]), /at least one/);
      await organisation.setCheckPageAccess('signed-in');
      assert.equal(await organisation.checkPageAccess(), 'signed-in');
      await assert.rejects(organisation.setCheckPageAccess('everyone' as 'public'), (e: unknown) => isKakitomeError(e, 'INVALID_ARGUMENT'));
      assert.ok((await store.auditLog({ limit: 50 })).some((e) => e.action === 'organisation.domains'));
    });
  });
}
