/**
 * Key recovery with two-person approval: an officer (or administrator) asks for a
 * person's keys with a reason, a second, different administrator approves, and
 * only then does the recipient the request names receive the keys (current and
 * past decryption keys, one PKCS#12 file, openssl reads them), once. Hostile
 * cases: approving one's own request, approving the recovery of one's own keys,
 * an officer asking for a role holder's keys, receiving before approval, as
 * someone else, twice, after expiry, two receipts racing; every step audited.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { issueMailboxCertificate } from '../../src/ca/issue-mailbox-certificate.ts';
import { renewMailboxCertificate } from '../../src/ca/renew-mailbox-certificate.ts';
import { KeyRecoveries, HANDOVER_TTL_MS, REQUEST_TTL_MS } from '../../src/store/key-recoveries.ts';
import { en } from '../../src/server/console/messages/en.ts';
import { ja } from '../../src/server/console/messages/ja.ts';
import { startAdminFixture, ROLE_PEOPLE, type AdminFixture } from './admin-fixture.ts';
import { ConsoleClient, TEST_PASSWORD } from './console-client.ts';

let fx: AdminFixture;
const tmp = mkdtempSync(join(tmpdir(), 'kakitome-recovery-'));
const SECOND = 'second-admin@example.co.jp';
let userId = '';
let userKeys: string[] = [];

before(async () => {
  fx = await startAdminFixture();
  await fx.server.console.people.addPerson({ email: SECOND, roles: ['administrator'], password: TEST_PASSWORD });
  userId = (await fx.server.console.people.findPersonByEmail(ROLE_PEOPLE.user!.email))!.id;
  // A certificate and its renewal: two decryption keys, the older one for old mail.
  const [first] = await issueMailboxCertificate(fx.store, { email: ROLE_PEOPLE.user!.email, keyType: 'p256' });
  const renewed = await renewMailboxCertificate(fx.store, first!.certificate.fingerprint256);
  userKeys = [first!.keyId!, renewed.keyId!];
});
after(async () => {
  await fx?.close();
  rmSync(tmp, { recursive: true, force: true });
});

async function second(): Promise<ConsoleClient> {
  const c = await fx.client('anonymous');
  assert.equal((await c.signIn(SECOND)).status, 303);
  return c;
}

async function ask(c: ConsoleClient, personId: string, form: Record<string, string>): Promise<Response> {
  return c.request(`/admin/people/${personId}/recovery`, { form });
}

/** The id of the newest recovery. */
async function newest(): Promise<string> {
  return (await new KeyRecoveries(fx.store).list(1))[0]!.id;
}

