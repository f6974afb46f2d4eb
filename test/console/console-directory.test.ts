/**
 * The external certificate directory: new keys harvested for known addresses,
 * accepted or rejected by an administrator only (audited), a rejection that
 * sticks when the same certificate is harvested again, and `kakitome certs
 * reject` deciding the same way on the same store. CA roots waiting for a trust
 * decision: listed (officers read, administrators decide), counted on the
 * dashboard, trusted only through a confirmation showing the fingerprint, declined
 * and reconsidered, every decision audited under the administrator's name.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestPki } from '../helpers/pki.ts';
import { runCli, storeHomeEnv } from '../cli/run-cli.ts';
import { Store } from '../../src/store/store.ts';
import { openSqliteEngine } from '../../src/store/sqlite-engine.ts';
import { rejectPendingCertificate } from '../../src/store/reject-pending-certificate.ts';
import { en } from '../../src/server/console/messages/en.ts';
import { receiveFromUnknownRoot } from '../helpers/unknown-root-mail.ts';
import { startAdminFixture, ROLE_PEOPLE, type AdminFixture } from './admin-fixture.ts';

let fx: AdminFixture;
const pkis = [new TestPki('Directory Peer A'), new TestPki('Directory Peer B'), new TestPki('Directory Peer C')];
before(async () => {
  fx = await startAdminFixture();
});
after(async () => {
  await fx?.close();
  for (const p of pkis) p.cleanup();
});

/** Harvests `name`'s certificate from the first PKI, then a new key from PKI `n`: a pending key change. */
async function keyChange(name: string, n: number) {
  const old = pkis[0]!.identity('p256', name);
  const fresh = pkis[n]!.identity('p256', name);
  await fx.store.harvestCertificate(old.cert, { address: old.email });
  const r = await fx.store.harvestCertificate(fresh.cert, { address: fresh.email, source: 'harvest' });
  assert.equal(r.filing, 'pending');
  return { old, fresh };
}

const filingOf = async (fingerprint: string, email: string) => (await fx.store.findCertificateByFingerprint(fingerprint))!.filings.find((f) => f.email === email)!.filing;

test('a pending key change is listed; an officer sees it but cannot decide; an administrator accepts it (audited)', async () => {
  const { old, fresh } = await keyChange('alice', 1);
  const officer = await fx.client('officer');
  const seen = await officer.request('/admin/directory');
  assert.equal(seen.status, 200);
  const html = await seen.text();
  assert.ok(html.includes(`data-pending="${fresh.cert.fingerprint256}"`));
  assert.ok(!html.includes('/admin/directory/accept'), 'no decision buttons for an officer');
  const form = { fingerprint: fresh.cert.fingerprint256, address: fresh.email };
  assert.equal((await officer.request('/admin/directory/accept', { form })).status, 403);
  for (const role of ['helpdesk', 'auditor', 'user'] as const) {
    const b = await fx.client(role);
    assert.equal((await b.request('/admin/directory')).status, 403, role);
    assert.equal((await b.request('/admin/directory/reject', { form })).status, 403, role);
  }
  assert.equal(await filingOf(fresh.cert.fingerprint256, fresh.email), 'pending');

  const admin = await fx.client('admin');
  const r = await admin.request('/admin/directory/accept', { form });
  assert.equal(r.status, 200);
  assert.ok((await r.text()).includes(en.directory.accepted(fresh.email)));
  assert.equal(await filingOf(fresh.cert.fingerprint256, fresh.email), 'current');
  assert.equal(await filingOf(old.cert.fingerprint256, old.email), 'superseded');
  assert.equal((await fx.store.findRecipientCertificate(fresh.email))!.certificate.fingerprint256, fresh.cert.fingerprint256);
  assert.ok((await fx.store.auditLog({ object: fresh.cert.fingerprint256 })).some((e) => e.action === 'certificate.accept' && e.actor === `console:${ROLE_PEOPLE.admin!.email}`));
});

