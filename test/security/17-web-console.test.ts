/**
 * Security default 17: the web console acts only for the person signed in, from
 * the console itself. Each attack is built for real against a running server:
 * a forged cross-site form, DNS rebinding (a foreign Host with a valid session),
 * session fixation (a cookie planted before sign-in), privilege escalation through
 * invitations and roles, markup smuggled in a checked message, framing, and a
 * flood of rate-limit keys.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { masterKeyFromBytes } from '../../src/keys/master-key.ts';
import { Store } from '../../src/store/store.ts';
import { openSqliteEngine } from '../../src/store/sqlite-engine.ts';
import { startServer, type RunningServer } from '../../src/server/start-server.ts';
import { RateLimiter } from '../../src/server/rate-limiter.ts';
import { en } from '../../src/server/console/messages/en.ts';
import { ConsoleClient, TEST_PASSWORD } from '../console/console-client.ts';

const dir = mkdtempSync(join(tmpdir(), 'kakitome-sec-console-'));
let server: RunningServer;
let store: Store;
const ids: Record<string, string> = {};
const client = (headers: Record<string, string> = {}) => new ConsoleClient(() => ({ url: server.url, origin: server.console.origin.baseUrl }), headers);

before(async () => {
  store = await Store.open(openSqliteEngine(join(dir, 'kakitome.db')), { masterKey: masterKeyFromBytes(randomBytes(32)), actor: 'serve' });
  server = await startServer(store, { host: '127.0.0.1', port: 0, maxMessageBytes: 1024 * 1024, shutdownGraceMs: 2000, revocation: 'off' }, {
    log: () => {}, version: 'test', console: { passwordHash: { memoryKiB: 1024, passes: 1, parallelism: 1 } },
  });
  const people = server.console.people;
  await server.console.organisation.setDomains(['example.co.jp']);
  ids.admin = (await people.addPerson({ email: 'admin@example.co.jp', roles: ['administrator'], password: TEST_PASSWORD })).id;
  ids.helpdesk = (await people.addPerson({ email: 'helpdesk@example.co.jp', roles: ['helpdesk'], password: TEST_PASSWORD })).id;
  ids.officer = (await people.addPerson({ email: 'officer@example.co.jp', roles: ['registration-officer'], password: TEST_PASSWORD })).id;
  ids.user = (await people.addPerson({ email: 'user@example.co.jp', password: TEST_PASSWORD })).id;
});

after(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

test('a cross-site form (another Origin, Sec-Fetch-Site cross-site, or no Origin) changes nothing, even with the victim\'s session', async () => {
  const admin = client();
  assert.equal((await admin.signIn('admin@example.co.jp')).status, 303);
  const attack = { domains: 'evil.example', 'check-page': 'signed-in' };
  for (const forged of [{ origin: 'https://evil.example' }, { origin: 'null' }, { origin: null }, { headers: { 'sec-fetch-site': 'cross-site' } }, { headers: { 'sec-fetch-site': 'same-site' } }]) {
    const r = await admin.request('/admin/settings', { form: attack, ...forged });
    assert.equal(r.status, 403, JSON.stringify(forged));
    assert.match(await r.text(), new RegExp(en.errors.crossSite.slice(0, 40)));
  }
  assert.deepEqual(await server.console.organisation.domains(), ['example.co.jp']);
  assert.equal(await server.console.organisation.checkPageAccess(), 'public');
  // Nor does it sign the victim out or give roles.
  assert.equal((await admin.request('/sign-out', { form: {}, origin: 'https://evil.example' })).status, 403);
  assert.equal((await admin.request(`/admin/people/${ids.user}/roles`, { form: { role: 'administrator' }, origin: 'https://evil.example' })).status, 403);
  assert.deepEqual((await server.console.people.findPerson(ids.user!))!.roles, []);
  assert.equal((await admin.request('/admin')).status, 200, 'the session survived');
  // The same form from the console itself goes through.
  assert.equal((await admin.request('/admin/settings', { form: { domains: 'example.co.jp', 'check-page': 'public' } })).status, 200);
});

test('DNS rebinding: a page whose Host is another name gets 421, even with a valid session cookie', async () => {
  const admin = client();
  await admin.signIn('admin@example.co.jp');
  const cookie = [...admin.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  const port = new URL(server.url).port;
  const call = (path: string, host: string, method = 'GET') => new Promise<number>((resolve, reject) => {
    request({ host: '127.0.0.1', port, path, method, headers: { host, cookie, origin: `http://${host}` } }, (res) => {
      res.resume();
      resolve(res.statusCode!);
    }).on('error', reject).end();
  });
  for (const path of ['/', '/admin', '/admin/audit', '/me', '/nowhere']) assert.equal(await call(path, `rebound.evil.example:${port}`), 421, path);
  assert.equal(await call('/admin/settings', `rebound.evil.example:${port}`, 'POST'), 421);
  assert.equal(await call('/admin', `127.0.0.1:${port}`), 200);
  assert.equal(await call('/admin', `localhost:${port}`), 200);
  // The API answers every Host (it authenticates by key, not by cookie).
  assert.equal(await call('/healthz', 'anything.example'), 200);
});

test('session fixation: a cookie planted before sign-in is never promoted; sign-in issues a new secret', async () => {
  const planted = 'P'.repeat(43);
  const victim = client();
  victim.cookies.set('__Host-kakitome-session', planted);
  assert.equal((await victim.request('/me')).status, 303, 'the planted value opens nothing');
  assert.equal((await victim.signIn('user@example.co.jp')).status, 303);
  const issued = victim.cookies.get('__Host-kakitome-session')!;
  assert.notEqual(issued, planted);
  const attacker = client();
  attacker.cookies.set('__Host-kakitome-session', planted);
  assert.equal((await attacker.request('/me')).status, 303, 'the attacker\'s planted value is still nothing');
  // The store holds digests only: the secret in the cookie is nowhere in the database.
  const rows = await store.engine.all('SELECT id FROM console_sessions');
  assert.ok(rows.length > 0 && rows.every((r) => String(r.id) !== issued && /^[0-9a-f]{64}$/.test(String(r.id))));
});

test('privilege escalation: helpdesk and registration officers cannot make or take over an administrator', async () => {
  const helpdesk = client();
  await helpdesk.signIn('helpdesk@example.co.jp');
  // An invitation link sets the person's password: for an administrator it would hand over the account.
  assert.equal((await helpdesk.request(`/admin/people/${ids.admin}/invitation`, { form: {} })).status, 403);
  assert.equal((await helpdesk.request(`/admin/people/${ids.officer}/invitation`, { form: {} })).status, 403);
  assert.equal((await helpdesk.request(`/admin/people/${ids.helpdesk}/roles`, { form: { role: ['administrator', 'helpdesk'] } })).status, 403);
  assert.equal((await helpdesk.request('/admin/people', { form: { email: 'mole@example.co.jp' } })).status, 403);
  const officer = client();
  await officer.signIn('officer@example.co.jp');
  assert.equal((await officer.request('/admin/people', { form: { email: 'mole@example.co.jp', role: 'administrator' } })).status, 403);
  assert.equal((await officer.request(`/admin/people/${ids.officer}/roles`, { form: { role: 'administrator' } })).status, 403);
  assert.equal((await officer.request('/admin/settings', { form: { domains: 'evil.example' } })).status, 403);
  const user = client();
  await user.signIn('user@example.co.jp');
  assert.equal((await user.request(`/admin/people/${ids.user}/roles`, { form: { role: 'administrator' } })).status, 403);
  for (const [id, roles] of [[ids.helpdesk, ['helpdesk']], [ids.officer, ['registration-officer']], [ids.user, []]] as const) {
    assert.deepEqual((await server.console.people.findPerson(id!))!.roles, roles);
  }
  assert.equal(await server.console.people.findPersonByEmail('mole@example.co.jp'), undefined);
  assert.equal(await server.console.sessions.checkLink('x'.repeat(43), 'invitation'), undefined);
});

test('privilege escalation: an invitation link made for a person without a role dies when the person is given a role', async () => {
  // Helpdesk may invite a person without a role and sees the link (no mail relay here); an
  // administrator then gives that person a role. The link would set the password of an administrator.
  const rising = (await server.console.people.addPerson({ email: 'rising@example.co.jp' })).id;
  const helpdesk = client();
  await helpdesk.signIn('helpdesk@example.co.jp');
  const invited = await helpdesk.request(`/admin/people/${rising}/invitation`, { form: {} });
  assert.equal(invited.status, 200);
  const link = new URL(/data-invitation-link>([^<]+)</.exec(await invited.text())![1]!);
  const admin = client();
  await admin.signIn('admin@example.co.jp');
  assert.equal((await admin.request(`/admin/people/${rising}/roles`, { form: { role: 'administrator' } })).status, 200);
  assert.equal((await helpdesk.request(link.pathname)).status, 404);
  const taken = await helpdesk.request(link.pathname, { form: { password: 'a new password of mine', password2: 'a new password of mine' } });
  assert.equal(taken.status, 404);
  assert.equal(taken.headers.get('set-cookie'), null);
  assert.equal(await server.console.people.checkPassword('rising@example.co.jp', 'a new password of mine'), undefined);
  // An administrator's own invitation, made after the role was given, still works.
  const again = await admin.request(`/admin/people/${rising}/invitation`, { form: {} });
  const fresh = new URL(/data-invitation-link>([^<]+)</.exec(await again.text())![1]!);
  assert.equal((await client().request(fresh.pathname)).status, 200);
});

test('a password typed into the address field of the sign-in form is not written to the audit log', async () => {
  const secret = 'my Secret passphrase 2026!';
  const r = await client().request('/sign-in', { form: { email: secret, password: secret, next: '/' } });
  assert.equal(r.status, 401);
  await r.text();
  const unknown = await client().request('/sign-in', { form: { email: 'nobody@example.co.jp', password: 'wrong', next: '/' } });
  assert.equal(unknown.status, 401);
  await unknown.text();
  const refusals = (await store.auditLog({ limit: 20 })).filter((e) => e.action === 'console.sign-in.refused');
  assert.ok(refusals.every((e) => !JSON.stringify(e).includes('passphrase')), JSON.stringify(refusals));
  // A refused address is still recorded: a guessing run stays visible to the auditor.
  assert.ok(refusals.some((e) => e.object === 'nobody@example.co.jp'), JSON.stringify(refusals));
});

test('markup from a message, a sign-in form or a display name is shown as text, never run', async () => {
  const hostile = [
    'From: "<script>alert(1)</script>" <"><img src=x onerror=alert(2)>@evil.example>',
    'Subject: "><svg onload=alert(3)>',
    'Content-Type: text/plain',
    '',
    '<script>alert(4)</script>',
    '',
  ].join('\r\n');
  const checked = await (await client().request('/check', { form: { 'message-text': hostile } })).text();
  const markup = /<script>alert|<img src=x|<svg onload/i;
  assert.ok(!markup.test(checked), 'no markup from the message reaches the page');
  // The sign-in form echoes the address typed: as an attribute value, escaped.
  const echoed = await (await client().signIn('"><script>alert(5)</script>', 'whatever')).text();
  assert.ok(!markup.test(echoed));
  assert.match(echoed, /value="&quot;&gt;&lt;script&gt;alert\(5\)&lt;\/script&gt;"/);
  // A display name an officer typed is text in the administrators' people list.
  const officer = client();
  await officer.signIn('officer@example.co.jp');
  await officer.request('/admin/people', { form: { email: 'xss@example.co.jp', name: '<img src=x onerror=alert(6)>' } });
  const list = await (await officer.request('/admin/people')).text();
  assert.ok(!markup.test(list));
  assert.match(list, /&lt;img src=x onerror=alert\(6\)&gt;/);
});

test('framing is refused (clickjacking): frame-ancestors none and X-Frame-Options DENY on every page', async () => {
  for (const path of ['/', '/sign-in', '/check', '/setup/' + 'A'.repeat(43)]) {
    const r = await client().request(path);
    assert.match(r.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/);
    assert.equal(r.headers.get('x-frame-options'), 'DENY');
  }
});

test('a flood of distinct rate-limit keys (addresses, account names) does not grow memory without bound', () => {
  let now = 0;
  const limiter = new RateLimiter(() => now);
  for (let i = 0; i < 50_000; i++) {
    limiter.take(`console:sign-in-account:user${i}@example.co.jp`, 10);
    now += 10;
  }
  assert.ok(limiter.size <= 10_001, `${limiter.size} buckets held`);
  // A limited key stays limited through the pruning.
  const busy = new RateLimiter(() => now);
  for (let i = 0; i < 10; i++) busy.take('victim', 10);
  assert.equal(busy.take('victim', 10).allowed, false);
});

test('the per-account sign-in limit counts every written form of one address (case, final dot, full-width or Unicode domain labels)', async () => {
  const { startAdminFixture, ROLE_PEOPLE } = await import('../console/admin-fixture.ts');
  const fx = await startAdminFixture({ rates: { signInPerAddress: 1000, signInPerAccount: 3 } });
  try {
    const email = ROLE_PEOPLE.officer!.email;
    const [local, domain] = email.split('@') as [string, string];
    const fullWidth = [...domain].map((ch) => /[a-z]/.test(ch) ? String.fromCharCode(ch.charCodeAt(0) + 0xfee0) : ch).join('');
    const forms = [email, email.toUpperCase(), `${email}.`, `${local}@${fullWidth}`, `${local}@${domain.replaceAll('.', '\u3002')}`];
    const statuses: number[] = [];
    for (const form of forms) {
      const r = await new ConsoleClient(() => ({ url: fx.server.url, origin: fx.server.console.origin.baseUrl })).request('/sign-in', { form: { email: form, password: 'not the password', next: '/' } });
      statuses.push(r.status);
      await r.text();
    }
    assert.deepEqual(statuses, [401, 401, 401, 429, 429], 'one account, one budget, however the address is written');
  } finally {
    await fx.close();
  }
});
