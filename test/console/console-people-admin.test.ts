/**
 * One person's page: issuing a certificate for them (key made and kept on the
 * server), renewing one, and the leaver flow (sign-in disabled, sessions ended,
 * certificates revoked with the reason given and listed in the next CRL, keys
 * kept for old mail, audited), with the rules of who may act on whom.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { listMailboxCertificates } from '../../src/ca/list-mailbox-certificates.ts';
import { offboardPerson } from '../../src/ca/offboard-person.ts';
import { publishCrl } from '../../src/ca/publish-crl.ts';
import { encodePem } from '../../src/asn1/pem.ts';
import { en } from '../../src/server/console/messages/en.ts';
import { DEFAULT_CONSOLE_RATES } from '../../src/server/console/console-context.ts';
import { startAdminFixture, ROLE_PEOPLE, type AdminFixture } from './admin-fixture.ts';
import { TEST_PASSWORD } from './console-client.ts';

let fx: AdminFixture;
const tmp = mkdtempSync(join(tmpdir(), 'kakitome-people-admin-'));
before(async () => {
  fx = await startAdminFixture();
});
after(async () => {
  await fx?.close();
  rmSync(tmp, { recursive: true, force: true });
});

const idOf = async (role: keyof typeof ROLE_PEOPLE) => (await fx.server.console.people.findPersonByEmail(ROLE_PEOPLE[role]!.email))!.id;

test('issue for a person: a certificate for their address, its key sealed in the store and never handed to the officer', async () => {
  const officer = await fx.client('officer');
  const user = await idOf('user');
  const page = await officer.request(`/admin/people/${user}`);
  assert.equal(page.status, 200);
  assert.match(await page.text(), new RegExp(en.person.noCertificates));
  const r = await officer.request(`/admin/people/${user}/certificate`, { form: { 'key-type': 'p256' } });
  assert.equal(r.status, 303);
  assert.equal(r.headers.get('location'), `/admin/people/${user}?done=issued`);
  const [rec] = await listMailboxCertificates(fx.store, ROLE_PEOPLE.user!.email);
  assert.ok(rec && rec.hasPrivateKey && !rec.revokedAt);
  assert.deepEqual(rec.certificate.emailAddresses, [ROLE_PEOPLE.user!.email]);
  const after = await (await officer.request(`/admin/people/${user}?done=issued`)).text();
  assert.ok(after.includes(rec.certificate.serialHex));
  assert.ok(!/BEGIN [A-Z ]*PRIVATE KEY|\/download\//.test(after), 'no key material or download link on the page');
  assert.ok((await fx.store.auditLog({ object: rec.certificate.fingerprint256 })).some((e) => e.actor === `console:${ROLE_PEOPLE.officer!.email}`));
  // Hostile or unknown input: refused, nothing issued.
  assert.equal((await officer.request(`/admin/people/${user}/certificate`, { form: { 'key-type': 'dsa1024' } })).status, 400);
  assert.equal((await listMailboxCertificates(fx.store, ROLE_PEOPLE.user!.email)).length, 1);
});

test('who may act on whom: an officer neither issues for nor offboards a person with a role; helpdesk only reads', async () => {
  const officer = await fx.client('officer');
  const helpdeskId = await idOf('helpdesk');
  assert.equal((await officer.request(`/admin/people/${helpdeskId}/certificate`, { form: { 'key-type': 'p256' } })).status, 403);
  assert.equal((await officer.request(`/admin/people/${helpdeskId}/leave`, { form: { reason: 'affiliationChanged', confirm: 'yes' } })).status, 403);
  const page = await (await officer.request(`/admin/people/${helpdeskId}`)).text();
  assert.ok(!page.includes('/leave"'), 'no leaver form for an officer on a role holder');
  const helpdesk = await fx.client('helpdesk');
  const user = await idOf('user');
  const seen = await helpdesk.request(`/admin/people/${user}`);
  assert.equal(seen.status, 200);
  assert.ok(!(await seen.text()).includes('<form method="post" action="/admin/certificates/'), 'no renew button for helpdesk');
  assert.equal((await helpdesk.request(`/admin/people/${user}/certificate`, { form: { 'key-type': 'p256' } })).status, 403);
  assert.equal((await helpdesk.request(`/admin/people/${user}/leave`, { form: { reason: 'affiliationChanged', confirm: 'yes' } })).status, 403);
  assert.equal((await (await fx.client('auditor')).request(`/admin/people/${user}`)).status, 403);
  assert.equal((await (await fx.client('user')).request(`/admin/people/${user}`)).status, 403);
  // Nobody offboards themselves.
  const admin = await fx.client('admin');
  assert.equal((await admin.request(`/admin/people/${await idOf('admin')}/leave`, { form: { reason: 'affiliationChanged', confirm: 'yes' } })).status, 403);
  assert.equal((await fx.server.console.people.findPerson(helpdeskId))!.disabledAt, undefined);
});

test('renew: a new certificate with a new key; the old one and its key stay', async () => {
  const admin = await fx.client('admin');
  const [old] = await listMailboxCertificates(fx.store, ROLE_PEOPLE.user!.email);
  const r = await admin.request(`/admin/certificates/${old!.id}/renew`, { form: {} });
  assert.equal(r.status, 303, await r.text());
  const all = await listMailboxCertificates(fx.store, ROLE_PEOPLE.user!.email);
  assert.equal(all.length, 2);
  const fresh = all.find((c) => c.id !== old!.id)!;
  assert.equal(r.headers.get('location'), `/admin/certificates/${fresh.id}`);
  assert.notEqual(fresh.certificate.spki.toString(), old!.certificate.spki.toString());
  assert.ok(all.every((c) => c.hasPrivateKey && !c.revokedAt));
  assert.equal((await admin.request('/admin/certificates/no-such-id/renew', { form: {} })).status, 404);
});

test('the leaver flow: sign-in disabled and sessions ended, certificates revoked with the reason (in the next CRL), keys kept, audited; repeating it changes nothing', async () => {
  const user = await fx.client('user');
  assert.equal((await user.request('/me')).status, 200);
  const officer = await fx.client('officer');
  const id = await idOf('user');
  // Without the confirmation: refused, nothing done.
  assert.equal((await officer.request(`/admin/people/${id}/leave`, { form: { reason: 'affiliationChanged' } })).status, 400);
  assert.equal((await officer.request(`/admin/people/${id}/leave`, { form: { reason: 'certificateHold', confirm: 'yes' } })).status, 400);
  assert.equal((await fx.server.console.people.findPerson(id))!.disabledAt, undefined);

  const r = await officer.request(`/admin/people/${id}/leave`, { form: { reason: 'affiliationChanged', confirm: 'yes' } });
  assert.equal(r.status, 200);
  assert.ok((await r.text()).includes(en.person.left(ROLE_PEOPLE.user!.email, 2, 2)));
  assert.equal((await user.request('/me')).status, 303, 'the session ended');
  assert.equal((await (await fx.client('anonymous')).signIn(ROLE_PEOPLE.user!.email, TEST_PASSWORD)).status, 401);
  const certs = await listMailboxCertificates(fx.store, ROLE_PEOPLE.user!.email);
  assert.ok(certs.every((c) => c.revokedAt && c.revocationReason === 3 && c.hasPrivateKey), 'revoked (affiliationChanged), keys kept');
  for (const c of certs) assert.ok(await fx.store.findKeyForCertificate(c.certificate));
  const audit = await fx.store.auditLog({ object: ROLE_PEOPLE.user!.email });
  assert.ok(audit.some((e) => e.action === 'person.leave' && e.actor === `console:${ROLE_PEOPLE.officer!.email}` && e.detail === 'reason affiliationChanged'));

  const crl = await publishCrl(fx.store);
  const crlPath = join(tmp, 'leaver.crl');
  writeFileSync(crlPath, encodePem('X509 CRL', crl.der));
  const text = execFileSync('openssl', ['crl', '-in', crlPath, '-noout', '-text'], { encoding: 'utf8' });
  for (const c of certs) assert.match(text, new RegExp(`Serial Number: ${c.certificate.serialHex.toUpperCase()}[\\s\\S]*?Affiliation Changed`));

  // Again: no second revocation, no new audit row of it, no form any more.
  const again = await officer.request(`/admin/people/${id}/leave`, { form: { reason: 'keyCompromise', confirm: 'yes' } });
  assert.equal(again.status, 200);
  assert.ok((await again.text()).includes(en.person.left(ROLE_PEOPLE.user!.email, 0, 2)));
  assert.ok((await listMailboxCertificates(fx.store, ROLE_PEOPLE.user!.email)).every((c) => c.revocationReason === 3));
  assert.equal((await officer.request(`/admin/people/${id}/certificate`, { form: { 'key-type': 'p256' } })).status, 409, 'no certificate for a leaver');
});

test('the last enabled administrator cannot leave (the library refuses, and nothing changes)', async () => {
  const admin = await idOf('admin');
  await assert.rejects(offboardPerson(fx.store, admin, 'affiliationChanged'), /last administrator/);
  assert.equal((await fx.server.console.people.findPerson(admin))!.disabledAt, undefined);
  const second = await fx.server.console.people.addPerson({ email: 'admin2@example.co.jp', roles: ['administrator'], password: TEST_PASSWORD });
  const out = await offboardPerson(fx.store, admin, 'affiliationChanged');
  assert.ok(out.person.disabledAt);
  await assert.rejects(offboardPerson(fx.store, second.id, 'affiliationChanged'), /last administrator/);
});

test('the per-person issue limit keeps its default (5 a minute): the sixth request is 429 with Retry-After and says so in the reader\'s language; others are not held back', async () => {
  assert.equal(DEFAULT_CONSOLE_RATES.issuePerPerson, 5);
  const helpdesk = await fx.client('helpdesk');
  // An empty request is refused after the limit is taken: five cost nothing but count.
  for (let i = 0; i < 5; i++) assert.equal((await helpdesk.request('/me/certificate/request', { form: { 'csr-text': '' } })).status, 400, `request ${i + 1}`);
  const refused = await helpdesk.request('/me/certificate/request', { form: { 'csr-text': '' } });
  assert.equal(refused.status, 429);
  assert.match(refused.headers.get('retry-after') ?? '', /^[1-9]\d*$/);
  assert.match(await refused.text(), /Too many attempts\. Please wait \d+ seconds/);
  // The limit is the person's, across the issuing routes: a real issue and a renewal wait too, and nothing is issued.
  const before = (await fx.store.listCertificates({ email: ROLE_PEOPLE.helpdesk!.email })).length;
  assert.equal((await helpdesk.request('/me/certificate', { form: { profile: 'modern' } })).status, 429);
  assert.equal((await helpdesk.request('/me/certificate/renew', { form: { profile: 'modern' } })).status, 429);
  const ja = await helpdesk.request('/me/keys', { form: {}, headers: { 'accept-language': 'ja' } });
  assert.equal(ja.status, 429);
  assert.match(await ja.text(), /試行回数が多すぎます。\d+ 秒待ってから/);
  assert.equal((await fx.store.listCertificates({ email: ROLE_PEOPLE.helpdesk!.email })).length, before);
  // Another person is not held back by it.
  const auditor = await fx.client('auditor');
  assert.equal((await auditor.request('/me/certificate/request', { form: { 'csr-text': '' } })).status, 400);
});

test('People: 100 to a page continued by the last address, and a search by the start of an address or a name', async () => {
  for (let i = 0; i < 120; i++) await fx.server.console.people.addPerson({ email: `zz-${String(i).padStart(3, '0')}@example.co.jp`, displayName: i === 7 ? '山田 太郎' : `Person ${i}` });
  const helpdesk = await fx.client('helpdesk');
  const listed = (html: string) => [...html.matchAll(/<tr><td><a href="\/admin\/people\/[^"]+">([^<]+)<\/a>/g)].map((m) => m[1]!);
  const seen: string[] = [];
  let path: string | undefined = '/admin/people';
  while (path) {
    const html = await (await helpdesk.request(path)).text();
    const rows = listed(html);
    assert.ok(rows.length <= 100);
    seen.push(...rows);
    path = /<a rel="next" href="([^"]+)"/.exec(html)?.[1]?.replaceAll('&amp;', '&');
  }
  const total = (await fx.server.console.people.countPeople());
  assert.equal(seen.length, total);
  assert.equal(new Set(seen).size, total);
  assert.deepEqual(listed(await (await helpdesk.request(`/admin/people?q=${encodeURIComponent('山田')}`)).text()), ['zz-007@example.co.jp']);
  assert.equal(listed(await (await helpdesk.request('/admin/people?q=ZZ-11')).text()).length, 10);
});
