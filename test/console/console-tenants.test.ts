/**
 * The signing service on the console (administrators only): a tenant with its
 * domain, an identity issued by the CA or uploaded as PKCS#12, an API key shown
 * once that then signs through the API (openssl cms verifies), its rate limit
 * and its revocation, each audited; everyone else refused.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportPkcs12 } from '../../src/keys/export-pkcs12.ts';
import { TenantDirectory } from '../../src/store/tenant-directory.ts';
import { findCertificateAuthority } from '../../src/ca/certificate-authority.ts';
import { encodePem } from '../../src/asn1/pem.ts';
import { TestPki } from '../helpers/pki.ts';
import { draftMessage } from '../cli/run-cli.ts';
import { startAdminFixture, ROLE_PEOPLE, type AdminFixture } from './admin-fixture.ts';

let fx: AdminFixture;
const dir = mkdtempSync(join(tmpdir(), 'kakitome-console-tenants-'));
const pki = new TestPki('Tenant Upload CA');
before(async () => {
  fx = await startAdminFixture();
});
after(async () => {
  await fx?.close();
  pki.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

const sign = (key: string, message: Uint8Array) => fetch(new URL('/api/v1/sign', fx.server.url), { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'message/rfc822' }, body: message });

test('a tenant, an identity from the CA, a key shown once that signs through the API; rate limit and revocation', async () => {
  const admin = await fx.client('admin');
  assert.equal((await admin.request('/admin/tenants', { form: { name: 'acme', domains: 'acme.example' } })).status, 200);
  assert.deepEqual((await new TenantDirectory(fx.store).findTenant('acme'))!.domains, ['acme.example']);
  // A domain has one tenant; a bad name is refused.
  assert.equal((await admin.request('/admin/tenants', { form: { name: 'other', domains: 'acme.example' } })).status, 400);
  assert.equal((await admin.request('/admin/tenants', { form: { name: 'Bad Name!', domains: 'x.example' } })).status, 400);

  const identity = new FormData();
  identity.set('tenant', 'acme');
  identity.set('email', 'news@acme.example');
  identity.set('key-type', 'p256');
  const issued = await admin.request('/admin/tenants/identity', { form: identity });
  assert.equal(issued.status, 200, await issued.clone().text());
  assert.deepEqual((await new TenantDirectory(fx.store).findTenant('acme'))!.identities, ['news@acme.example']);
  const outside = new FormData();
  outside.set('tenant', 'acme');
  outside.set('email', 'news@elsewhere.example');
  assert.equal((await admin.request('/admin/tenants/identity', { form: outside })).status, 400, 'an address outside the tenant\'s domains');

  const created = await admin.request('/admin/tenants/keys', { form: { tenant: 'acme', scope: ['sign'], rate: '', label: 'newsletter' } });
  assert.equal(created.status, 200);
  const html = await created.text();
  const token = /data-api-key>(kk_[0-9a-f]{16}_[A-Za-z0-9_-]{43})</.exec(html)![1]!;
  const id = token.slice(3, 19);
  assert.equal(created.headers.get('cache-control'), 'no-store');
  const later = await (await admin.request('/admin/tenants')).text();
  assert.ok(later.includes(id) && !later.includes(token), 'the key is shown once; its id stays');

  const signed = await sign(token, draftMessage('news@acme.example', 'someone@example.com', 'hello'));
  assert.equal(signed.status, 200, await signed.clone().text());
  const file = join(dir, 'signed.eml');
  writeFileSync(file, Buffer.from(await signed.arrayBuffer()));
  const ca = await findCertificateAuthority(fx.store);
  const chain = join(dir, 'chain.pem');
  writeFileSync(chain, [ca.certificate, ...(await fx.store.findIssuerChain(ca.certificate))].map((c) => encodePem('CERTIFICATE', c.der)).join(''));
  execFileSync('openssl', ['cms', '-verify', '-in', file, '-CAfile', chain, '-purpose', 'any', '-out', '/dev/null'], { stdio: 'pipe' });

  assert.equal((await admin.request(`/admin/tenants/keys/${id}/limit`, { form: { rate: '2' } })).status, 200);
  assert.equal((await new TenantDirectory(fx.store).findApiKey(id))!.ratePerMinute, 2);
  assert.equal((await admin.request(`/admin/tenants/keys/${id}/limit`, { form: { rate: '-1' } })).status, 400);
  assert.equal((await admin.request('/admin/tenants/keys/0000000000000000/limit', { form: { rate: '5' } })).status, 404);
  assert.equal((await admin.request(`/admin/tenants/keys/${id}/revoke`, { form: {} })).status, 200);
  assert.equal((await sign(token, draftMessage('news@acme.example', 'someone@example.com', 'again'))).status, 401);
  const audit = (await fx.store.auditLog({ limit: 200 })).filter((e) => e.actor === `console:${ROLE_PEOPLE.admin!.email}`).map((e) => e.action);
  for (const a of ['tenant.add', 'api-key.create', 'api-key.rate-limit', 'api-key.revoke']) assert.ok(audit.includes(a), a);
});

test('an identity uploaded as PKCS#12 (wrong password refused), and nobody but an administrator reaches these routes', async () => {
  const admin = await fx.client('admin');
  await admin.request('/admin/tenants', { form: { name: 'upload', domains: 'example.com' } });
  const id = pki.identity('p256', 'billing');
  const p12 = exportPkcs12({ key: id.key, certificate: id.cert, chain: [pki.caCert], password: 'file pass', iterations: 2048 });
  const form = (password: string) => {
    const f = new FormData();
    f.set('tenant', 'upload');
    f.set('p12', new Blob([p12]), 'billing.p12');
    f.set('password', password);
    return f;
  };
  assert.equal((await admin.request('/admin/tenants/identity', { form: form('wrong') })).status, 400);
  const ok = await admin.request('/admin/tenants/identity', { form: form('file pass') });
  assert.equal(ok.status, 200, await ok.clone().text());
  assert.deepEqual((await new TenantDirectory(fx.store).findTenant('upload'))!.identities, ['billing@example.com']);
  const both = form('file pass');
  both.set('email', 'x@example.com');
  assert.equal((await admin.request('/admin/tenants/identity', { form: both })).status, 400, 'one of address or file');

  for (const role of ['officer', 'auditor', 'helpdesk', 'user'] as const) {
    const b = await fx.client(role);
    assert.equal((await b.request('/admin/tenants')).status, 403, role);
    assert.equal((await b.request('/admin/tenants/keys', { form: { tenant: 'upload', scope: ['sign', 'admin'] } })).status, 403, role);
  }
  assert.equal((await new TenantDirectory(fx.store).listApiKeys('upload')).length, 0);
  assert.equal((await admin.request('/admin/tenants/keys', { form: { tenant: 'upload', scope: ['sign'] }, origin: 'http://evil.example' })).status, 403, 'cross-site');
});

test('retiring an identity from the console: its key stops signing through the API, audited; another tenant\'s address and forged requests are refused', async () => {
  const admin = await fx.client('admin');
  assert.equal((await admin.request('/admin/tenants', { form: { name: 'shop', domains: 'shop.example' } })).status, 200);
  const identity = new FormData();
  identity.set('tenant', 'shop');
  identity.set('email', 'orders@shop.example');
  identity.set('key-type', 'p256');
  assert.equal((await admin.request('/admin/tenants/identity', { form: identity })).status, 200);
  const token = /data-api-key>(kk_[0-9a-f]{16}_[A-Za-z0-9_-]{43})</.exec(await (await admin.request('/admin/tenants/keys', { form: { tenant: 'shop', scope: ['sign'] } })).text())![1]!;
  assert.equal((await sign(token, draftMessage('orders@shop.example', 'someone@example.com', 'before'))).status, 200);
  const page = await (await admin.request('/admin/tenants')).text();
  assert.match(page, /data-identity="orders@shop\.example"/);

  // Not this tenant's address (it is acme's, from the first test, or nobody's): refused, nothing retired.
  const foreign = await admin.request('/admin/tenants/identity/retire', { form: { tenant: 'shop', address: 'news@acme.example' } });
  assert.equal(foreign.status, 404);
  assert.equal((await admin.request('/admin/tenants/identity/retire', { form: { tenant: 'shop', address: 'orders@shop.example' }, origin: 'http://evil.example' })).status, 403, 'cross-site');
  assert.equal((await admin.request('/admin/tenants/identity/retire', { form: { tenant: 'shop' } })).status, 400);
  const helpdesk = await fx.client('helpdesk');
  assert.equal((await helpdesk.request('/admin/tenants/identity/retire', { form: { tenant: 'shop', address: 'orders@shop.example' } })).status, 403);
  assert.equal((await sign(token, draftMessage('orders@shop.example', 'someone@example.com', 'still'))).status, 200, 'nothing was retired by the refusals');

  const done = await admin.request('/admin/tenants/identity/retire', { form: { tenant: 'shop', address: 'orders@shop.example' } });
  assert.equal(done.status, 200);
  assert.match(await done.text(), /orders@shop\.example no longer signs: 1 key retired/);
  assert.notEqual((await sign(token, draftMessage('orders@shop.example', 'someone@example.com', 'after'))).status, 200, 'the retired key no longer signs');
  const again = await admin.request('/admin/tenants/identity/retire', { form: { tenant: 'shop', address: 'orders@shop.example' }, headers: { 'accept-language': 'ja' } });
  assert.match(await again.text(), /署名に使える鍵が残っていません/);
  const audit = (await fx.store.auditLog({ limit: 500 })).filter((e) => e.actor === `console:${ROLE_PEOPLE.admin!.email}`);
  assert.ok(audit.some((e) => e.action === 'tenant.identity.retire' && e.object === 'orders@shop.example' && /^tenant shop: keys /.test(e.detail ?? '')));
  assert.ok(audit.some((e) => e.action === 'key.retire'));
});

test('signing settings from the console: shown and saved through the library (both languages), DKIM without a key refused, hostile forms and other roles refused', async () => {
  const admin = await fx.client('admin');
  assert.equal((await admin.request('/admin/tenants', { form: { name: 'news', domains: 'news.example' } })).status, 200);
  const page = await (await admin.request('/admin/tenants')).text();
  assert.match(page, /<form method="post" action="\/admin\/tenants\/settings"[^>]*data-settings="news"/);
  const ja = await (await admin.request('/admin/tenants', { headers: { 'accept-language': 'ja' } })).text();
  assert.match(ja, /署名の設定/);

  const saved = await admin.request('/admin/tenants/settings', { form: { tenant: 'news', opaque: 'on', hash: 'sha384' } });
  assert.equal(saved.status, 200, await saved.clone().text());
  assert.match(await saved.text(), /Tenant news: the settings are in force from the next message/);
  assert.deepEqual((await new TenantDirectory(fx.store).findTenant('news'))!.signSettings, { opaque: true, hash: 'sha384' });
  const shown = await (await admin.request('/admin/tenants')).text();
  const form = /<form[^>]*data-settings="news"[\s\S]*?<\/form>/.exec(shown)![0];
  assert.match(form, /name="opaque" value="on" checked/);
  assert.match(form, /<option value="sha384" selected>/);
  assert.doesNotMatch(form, /name="dkim" value="on" checked/);

  // DKIM with no active DKIM key for news.example: refused as the CLI and the API refuse it, nothing changed.
  const dkim = await admin.request('/admin/tenants/settings', { form: { tenant: 'news', dkim: 'on', hash: 'sha512' }, headers: { 'accept-language': 'ja' } });
  assert.equal(dkim.status, 400);
  assert.match(await dkim.text(), /no active DKIM key for its domains \(news\.example\)/);
  assert.deepEqual((await new TenantDirectory(fx.store).findTenant('news'))!.signSettings, { opaque: true, hash: 'sha384' });

  // Unticked boxes are off; "default" clears the digest.
  const cleared = await admin.request('/admin/tenants/settings', { form: { tenant: 'news', hash: 'default' }, headers: { 'accept-language': 'ja' } });
  assert.equal(cleared.status, 200);
  assert.match(await cleared.text(), /テナント news: 次のメッセージから/);
  assert.deepEqual((await new TenantDirectory(fx.store).findTenant('news'))!.signSettings, {});

  assert.equal((await admin.request('/admin/tenants/settings', { form: { tenant: 'news', hash: 'md5' } })).status, 400);
  assert.equal((await admin.request('/admin/tenants/settings', { form: { hash: 'sha256' } })).status, 400);
  assert.equal((await admin.request('/admin/tenants/settings', { form: { tenant: 'nobody', opaque: 'on' } })).status, 404);
  assert.equal((await admin.request('/admin/tenants/settings', { form: { tenant: 'news', opaque: 'on' }, origin: 'http://evil.example' })).status, 403, 'cross-site');
  for (const role of ['officer', 'auditor', 'helpdesk', 'user'] as const) {
    assert.equal((await (await fx.client(role)).request('/admin/tenants/settings', { form: { tenant: 'news', opaque: 'on' } })).status, 403, role);
  }
  assert.deepEqual((await new TenantDirectory(fx.store).findTenant('news'))!.signSettings, {});
  const audit = (await fx.store.auditLog({ limit: 500 })).filter((e) => e.actor === `console:${ROLE_PEOPLE.admin!.email}` && e.action === 'tenant.settings');
  assert.ok(audit.some((e) => e.object === 'news' && e.detail === '{"opaque":true,"hash":"sha384"}'));
});
