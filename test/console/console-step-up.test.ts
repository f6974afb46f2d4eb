/**
 * Step-up re-authentication (src/server/console/step-up.ts) over HTTP: the
 * whole-store backup, and the routes that give administrator rights, do nothing
 * for a session whose proof of presence is older than the window and send the
 * browser to /confirm; the password confirms (for this session only, for the
 * window only), the page comes back without an open redirect, CSRF checks are
 * unchanged, attempts are rate-limited and audited without what was typed, and a
 * person with a passkey is not confirmed by the password alone.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { PasskeyDirectory } from '../../src/store/console-passkeys.ts';
import { DEFAULT_STEP_UP_WINDOW_MS } from '../../src/server/console/step-up.ts';
import { createConsoleContext } from '../../src/server/console/console-context.ts';
import { isKakitomeError } from '../../src/errors.ts';
import { resolveServeConfig } from '../../src/server/config.ts';
import { en } from '../../src/server/console/messages/en.ts';
import { ja } from '../../src/server/console/messages/ja.ts';
import { startAdminFixture, ROLE_PEOPLE, type AdminFixture } from './admin-fixture.ts';
import { TEST_PASSWORD, type ConsoleClient } from './console-client.ts';

let fx: AdminFixture;
before(async () => {
  fx = await startAdminFixture();
});
after(async () => {
  await fx?.close();
});

const BACKUP = { passphrase: '', 'passphrase-again': '' };

async function backups(): Promise<number> {
  return (await fx.store.auditLog({ limit: 1000 })).filter((e) => e.action === 'store.backup').length;
}

/** Makes every proof made so far older than the window (the sessions stay alive: 30 minutes idle). */
function windowPasses(): void {
  fx.advance(DEFAULT_STEP_UP_WINDOW_MS + 1000);
}

async function confirm(c: ConsoleClient, next: string, password = TEST_PASSWORD): Promise<Response> {
  return c.request('/confirm', { form: { password, next } });
}

test('the backup is refused without a fresh proof, made after the password, refused again once the window has passed', async () => {
  const admin = await fx.client('admin');
  windowPasses();
  const before = await backups();
  const refused = await admin.request('/admin/backup', { form: BACKUP });
  assert.equal(refused.status, 303);
  assert.equal(refused.headers.get('location'), '/confirm?next=%2Fadmin%2Fbackup');
  assert.equal(await backups(), before, 'nothing was made');

  const form = await admin.request('/confirm?next=%2Fadmin%2Fbackup', { headers: { 'accept-language': 'ja' } });
  assert.equal(form.status, 200);
  const html = await form.text();
  assert.ok(html.includes(ja.stepUp.title) && html.includes('name="next" value="/admin/backup"') && html.includes('id="step-up-password"'), html);
  assert.ok(!html.includes('data-passkey'), 'no passkey: no passkey form');

  const wrong = await confirm(admin, '/admin/backup', 'not the password');
  assert.equal(wrong.status, 401);
  assert.ok((await wrong.text()).includes(en.stepUp.wrongPassword));
  assert.equal((await admin.request('/admin/backup', { form: BACKUP })).status, 303, 'a wrong password proves nothing');

  const ok = await confirm(admin, '/admin/backup');
  assert.equal(ok.status, 303);
  assert.equal(ok.headers.get('location'), '/admin/backup');
  const made = await admin.request('/admin/backup', { form: BACKUP });
  assert.equal(made.status, 200, await made.clone().text());
  assert.equal(await backups(), before + 1);

  // Still within the window: no question asked; past it, asked again.
  fx.advance(DEFAULT_STEP_UP_WINDOW_MS - 60_000);
  assert.equal((await admin.request('/confirm?next=%2Fadmin%2Fbackup')).headers.get('location'), '/admin/backup', 'a fresh proof: straight back');
  fx.advance(61_000);
  assert.equal((await admin.request('/admin/backup', { form: BACKUP })).headers.get('location'), '/confirm?next=%2Fadmin%2Fbackup');
  assert.equal(await backups(), before + 1);

  const log = await fx.store.auditLog({ object: ROLE_PEOPLE.admin!.email, limit: 1000 });
  const proofs = log.filter((e) => e.action === 'console.step-up');
  assert.equal(proofs.length, 1);
  assert.match(proofs[0]!.detail!, /^password, until \d{4}-/);
  assert.equal(proofs[0]!.actor, `console:${ROLE_PEOPLE.admin!.email}`);
  assert.equal(log.filter((e) => e.action === 'console.step-up.refused').length, 1);
  const all = JSON.stringify(await fx.store.auditLog({ limit: 1000 }));
  assert.ok(!all.includes(TEST_PASSWORD) && !all.includes('not the password'), 'what was typed is never logged');
});

