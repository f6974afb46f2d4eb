/**
 * Key recovery by mail, through a real SMTP sink as the console's relay: a request
 * mails every administrator who may approve it (not the one who asked, not the
 * person whose keys they are), each in their language; an approval mails the
 * recipient that the keys are ready. A relay that refuses loses nothing: the
 * request is recorded and waits for approval, the approval stands, and the page
 * says who was not told.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { issueMailboxCertificate } from '../../src/ca/issue-mailbox-certificate.ts';
import { KeyRecoveries } from '../../src/store/key-recoveries.ts';
import { en } from '../../src/server/console/messages/en.ts';
import { ja } from '../../src/server/console/messages/ja.ts';
import { Sink } from '../gateway/gateway-fixture.ts';
import { startAdminFixture, ROLE_PEOPLE, type AdminFixture } from './admin-fixture.ts';
import { ConsoleClient, TEST_PASSWORD } from './console-client.ts';
import { readMail } from './read-console-mail.ts';

let fx: AdminFixture;
let sink: Sink;
const SECOND = 'second-admin@example.co.jp';
const THIRD = 'third-admin@example.co.jp';
let userId = '';

before(async () => {
  sink = await new Sink().start();
  fx = await startAdminFixture({}, { mail: { relay: { host: '127.0.0.1', port: sink.port }, from: 'kakitome@example.co.jp' } });
  await fx.server.console.people.addPerson({ email: SECOND, roles: ['administrator'], password: TEST_PASSWORD, language: 'ja' });
  await fx.server.console.people.addPerson({ email: THIRD, roles: ['administrator'], password: TEST_PASSWORD, language: 'en' });
  userId = (await fx.server.console.people.findPersonByEmail(ROLE_PEOPLE.user!.email))!.id;
  await issueMailboxCertificate(fx.store, { email: ROLE_PEOPLE.user!.email, keyType: 'p256' });
});
after(async () => {
  await fx?.close();
  await sink?.stop();
});

async function signedIn(email: string): Promise<ConsoleClient> {
  const c = await fx.client('anonymous');
  assert.equal((await c.signIn(email)).status, 303);
  return c;
}

const newest = async () => (await new KeyRecoveries(fx.store).list(1))[0]!;
const mailsTo = (address: string) => sink.deliveries.filter((d) => d.to.includes(address)).map((d) => readMail(d.message));

test('a request mails the administrators who may approve it, each in their language; the approval mails the recipient', async () => {
  sink.reset();
  const officer = await fx.client('officer');
  const r = await officer.request(`/admin/people/${userId}/recovery`, { form: { reason: 'Left; the team needs the project mail', recipient: 'requester' } });
  assert.equal(r.status, 303);
  assert.equal(r.headers.get('location'), '/admin/recoveries?done=requested');
  const k = await newest();
  // Every enabled administrator but the requester (an officer here) and the person: the fixture's admin and the two added.
  assert.deepEqual(sink.deliveries.flatMap((d) => d.to).sort(), [ROLE_PEOPLE.admin!.email, SECOND, THIRD].sort());
  const [toSecond] = mailsTo(SECOND);
  const [toThird] = mailsTo(THIRD);
  assert.ok(toSecond!.text.includes(`${fx.server.console.origin.baseUrl}/admin/recoveries`));
  assert.ok(toSecond!.text.startsWith(ja.recoveryMail.requestedBody(ROLE_PEOPLE.user!.email, ROLE_PEOPLE.officer!.email, ROLE_PEOPLE.officer!.email, 'Left; the team needs the project mail', '', '').slice(0, 40)));
  assert.ok(toThird!.text.includes('Reason: Left; the team needs the project mail'));
  assert.match(toThird!.headers, /^Auto-Submitted: auto-generated$/m);
  assert.match(toThird!.headers, new RegExp(`^To: <${THIRD}>$`, 'm'));
  assert.ok(!toThird!.text.includes('-----BEGIN') && !/password:/i.test(toThird!.text), 'no key, no password');

  // The second administrator approves: the recipient (the officer, who asked) is told the keys are ready.
  sink.reset();
  const second = await signedIn(SECOND);
  assert.equal((await second.request(`/admin/recoveries/${k.id}/approve`, { form: {} })).status, 303);
  assert.deepEqual(sink.deliveries.flatMap((d) => d.to), [ROLE_PEOPLE.officer!.email]);
  const [ready] = mailsTo(ROLE_PEOPLE.officer!.email);
  assert.ok(ready!.text.includes(`${fx.server.console.origin.baseUrl}/me/recovered`));
  assert.ok(ready!.text.includes(`approved by ${SECOND}`));
  await second.request(`/admin/recoveries/${k.id}/refuse`, { form: {} });
});

test('an administrator who asks is not told of their own request; to the person: the person is told, in their language', async () => {
  sink.reset();
  await fx.server.console.people.setLanguage(userId, 'ja');
  const admin = await fx.client('admin');
  assert.equal((await admin.request(`/admin/people/${userId}/recovery`, { form: { reason: 'Lost every device', recipient: 'person' } })).status, 303);
  assert.deepEqual(sink.deliveries.flatMap((d) => d.to).sort(), [SECOND, THIRD].sort());
  const k = await newest();
  sink.reset();
  const third = await signedIn(THIRD);
  assert.equal((await third.request(`/admin/recoveries/${k.id}/approve`, { form: {} })).status, 303);
  const [ready] = mailsTo(ROLE_PEOPLE.user!.email);
  assert.ok(ready!.text.startsWith(`${ROLE_PEOPLE.user!.email} の鍵の回復が ${THIRD} によって承認されました`));
  await third.request(`/admin/recoveries/${k.id}/refuse`, { form: {} });
});

test('a relay that refuses loses no request and no approval: the page says who was not told', async () => {
  sink.reset();
  sink.mode = 'reject';
  try {
    const officer = await fx.client('officer');
    const r = await officer.request(`/admin/people/${userId}/recovery`, { form: { reason: 'Relay down, request kept', recipient: 'requester' } });
    assert.equal(r.status, 200);
    const page = await r.text();
    assert.ok(page.includes(en.recovery.requested));
    assert.ok(page.includes(en.recovery.unmailed([ROLE_PEOPLE.admin!.email, SECOND, THIRD].join(', '))));
    const k = await newest();
    assert.equal(k.reason, 'Relay down, request kept');
    assert.equal(k.state, 'requested');
    const second = await signedIn(SECOND);
    const approved = await second.request(`/admin/recoveries/${k.id}/approve`, { form: {} });
    assert.equal(approved.status, 200);
    assert.ok((await approved.text()).includes(en.recovery.unmailed(ROLE_PEOPLE.officer!.email)));
    assert.equal((await new KeyRecoveries(fx.store).find(k.id))!.state, 'approved');
    // The officer still receives the keys on Recovered keys.
    assert.ok((await (await officer.request('/me/recovered')).text()).includes(en.recovery.receiveSubmit));
  } finally {
    sink.mode = 'accept';
  }
  assert.equal(sink.deliveries.length, 0);
});