test('reject: the key in use stays, the new one is history only, and harvesting it again does not bring it back', async () => {
  const { old, fresh } = await keyChange('bob', 2);
  const admin = await fx.client('admin');
  const form = { fingerprint: fresh.cert.fingerprint256, address: fresh.email };
  const r = await admin.request('/admin/directory/reject', { form });
  assert.equal(r.status, 200);
  assert.ok((await r.text()).includes(en.directory.rejected(fresh.email)));
  assert.equal(await filingOf(fresh.cert.fingerprint256, fresh.email), 'superseded');
  assert.equal(await filingOf(old.cert.fingerprint256, old.email), 'current');
  assert.equal((await fx.store.findRecipientCertificate(old.email))!.certificate.fingerprint256, old.cert.fingerprint256);
  assert.ok((await fx.store.auditLog({ object: fresh.cert.fingerprint256 })).some((e) => e.action === 'certificate.reject' && e.actor === `console:${ROLE_PEOPLE.admin!.email}`));
  const again = await fx.store.harvestCertificate(fresh.cert, { address: fresh.email });
  assert.equal(again.filing, 'superseded');
  assert.ok(!(await (await admin.request('/admin/directory')).text()).includes(`data-pending="${fresh.cert.fingerprint256}"`));
  // A second rejection, or one for an address it is not pending under, or a made-up certificate: refused, nothing changed.
  assert.equal((await admin.request('/admin/directory/reject', { form })).status, 400);
  assert.equal((await admin.request('/admin/directory/reject', { form: { fingerprint: fresh.cert.fingerprint256, address: 'someone@example.com' } })).status, 400);
  assert.equal((await admin.request('/admin/directory/accept', { form: { fingerprint: 'ab'.repeat(32), address: fresh.email } })).status, 400);
  assert.equal((await admin.request('/admin/directory/accept', { form: { fingerprint: '', address: '' } })).status, 400);
  await assert.rejects(rejectPendingCertificate(fx.store, old.cert.fingerprint256, old.email), /not waiting for a decision/);
});

test('the directory lists harvested certificates and escapes what they carry', async () => {
  const evil = new TestPki('<img src=x onerror=alert(1)> CA');
  try {
    const id = evil.identity('p256', 'mallory');
    await fx.store.harvestCertificate(id.cert, { address: id.email });
    const html = await (await (await fx.client('admin')).request('/admin/directory')).text();
    assert.ok(html.includes(id.cert.fingerprint256));
    assert.ok(!html.includes('<img src=x'), 'the issuer name is escaped');
    assert.ok(html.includes('&lt;img src=x'));
  } finally {
    evil.cleanup();
  }
});