test('a proof holds for the session that made it only: another session of the same person has none', async () => {
  const a = await fx.client('admin');
  windowPasses();
  // b signs in now (a sign-in is a proof for its own new session) and confirms again on top.
  const b = await fx.client('admin');
  assert.equal((await confirm(b, '/admin/backup')).status, 303);
  assert.equal((await a.request('/admin/backup', { form: BACKUP })).headers.get('location'), '/confirm?next=%2Fadmin%2Fbackup');
  assert.equal((await b.request('/admin/backup', { form: BACKUP })).status, 200);
  // Signing out ends b's proof with its session.
  await b.request('/sign-out', { form: {} });
  assert.equal((await b.request('/admin/backup', { form: BACKUP })).status, 401);
});

test('the way back is a console path only; the confirmation keeps the CSRF checks', async () => {
  const admin = await fx.client('admin');
  windowPasses();
  for (const next of ['https://evil.example/', '//evil.example', '/\\evil.example', 'javascript:alert(1)']) {
    const html = await (await admin.request(`/confirm?next=${encodeURIComponent(next)}`)).text();
    assert.ok(html.includes('name="next" value="/"') && !html.includes('evil.example'), next);
  }
  assert.equal((await admin.request('/confirm', { form: { password: TEST_PASSWORD, next: '/admin/backup' }, origin: 'https://evil.example' })).status, 403);
  assert.equal((await admin.request('/confirm', { form: { password: TEST_PASSWORD, next: '/admin/backup' }, origin: null })).status, 403);
  assert.equal((await admin.request('/admin/backup', { form: BACKUP })).status, 303, 'the forged confirmations proved nothing');
  const ok = await confirm(await fx.client('auditor'), '//evil.example/x');
  assert.equal(ok.headers.get('location'), '/');
  // Anonymous: sign in first.
  const anonymous = await fx.client('anonymous');
  assert.equal((await anonymous.request('/confirm?next=%2Fadmin%2Fbackup')).headers.get('location'), '/sign-in?next=%2Fconfirm');
  assert.equal((await anonymous.request('/confirm', { form: { password: TEST_PASSWORD, next: '/' } })).status, 401);
});

test('administrator rights given, an administrator\'s invitation link, and an API key of admin scope ask for a proof; other roles and scopes do not', async () => {
  const admin = await fx.client('admin');
  windowPasses();
  const auditor = (await fx.server.console.people.findPersonByEmail(ROLE_PEOPLE.auditor!.email))!;
  const toAdmin = await admin.request(`/admin/people/${auditor.id}/roles`, { form: { role: ['auditor', 'administrator'] } });
  assert.equal(toAdmin.headers.get('location'), '/confirm?next=%2Fadmin%2Fpeople');
  assert.deepEqual((await fx.server.console.people.findPerson(auditor.id))!.roles, ['auditor']);
  assert.equal((await admin.request(`/admin/people/${auditor.id}/roles`, { form: { role: ['auditor', 'helpdesk'] } })).status, 200, 'no administrator right: no question');
  await admin.request(`/admin/people/${auditor.id}/roles`, { form: { role: ['auditor'] } });
  const added = await admin.request('/admin/people', { form: { email: 'new-admin@example.co.jp', name: 'New', role: 'administrator' } });
  assert.equal(added.headers.get('location'), '/confirm?next=%2Fadmin%2Fpeople');
  assert.equal(await fx.server.console.people.findPersonByEmail('new-admin@example.co.jp'), undefined);
  const self = (await fx.server.console.people.findPersonByEmail(ROLE_PEOPLE.admin!.email))!;
  assert.equal((await admin.request(`/admin/people/${self.id}/invitation`, { form: {} })).headers.get('location'), '/confirm?next=%2Fadmin%2Fpeople', 'an invitation link sets an administrator\'s password');
  assert.equal((await admin.request(`/admin/people/${auditor.id}/invitation`, { form: {} })).status, 200);
  const key = await admin.request('/admin/tenants/keys', { form: { tenant: 'any', scope: ['sign', 'admin'] } });
  assert.equal(key.headers.get('location'), '/confirm?next=%2Fadmin%2Ftenants');

  assert.equal((await confirm(admin, '/admin/people')).headers.get('location'), '/admin/people');
  assert.equal((await admin.request(`/admin/people/${auditor.id}/roles`, { form: { role: ['auditor', 'administrator'] } })).status, 200);
  assert.deepEqual((await fx.server.console.people.findPerson(auditor.id))!.roles.sort(), ['administrator', 'auditor']);
  await admin.request(`/admin/people/${auditor.id}/roles`, { form: { role: ['auditor'] } });
});