function openssl(args: string[]): string {
  return execFileSync('openssl', args, { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
}

async function receive(c: ConsoleClient, id: string): Promise<{ status: number; html: string; password?: string; download?: string }> {
  const r = await c.request(`/me/recovered/${id}`, { form: { profile: 'modern' } });
  const html = await r.text();
  const password = /data-handover-password>([A-Z0-9-]+)</.exec(html)?.[1];
  const download = /href="(\/me\/certificate\/download\/[A-Za-z0-9_-]+)" download>/.exec(html)?.[1];
  return { status: r.status, html, ...(password ? { password } : {}), ...(download ? { download } : {}) };
}

test('an officer asks, a second administrator approves, the officer receives every decryption key once; every step audited', async () => {
  const officer = await fx.client('officer');
  const admin = await fx.client('admin');
  const page = await (await officer.request(`/admin/people/${userId}`)).text();
  assert.ok(page.includes(`/admin/people/${userId}/recovery`), 'the request form on the person page');
  // Without a reason, or with a recipient of its own invention: refused.
  assert.equal((await ask(officer, userId, { reason: '', recipient: 'requester' })).status, 400);
  assert.equal((await ask(officer, userId, { reason: 'x', recipient: 'attacker@evil.example' })).status, 400);
  assert.equal((await ask(officer, userId, { reason: 'bad\u0007bell', recipient: 'requester' })).status, 400);
  assert.equal((await new KeyRecoveries(fx.store).list()).length, 0);

  const r = await ask(officer, userId, { reason: 'Left in March; the legal team needs mail from 2025.', recipient: 'requester' });
  assert.equal(r.status, 303);
  const id = await newest();
  const list = await (await officer.request(r.headers.get('location')!)).text();
  assert.ok(list.includes(en.recovery.requested) && list.includes('data-recovery-state="requested"'));
  assert.ok(!list.includes(`/admin/recoveries/${id}/approve`), 'no approve button for the requester');
  // Not yet: the officer cannot receive, nor approve (route: administrators only).
  assert.equal((await receive(officer, id)).status, 409);
  assert.equal((await officer.request(`/admin/recoveries/${id}/approve`, { form: {} })).status, 403);
  // A forged cross-site approval changes nothing.
  assert.equal((await admin.request(`/admin/recoveries/${id}/approve`, { form: {}, origin: 'https://evil.example' })).status, 403);
  assert.equal((await new KeyRecoveries(fx.store).find(id))!.state, 'requested');

  assert.equal((await admin.request(`/admin/recoveries/${id}/approve`, { form: {} })).status, 303);
  assert.equal((await new KeyRecoveries(fx.store).find(id))!.state, 'approved');
  assert.equal((await admin.request(`/admin/recoveries/${id}/approve`, { form: {} })).status, 409, 'approved once');
  // Only the recipient named receives: not the approver, not the person.
  assert.equal((await receive(admin, id)).status, 403);
  const user = await fx.client('user');
  assert.equal((await receive(user, id)).status, 403);
  assert.ok((await (await user.request('/me/recovered')).text()).includes(en.recovery.nothingWaiting));

  assert.ok((await (await officer.request('/me/recovered')).text()).includes(`/me/recovered/${id}`));
  const got = await receive(officer, id);
  assert.equal(got.status, 200, got.html);
  assert.ok(got.password && got.download);
  const p12 = Buffer.from(await (await officer.request(got.download!)).arrayBuffer());
  assert.equal((await officer.request(got.download!)).status, 404, 'the file is downloaded once');
  const file = join(tmp, 'recovered.p12');
  writeFileSync(file, p12);
  const out = openssl(['pkcs12', '-in', file, '-passin', `pass:${got.password}`, '-nodes']);
  assert.equal(out.match(/BEGIN PRIVATE KEY/g)?.length, 2, 'the current and the past decryption key');
  assert.match(out, /friendlyName: user@example\.co\.jp/);
  assert.equal((await receive(officer, id)).status, 409, 'handed over once');

  const audit = (await fx.store.auditLog({ limit: 200 })).filter((e) => e.action.startsWith('key.recovery.') || (e.action === 'key.export' && userKeys.includes(e.object ?? '')));
  const by = (action: string) => audit.filter((e) => e.action === action);
  assert.equal(by('key.recovery.request')[0]!.actor, `console:${ROLE_PEOPLE.officer!.email}`);
  assert.match(by('key.recovery.request')[0]!.detail!, /reason: Left in March/);
  assert.equal(by('key.recovery.approve')[0]!.actor, `console:${ROLE_PEOPLE.admin!.email}`);
  assert.equal(by('key.recovery.hand-over')[0]!.actor, `console:${ROLE_PEOPLE.officer!.email}`);
  assert.equal(by('key.export').length, 2);
  assert.ok(by('key.export').every((e) => e.detail?.includes(`key recovery ${id}`)));
});

test('two-person rule: nobody approves their own request or the recovery of their own keys; an officer cannot ask for a role holder\'s keys', async () => {
  const admin = await fx.client('admin');
  const officer = await fx.client('officer');
  const adminId = (await fx.server.console.people.findPersonByEmail(ROLE_PEOPLE.admin!.email))!.id;
  const secondId = (await fx.server.console.people.findPersonByEmail(SECOND))!.id;
  // An officer asking for an administrator's keys: refused before anything is recorded.
  assert.equal((await ask(officer, adminId, { reason: 'take over', recipient: 'requester' })).status, 403);
  // An administrator asks: they cannot approve it themselves.
  assert.equal((await ask(admin, userId, { reason: 'audit', recipient: 'requester' })).status, 303);
  const own = await newest();
  assert.equal((await admin.request(`/admin/recoveries/${own}/approve`, { form: {} })).status, 403);
  assert.equal((await new KeyRecoveries(fx.store).find(own))!.state, 'requested');
  // The requester ends it; then nothing can approve it.
  assert.equal((await admin.request(`/admin/recoveries/${own}/refuse`, { form: {} })).status, 303);
  const two = await second();
  assert.equal((await two.request(`/admin/recoveries/${own}/approve`, { form: {} })).status, 409);
  // The recovery of an administrator's keys, asked by the second: the subject cannot approve it.
  await issueMailboxCertificate(fx.store, { email: SECOND, keyType: 'p256' });
  await issueMailboxCertificate(fx.store, { email: ROLE_PEOPLE.admin!.email, keyType: 'p256' });
  assert.equal((await ask(two, adminId, { reason: 'mail of the admin', recipient: 'requester' })).status, 303);
  assert.equal((await admin.request(`/admin/recoveries/${await newest()}/approve`, { form: {} })).status, 403, 'not the person whose keys they are');
  // Nobody asks for their own keys this way.
  assert.equal((await ask(two, secondId, { reason: 'mine', recipient: 'requester' })).status, 403);
});

test('to the person; requests and approvals expire; two receipts racing: one wins', async () => {
  let two = await second();
  // Not approved within a day: expired, cannot be approved.
  assert.equal((await ask(two, userId, { reason: 'late', recipient: 'person' })).status, 303);
  const late = await newest();
  fx.advance(REQUEST_TTL_MS + 60_000);
  // (Sessions end after 12 hours: everyone signs in again after the clock moves.)
  let admin = await fx.client('admin');
  two = await second();
  assert.equal((await admin.request(`/admin/recoveries/${late}/approve`, { form: {} })).status, 409);
  assert.equal((await new KeyRecoveries(fx.store).find(late))!.state, 'expired');
  // Approved but not collected within a day: expired.
  assert.equal((await ask(two, userId, { reason: 'uncollected', recipient: 'person' })).status, 303);
  const uncollected = await newest();
  assert.equal((await admin.request(`/admin/recoveries/${uncollected}/approve`, { form: {} })).status, 303);
  fx.advance(HANDOVER_TTL_MS + 60_000);
  const user2 = await fx.client('user');
  admin = await fx.client('admin');
  two = await second();
  assert.equal((await receive(user2, uncollected)).status, 409);
  // To the person: /me tells them, they receive once; two tabs racing, one wins.
  assert.equal((await ask(two, userId, { reason: 'they lost their laptop and password manager', recipient: 'person' })).status, 303);
  const forUser = await newest();
  assert.equal((await admin.request(`/admin/recoveries/${forUser}/approve`, { form: {} })).status, 303);
  const me = await (await user2.request('/me', { headers: { 'accept-language': 'ja' } })).text();
  assert.ok(me.includes(ja.recovery.waitingNotice), 'the person sees it, in Japanese');
  assert.equal((await receive(two, forUser)).status, 403, 'the requester is not the recipient here');
  const [a, b] = await Promise.all([receive(user2, forUser), receive(user2, forUser)]);
  assert.deepEqual([a.status, b.status].sort(), [200, 409]);
  assert.equal((await fx.store.auditLog({ limit: 500 })).filter((e) => e.action === 'key.recovery.hand-over' && e.detail?.startsWith(forUser)).length, 1);
});
