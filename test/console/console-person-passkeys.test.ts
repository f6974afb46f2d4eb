/**
 * An administrator removes every passkey of a person who lost all their devices
 * (the person's page): audited under the administrator's name, the person's
 * sessions end, and their password alone signs them in again. Only an
 * administrator (the every-route walk in console-http.test.ts checks the others),
 * never on themselves, only with the confirmation box.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { PasskeyDirectory } from '../../src/store/console-passkeys.ts';
import { en } from '../../src/server/console/messages/en.ts';
import { ja } from '../../src/server/console/messages/ja.ts';
import { startAdminFixture, ROLE_PEOPLE, type AdminFixture } from './admin-fixture.ts';

let fx: AdminFixture;
before(async () => {
  fx = await startAdminFixture();
});
after(async () => {
  await fx?.close();
});

const idOf = async (role: keyof typeof ROLE_PEOPLE) => (await fx.server.console.people.findPersonByEmail(ROLE_PEOPLE[role]!.email))!.id;

/** Registers passkeys straight in the store (the WebAuthn ceremony is tested in console-passkey-browser.test.ts). */
async function givePasskeys(role: keyof typeof ROLE_PEOPLE, names: string[]): Promise<void> {
  const dir = new PasskeyDirectory(fx.store);
  for (const name of names) {
    await dir.add({ personId: await idOf(role), email: ROLE_PEOPLE[role]!.email, id: randomBytes(16).toString('base64url'), publicKey: randomBytes(77), signCount: 0, name });
  }
}

test('an administrator removes every passkey of a person who lost their devices: audited, sessions ended, password alone signs in', async () => {
  await givePasskeys('user', ['phone', 'laptop']);
  const userId = await idOf('user');
  const user = await fx.client('anonymous');
  // With a passkey, the password is only the first step.
  assert.match((await user.signIn(ROLE_PEOPLE.user!.email)).headers.get('location') ?? '', /^\/sign-in\/passkey/);
  const helpdesk = await fx.client('helpdesk');
  const admin = await fx.client('admin');
  const page = await (await admin.request(`/admin/people/${userId}`)).text();
  assert.ok(page.includes('data-passkeys="2"') && page.includes(`/admin/people/${userId}/passkeys/remove`));
  // Helpdesk sees the person, not the removal form; the route refuses it.
  assert.ok(!(await (await helpdesk.request(`/admin/people/${userId}`)).text()).includes('/passkeys/remove'));
  assert.equal((await helpdesk.request(`/admin/people/${userId}/passkeys/remove`, { form: { confirm: 'yes' } })).status, 403);
  // Without the confirmation box: refused, nothing removed.
  assert.equal((await admin.request(`/admin/people/${userId}/passkeys/remove`, { form: {} })).status, 400);
  assert.equal(await new PasskeyDirectory(fx.store).count(userId), 2);
  // A forged cross-site form: refused before the handler.
  assert.equal((await admin.request(`/admin/people/${userId}/passkeys/remove`, { form: { confirm: 'yes' }, origin: 'https://evil.example' })).status, 403);
  assert.equal(await new PasskeyDirectory(fx.store).count(userId), 2);

  const r = await admin.request(`/admin/people/${userId}/passkeys/remove`, { form: { confirm: 'yes' } });
  assert.equal(r.status, 303);
  assert.equal(r.headers.get('location'), `/admin/people/${userId}?done=passkeys-removed`);
  assert.equal(await new PasskeyDirectory(fx.store).count(userId), 0);
  const done = await (await admin.request(r.headers.get('location')!)).text();
  assert.ok(done.includes(en.personPasskeys.removed(ROLE_PEOPLE.user!.email)) && done.includes('data-passkeys="0"'));
  const [row] = (await fx.store.auditLog({ object: ROLE_PEOPLE.user!.email })).filter((e) => e.action === 'person.passkey.remove-all');
  assert.ok(row, 'audited');
  assert.equal(row.actor, `console:${ROLE_PEOPLE.admin!.email}`);
  assert.equal(row.detail, '2 removed: phone, laptop');
  // Their password alone signs them in again.
  const again = await fx.client('anonymous');
  assert.equal((await again.signIn(ROLE_PEOPLE.user!.email)).headers.get('location'), '/me');
  assert.equal((await again.request('/me')).status, 200);
});

test('the person\'s sessions end when their passkeys are removed; an administrator does not remove their own here', async () => {
  const helpdeskId = await idOf('helpdesk');
  const helpdesk = await fx.client('helpdesk');
  assert.equal((await helpdesk.request('/admin')).status, 200);
  await givePasskeys('helpdesk', ['key']);
  const admin = await fx.client('admin');
  assert.equal((await admin.request(`/admin/people/${helpdeskId}/passkeys/remove`, { form: { confirm: 'yes' } })).status, 303);
  assert.equal((await helpdesk.request('/admin')).status, 303, 'the session on the lost device ended');
  // Their own: on /me/security with the password, not here.
  await givePasskeys('admin', ['mine']);
  const adminId = await idOf('admin');
  assert.ok(!(await (await admin.request(`/admin/people/${adminId}`)).text()).includes('/passkeys/remove'));
  assert.equal((await admin.request(`/admin/people/${adminId}/passkeys/remove`, { form: { confirm: 'yes' } })).status, 403);
  assert.equal(await new PasskeyDirectory(fx.store).count(adminId), 1);
  // In Japanese.
  const ja1 = await admin.request(`/admin/people/${helpdeskId}`, { headers: { 'accept-language': 'ja' } });
  assert.ok((await ja1.text()).includes(ja.personPasskeys.count(0)));
});