test('trusting a CA root, changing the gateway policy, and removing another person\'s passkeys or single sign-on pin ask for a proof and change nothing without one', async () => {
  const admin = await fx.client('admin');
  windowPasses();
  const auditor = (await fx.server.console.people.findPersonByEmail(ROLE_PEOPLE.auditor!.email))!;
  const auditBefore = (await fx.store.auditLog({ limit: 10_000 })).length;
  const policy = { level: 'global', name: '', setting: 'sign', value: 'false', action: 'set' };
  const asked: Array<[string, Record<string, string>, string]> = [
    ['/admin/directory/roots/trust', { fingerprint: 'ab'.repeat(32), confirm: 'ab'.repeat(32) }, '/admin/directory'],
    ['/admin/policy', policy, '/admin/policy'],
    [`/admin/people/${auditor.id}/passkeys/remove`, {}, `/admin/people/${auditor.id}`],
    [`/admin/people/${auditor.id}/oidc/forget`, {}, `/admin/people/${auditor.id}`],
  ];
  for (const [path, form, back] of asked) {
    const r = await admin.request(path, { form });
    assert.equal(r.status, 303, path);
    assert.equal(r.headers.get('location'), `/confirm?next=${encodeURIComponent(back)}`, path);
  }
  assert.equal((await fx.store.auditLog({ limit: 10_000 })).length, auditBefore, 'nothing was done, so nothing was audited');
  assert.equal((await confirm(admin, '/admin/policy')).headers.get('location'), '/admin/policy');
  assert.equal((await admin.request('/admin/policy', { form: policy })).status, 200, 'with the proof the form is handled');
  assert.equal((await admin.request('/admin/policy', { form: { ...policy, value: '', action: 'unset' } })).status, 200);
});

test('a person with a passkey is not confirmed by the password alone; attempts are rate-limited per person', async () => {
  const helpdesk = await fx.client('helpdesk');
  const person = (await fx.server.console.people.findPersonByEmail(ROLE_PEOPLE.helpdesk!.email))!;
  await new PasskeyDirectory(fx.store).add({ personId: person.id, email: person.email, id: 'c3RlcC11cC10ZXN0', publicKey: new Uint8Array(77), signCount: 0, name: 'test' });
  windowPasses();
  const page = await (await helpdesk.request('/confirm?next=%2Fme')).text();
  assert.ok(page.includes(en.passkeys.notHere(fx.server.console.origin.baseUrl.replace('//127.0.0.1:', '//localhost:'))), 'the passkey way is offered (here: where it works)');
  assert.ok(!page.includes('id="step-up-password"'));
  assert.equal((await confirm(helpdesk, '/me')).status, 401, 'the right password, but this person confirms with the passkey');
  assert.ok((await fx.store.auditLog({ object: person.email })).some((e) => e.action === 'console.step-up.refused' && /a passkey is asked/.test(e.detail ?? '')));

  const officer = await fx.client('officer');
  const statuses: number[] = [];
  for (let i = 0; i < 6; i++) statuses.push((await confirm(officer, '/', i < 5 ? `wrong ${i}` : TEST_PASSWORD)).status);
  assert.deepEqual(statuses, [401, 401, 401, 401, 401, 429], 'the sixth attempt in a minute is refused, even with the right password');
});

test('the window is configurable between 1 and 60 minutes (serve --step-up-minutes)', () => {
  for (const bad of [0, 59_000, 3_600_001, 1.5]) {
    assert.throws(() => createConsoleContext(fx.server.console.service, fx.server.console.origin, { stepUpWindowMs: bad }), (e: unknown) => isKakitomeError(e, 'INVALID_ARGUMENT'), String(bad));
  }
  assert.equal(createConsoleContext(fx.server.console.service, fx.server.console.origin, { stepUpWindowMs: 120_000 }).stepUpWindowMs, 120_000);
  // kakitome serve --step-up-minutes, or $KAKITOME_STEP_UP_MINUTES.
  assert.equal(resolveServeConfig({ stepUpMinutes: '10' }, {}).stepUpWindowMs, 600_000);
  assert.equal(resolveServeConfig({}, { KAKITOME_STEP_UP_MINUTES: '2' }).stepUpWindowMs, 120_000);
  assert.equal(resolveServeConfig({}, {}).stepUpWindowMs, undefined, 'the default is the console\'s');
  for (const bad of ['0', '61', '1.5', 'five']) assert.throws(() => resolveServeConfig({ stepUpMinutes: bad }, {}), (e: unknown) => isKakitomeError(e, 'INVALID_ARGUMENT'), bad);
});