test('kakitome certs reject decides as the console does', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kakitome-certs-reject-'));
  try {
    const home = join(dir, 'home');
    const env = storeHomeEnv(home, dir);
    const kk = (args: string[]) => runCli(args, { env, cwd: dir });
    assert.equal((await kk(['init'])).status, 0);
    const store = await Store.open(openSqliteEngine(join(home, 'kakitome.db')), { actor: 'test' });
    const old = pkis[0]!.identity('p256', 'carol');
    const fresh = pkis[1]!.identity('p256', 'carol');
    await store.harvestCertificate(old.cert, { address: old.email });
    await store.harvestCertificate(fresh.cert, { address: fresh.email });
    await store.close();
    const r = await kk(['certs', 'reject', fresh.cert.fingerprint256, '--email', fresh.email, '--json']);
    assert.equal(r.status, 0, r.stderr.toString());
    assert.equal(JSON.parse(r.stdout.toString()).status, 'ok');
    const again = await kk(['certs', 'reject', fresh.cert.fingerprint256, '--email', fresh.email]);
    assert.notEqual(again.status, 0);
    assert.match(again.stderr.toString(), /not waiting for a decision/);
    const check = await Store.open(openSqliteEngine(join(home, 'kakitome.db')), { actor: 'test' });
    assert.equal((await check.findCertificateByFingerprint(fresh.cert.fingerprint256))!.filings[0]!.filing, 'superseded');
    assert.equal((await check.findRecipientCertificate(old.email))!.certificate.fingerprint256, old.cert.fingerprint256);
    await check.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('CA roots waiting: listed and counted for officers, decided by administrators only, trusted after a confirmation (audited)', async () => {
  const partner = new TestPki('Partner <b>Root</b> CA');
  try {
    const alice = await receiveFromUnknownRoot(fx.store, partner, 'partner-alice');
    const fp = partner.caCert.fingerprint256;
    const officer = await fx.client('officer');
    const seen = await (await officer.request('/admin/directory')).text();
    assert.ok(seen.includes(`data-root="${fp}"`), 'listed');
    assert.ok(seen.includes('&lt;b') && !seen.includes('<b>Root'), 'the name is escaped');
    assert.ok(seen.includes(alice.email));
    assert.ok(!seen.includes('/admin/directory/roots/trust'), 'no decision buttons for an officer');
    const dash = await (await officer.request('/admin')).text();
    assert.match(dash, /data-unknown-roots><strong>1<\/strong><a href="\/admin\/directory#roots">/);
    for (const role of ['officer', 'helpdesk', 'auditor', 'user'] as const) {
      const b = await fx.client(role);
      for (const action of ['trust', 'decline', 'reopen']) assert.equal((await b.request(`/admin/directory/roots/${action}`, { form: { fingerprint: fp, confirm: fp } })).status, 403, `${role} ${action}`);
    }
    assert.equal(await fx.store.findCertificateByFingerprint(fp), undefined, 'nothing trusted by a refused request');

    const admin = await fx.client('admin');
    const listed = await (await admin.request('/admin/directory')).text();
    assert.ok(listed.includes('/admin/directory/roots/trust') && listed.includes('/admin/directory/roots/decline'));
    // The first step only shows the whole fingerprint to compare.
    const confirm = await admin.request('/admin/directory/roots/trust', { form: { fingerprint: fp } });
    assert.equal(confirm.status, 200);
    const confirmHtml = await confirm.text();
    assert.ok(confirmHtml.includes(fp.match(/.{4}/g)!.join(' ')), 'the fingerprint, grouped');
    assert.ok(confirmHtml.includes(en.directory.confirmTitle));
    assert.equal(await fx.store.findCertificateByFingerprint(fp), undefined, 'not trusted by the first step');
    // A confirmation for another fingerprint does not trust this one.
    await admin.request('/admin/directory/roots/trust', { form: { fingerprint: fp, confirm: 'ab'.repeat(32) } });
    assert.equal(await fx.store.findCertificateByFingerprint(fp), undefined);
    const done = await admin.request('/admin/directory/roots/trust', { form: { fingerprint: fp, confirm: fp } });
    assert.equal(done.status, 200);
    const doneHtml = await done.text();
    assert.ok(doneHtml.includes(en.directory.kept(alice.email)), doneHtml.slice(0, 2000));
    assert.equal((await fx.store.findCertificateByFingerprint(fp))!.trust, 'trusted');
    assert.equal((await fx.store.findRecipientCertificate(alice.email))!.certificate.fingerprint256, alice.cert.fingerprint256);
    assert.ok(!doneHtml.includes(`data-root="${fp}"`), 'no longer waiting');
    assert.ok((await fx.store.auditLog({ object: fp })).some((e) => e.action === 'root.trust' && e.actor === `console:${ROLE_PEOPLE.admin!.email}`));
    assert.match(await (await admin.request('/admin')).text(), /data-unknown-roots><strong>0</);
    // Again, or a fingerprint nobody recorded: refused, nothing changed.
    assert.equal((await admin.request('/admin/directory/roots/trust', { form: { fingerprint: fp, confirm: fp } })).status, 400);
    assert.equal((await admin.request('/admin/directory/roots/trust', { form: { fingerprint: 'cd'.repeat(32) } })).status, 400);
    assert.equal((await admin.request('/admin/directory/roots/decline', { form: { fingerprint: 'not hex' } })).status, 400);
    assert.equal((await admin.request('/admin/directory/roots/decline', { form: {} })).status, 400);
  } finally {
    partner.cleanup();
  }
});

test('CA roots waiting: decline moves a root to the declined list, reconsider brings it back (audited)', async () => {
  const partner = new TestPki('Declined Partner Root');
  try {
    await receiveFromUnknownRoot(fx.store, partner, 'partner-bob');
    const fp = partner.caCert.fingerprint256;
    const admin = await fx.client('admin');
    const declined = await admin.request('/admin/directory/roots/decline', { form: { fingerprint: fp } });
    assert.equal(declined.status, 200);
    const html = await declined.text();
    assert.ok(html.includes(en.directory.declined(partner.caCert.subjectText)));
    assert.ok(html.includes(en.directory.declinedRoots));
    assert.ok(html.includes('/admin/directory/roots/reopen'));
    assert.ok((await fx.store.auditLog({ object: fp })).some((e) => e.action === 'root.decline' && e.actor === `console:${ROLE_PEOPLE.admin!.email}`));
    const reopened = await admin.request('/admin/directory/roots/reopen', { form: { fingerprint: fp } });
    assert.equal(reopened.status, 200);
    assert.ok((await reopened.text()).includes(en.directory.reopened(partner.caCert.subjectText)));
    assert.equal((await admin.request('/admin/directory/roots/reopen', { form: { fingerprint: fp } })).status, 400);
    assert.equal(await fx.store.findCertificateByFingerprint(fp), undefined);
  } finally {
    partner.cleanup();
  }
});
