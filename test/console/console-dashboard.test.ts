/**
 * The administrators' dashboard reads the store: certificates expiring in 7/14/30
 * days, each CA's health (its certificate, its last CRL's nextUpdate and whether it
 * passed, its OCSP signer), the gateway's and the signing service's audit counts
 * of the last 24 hours, and new keys waiting for a decision.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { publishCrl } from '../../src/ca/publish-crl.ts';
import { issueMailboxCertificate } from '../../src/ca/issue-mailbox-certificate.ts';
import { findCertificateAuthority } from '../../src/ca/certificate-authority.ts';
import { issueOcspSigningCertificate } from '../../src/ca/issue-ocsp-signing-certificate.ts';
import { readCrlStatus } from '../../src/ca/crl-status.ts';
import { TestPki } from '../helpers/pki.ts';
import { startAdminFixture, type AdminFixture } from './admin-fixture.ts';
import { en } from '../../src/server/console/messages/en.ts';

let fx: AdminFixture;
const pkis = [new TestPki('Dashboard Peer One'), new TestPki('Dashboard Peer Two')];

before(async () => {
  fx = await startAdminFixture();
});
after(async () => {
  await fx?.close();
  for (const p of pkis) p.cleanup();
});

/** The text of the element carrying `attr` (first match), tags stripped. */
function cell(html: string, attr: string): string {
  const m = new RegExp(`<[a-z0-9]+ [^>]*${attr}[^>]*>([\\s\\S]*?)</(dd|tr|div)>`).exec(html);
  assert.ok(m, `no ${attr} on the page`);
  return m[1]!.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim();
}

async function dashboard(): Promise<string> {
  const admin = await fx.client('admin');
  const r = await admin.request('/admin');
  assert.equal(r.status, 200);
  return r.text();
}

test('expiring certificates are counted in 7, 14 and 30 days', async () => {
  await issueMailboxCertificate(fx.store, { email: 'soon@example.co.jp', keyType: 'p256', validityDays: 10 });
  await issueMailboxCertificate(fx.store, { email: 'later@example.co.jp', keyType: 'p256', validityDays: 25 });
  // Not counted: a revoked one, and one of someone else's (no key in the store).
  const [revoked] = await issueMailboxCertificate(fx.store, { email: 'revoked@example.co.jp', keyType: 'p256', validityDays: 12 });
  await fx.store.revokeCertificate(revoked!.certificate.fingerprint256, 1);
  const other = new TestPki('Expiring Partner CA');
  pkis.push(other);
  await fx.store.importCertificate(other.identity('p256', 'leaving-partner', { notAfter: new Date(fx.now().getTime() + 5 * 86_400_000) }).cert);
  const html = await dashboard();
  assert.match(cell(html, 'data-expiring="7"'), /^0 /);
  assert.match(cell(html, 'data-expiring="14"'), /^1 /);
  assert.match(cell(html, 'data-expiring="30"'), /^2 /);
});

test('CA health: the CRL is shown as never published, then due, then overdue once its nextUpdate passed; the OCSP signer when there is one', async () => {
  const issuing = await findCertificateAuthority(fx.store);
  let html = await dashboard();
  assert.ok(html.includes(`data-ca="${issuing.name}"`));
  const card = html.slice(html.indexOf(`data-ca="${issuing.name}"`));
  assert.equal(cell(card, 'data-health="crl"'), en.dashboard.crlNever);
  // `ca init` with an OCSP URL made the responder's certificate (30 days).
  assert.match(cell(card, 'data-health="ocsp"'), /^valid until /);
  assert.match(cell(card, 'data-health="validity"'), /days left/);

  const crl = await publishCrl(fx.store, { validityHours: 2 });
  assert.deepEqual(await readCrlStatus(fx.store, issuing.id), { crlNumber: crl.crlNumber, thisUpdate: crl.thisUpdate, nextUpdate: crl.nextUpdate });
  html = await dashboard();
  let mine = html.slice(html.indexOf(`data-ca="${issuing.name}"`));
  assert.match(cell(mine, 'data-health="crl"'), new RegExp(`^number ${crl.crlNumber}, next one due`));
  assert.ok(mine.includes('class="status good">number'));

  fx.advance(3 * 3_600_000);
  html = await dashboard();
  mine = html.slice(html.indexOf(`data-ca="${issuing.name}"`));
  assert.match(cell(mine, 'data-health="crl"'), /^overdue since /);
  assert.ok(mine.includes('class="status bad">overdue'));

  // 40 days on, the OCSP signer has expired and none replaced it; a new one is shown again.
  fx.advance(40 * 86_400_000);
  mine = (await dashboard());
  mine = mine.slice(mine.indexOf(`data-ca="${issuing.name}"`));
  assert.equal(cell(mine, 'data-health="ocsp"'), en.dashboard.ocspNone);
  const signer = await issueOcspSigningCertificate(fx.store, issuing);
  mine = await dashboard();
  mine = mine.slice(mine.indexOf(`data-ca="${issuing.name}"`));
  assert.match(cell(mine, 'data-health="ocsp"'), /^valid until /);
  assert.ok(signer.certificate.notAfter > fx.now());
  fx.advance(-40 * 86_400_000 - 3 * 3_600_000);
});

test('counters: audit rows of the last 24 hours per action, older ones not counted', async () => {
  const api = fx.store.actingAs('api:tenant-a');
  await api.audit('api.sign', 'x');
  fx.advance(-25 * 3_600_000);
  await api.audit('api.sign', 'old');
  await api.audit('message.hold', 'old');
  fx.advance(25 * 3_600_000);
  for (let i = 0; i < 3; i++) await api.audit('smtp.sign', 'x');
  await fx.store.audit('message.hold', 'id');
  const html = await dashboard();
  assert.match(cell(html, 'data-counter="api.sign"'), / 1$/);
  assert.match(cell(html, 'data-counter="smtp.sign"'), / 3$/);
  assert.match(cell(html, 'data-counter="message.hold"'), / 1$/);
  assert.match(cell(html, 'data-counter="api.verify"'), / 0$/);
});

test('pending approvals: a new key harvested for a known address is counted until accepted', async () => {
  const count = async () => Number(/^(\d+)/.exec(cell(await dashboard(), 'data-pending'))![1]);
  const before = await count();
  const first = pkis[0]!.identity('p256', 'partner');
  const second = pkis[1]!.identity('p256', 'partner');
  await fx.store.harvestCertificate(first.cert, { address: first.email });
  const r = await fx.store.harvestCertificate(second.cert, { address: second.email });
  assert.equal(r.filing, 'pending');
  assert.equal(await count(), before + 1);
  await fx.store.acceptCertificate(second.cert.fingerprint256, second.email);
  assert.equal(await count(), before);
});

test('the dashboard is for staff only: a person without a role is refused, an auditor and a helpdesk see it', async () => {
  const user = await fx.client('user');
  assert.equal((await user.request('/admin')).status, 403);
  for (const role of ['auditor', 'helpdesk', 'officer'] as const) assert.equal((await (await fx.client(role)).request('/admin')).status, 200, role);
  assert.equal((await (await fx.client('anonymous')).request('/admin')).status, 303);
});
