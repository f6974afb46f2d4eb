/**
 * A tenant's signing settings (kakitome tenant settings: opaque, hash, pss, dkim;
 * TenantSignSettings) apply to POST /api/v1/sign when the query does not say, and
 * to every message of the SMTP submission port, which has no per-message options
 * (issue 10). What comes out is checked by independent tools: dkimpy verifies the
 * DKIM signature against a DNS server on loopback, openssl cms the S/MIME layer and
 * names the digest and signature algorithms. A setting is in force from the next
 * message, without a restart; DKIM asked for by a setting is never left out (a
 * domain without a key is refused, nothing relayed).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { encodePem } from '../../src/asn1/pem.ts';
import { initCertificateAuthority } from '../../src/ca/init-certificate-authority.ts';
import { issueMailboxCertificate } from '../../src/ca/issue-mailbox-certificate.ts';
import { masterKeyFromBytes } from '../../src/keys/master-key.ts';
import { Metrics } from '../../src/server/metrics.ts';
import { RateLimiter } from '../../src/server/rate-limiter.ts';
import type { ServiceContext } from '../../src/server/service-context.ts';
import { resolveSubmissionConfig } from '../../src/server/smtp/submission-config.ts';
import { startSubmission, type RunningSubmission } from '../../src/server/smtp/start-submission.ts';
import { startServer, type RunningServer } from '../../src/server/start-server.ts';
import { DkimKeyDirectory } from '../../src/store/dkim-key-directory.ts';
import { openSqliteEngine } from '../../src/store/sqlite-engine.ts';
import { Store } from '../../src/store/store.ts';
import { TenantDirectory } from '../../src/store/tenant-directory.ts';
import { Sink } from '../gateway/gateway-fixture.ts';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.ts';
import { dkimpyVerify } from '../peers/dkimpy.ts';

const dir = mkdtempSync(join(tmpdir(), 'kakitome-tenant-settings-'));
let store: Store;
let tenants: TenantDirectory;
let server: RunningServer;
let smtp: RunningSubmission;
let sink: Sink;
let dns: DnsServer;
const keys: Record<string, string> = {};

function draft(from: string): Buffer {
  return Buffer.from(`From: ${from}\r\nTo: customer@example.net\r\nSubject: Your statement\r\nDate: Sun, 06 Dec 2026 10:00:00 +0000\r\nMessage-ID: <${randomBytes(6).toString('hex')}@x>\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nThe statement is ready. Grüße.\r\n`);
}

async function signHttp(tenant: string, message: Buffer, query = ''): Promise<{ status: number; body: Buffer }> {
  const r = await fetch(new URL(`/api/v1/sign${query}`, server.url), { method: 'POST', headers: { authorization: `Bearer ${keys[tenant]}`, 'content-type': 'message/rfc822' }, body: message });
  return { status: r.status, body: Buffer.from(await r.arrayBuffer()) };
}

/** Submits through the submission port (nodemailer, AUTH); the relayed message, or the reply that refused it. */
async function submit(tenant: string, message: Buffer): Promise<{ relayed?: Buffer; code: number; response: string }> {
  const before = sink.deliveries.length;
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: smtp.listening.port, secure: false, ignoreTLS: true, auth: { user: tenant, pass: keys[tenant]! } });
  try {
    const info = await transport.sendMail({ envelope: { from: 'bounces@platform.example', to: ['customer@example.net'] }, raw: message });
    assert.equal(sink.deliveries.length, before + 1);
    return { relayed: sink.deliveries.at(-1)!.message, code: 250, response: info.response };
  } catch (e) {
    assert.equal(sink.deliveries.length, before, 'nothing relayed');
    return { code: (e as { responseCode?: number }).responseCode ?? 0, response: String((e as Error).message) };
  } finally {
    transport.close();
  }
}

/** openssl: the signature verifies against the CA, and the algorithms openssl reads from the CMS structure. */
function openssl(signed: Buffer): { algorithms: string } {
  const file = join(dir, `check-${randomBytes(4).toString('hex')}.eml`);
  writeFileSync(file, signed);
  execFileSync('openssl', ['cms', '-verify', '-in', file, '-CAfile', join(dir, 'root.pem'), '-purpose', 'smimesign', '-out', '/dev/null'], { stdio: 'pipe' });
  const printed = execFileSync('openssl', ['cms', '-cmsout', '-print', '-in', file], { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
  return { algorithms: [...printed.matchAll(/algorithm: (\S+)/g)].map((m) => m[1]).join(' ') };
}

const headerOf = (m: Buffer) => m.toString('latin1').split('\r\n\r\n')[0]!;

before(async () => {
  store = await Store.open(openSqliteEngine(join(dir, 'kakitome.db')), { masterKey: masterKeyFromBytes(randomBytes(32)), actor: 'tester' });
  const { root } = await initCertificateAuthority(store, { name: 'Settings Test CA', keyType: 'p256' });
  writeFileSync(join(dir, 'root.pem'), encodePem('CERTIFICATE', root.certificate.der));
  tenants = new TenantDirectory(store);
  await tenants.addTenant('acme', ['acme.test']);
  await tenants.addTenant('initech', ['initech.test']);
  for (const [tenant, email, keyType] of [['acme', 'news@acme.test', 'rsa2048'], ['acme', 'alerts@acme.test', 'p256'], ['initech', 'hr@initech.test', 'rsa2048']] as const) {
    await issueMailboxCertificate(store, { email, keyType });
    await tenants.registerIdentities(tenant, [email]);
  }
  for (const tenant of ['acme', 'initech']) keys[tenant] = (await tenants.createApiKey(tenant, { scopes: ['sign'] })).token;
  const record = (await new DkimKeyDirectory(store).addKey('acme.test', 's2026', { algorithm: 'rsa-2048' })).dns;
  dns = await startDnsServer({ zones: ['acme.test', 'initech.test'], txt: [[record.name, record.value]] });
  server = await startServer(store, { host: '127.0.0.1', port: 0, maxMessageBytes: 1 << 20, shutdownGraceMs: 5000, revocation: 'allow-unknown' }, { log: () => {}, version: 'test' });
  sink = await new Sink().start();
  const ctx: ServiceContext = {
    store, tenants, metrics: new Metrics(), rateLimiter: new RateLimiter(), log: () => {}, version: 'test', shuttingDown: () => false,
    config: { host: '127.0.0.1', port: 0, maxMessageBytes: 1 << 20, shutdownGraceMs: 1000, revocation: 'allow-unknown' },
  };
  smtp = await startSubmission(ctx, { ...resolveSubmissionConfig({ smtp: '127.0.0.1:0', relay: `127.0.0.1:${sink.port}` }, 1 << 20)!, relayTimeoutMs: 5_000 });
});

after(async () => {
  await smtp?.stop();
  await sink?.stop();
  // Closing the server closes its store.
  await server?.close();
  await dns?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('by default: multipart/signed, SHA-256, PKCS#1 v1.5, no DKIM, on both ports', async () => {
  const http = await signHttp('acme', draft('news@acme.test'));
  assert.equal(http.status, 200, http.body.toString());
  const smtpOut = await submit('acme', draft('news@acme.test'));
  assert.equal(smtpOut.code, 250, smtpOut.response);
  for (const m of [http.body, smtpOut.relayed!]) {
    assert.match(headerOf(m), /^Content-Type: multipart\/signed/m);
    assert.doesNotMatch(headerOf(m), /DKIM-Signature/);
    const { algorithms } = openssl(m);
    assert.match(algorithms, /sha256/);
    assert.match(algorithms, /rsaEncryption/);
  }
});

test('opaque, SHA-384 and DKIM as settings: applied to SMTP submission and to POST /sign without a query; the query still overrides', async () => {
  const t = await tenants.setSignSettings('acme', { opaque: true, hash: 'sha384', dkim: true });
  assert.deepEqual(t.signSettings, { opaque: true, hash: 'sha384', dkim: true });
  const smtpOut = await submit('acme', draft('News <news@acme.test>'));
  assert.equal(smtpOut.code, 250, smtpOut.response);
  const http = await signHttp('acme', draft('news@acme.test'));
  assert.equal(http.status, 200, http.body.toString());
  for (const m of [smtpOut.relayed!, http.body]) {
    assert.match(headerOf(m), /^Content-Type: application\/pkcs7-mime; smime-type=signed-data/m);
    assert.match(headerOf(m), /d=acme\.test; s=s2026/);
    const dkim = await dkimpyVerify(m, dns, 0);
    assert.equal(dkim.ok, true, dkim.output);
    assert.match(openssl(m).algorithms, /sha384/);
  }
  const overridden = await signHttp('acme', draft('news@acme.test'), '?opaque=false&dkim=false&hash=sha256');
  assert.equal(overridden.status, 200);
  assert.match(headerOf(overridden.body), /^Content-Type: multipart\/signed/m);
  assert.doesNotMatch(headerOf(overridden.body), /DKIM-Signature/);
  assert.match(openssl(overridden.body).algorithms, /sha256/);
});

test('pss as a setting: RSASSA-PSS for the RSA identity, ECDSA as before for the P-256 one (not a refusal)', async () => {
  await tenants.setSignSettings('acme', { opaque: false, hash: null, dkim: false, pss: true });
  const rsa = await submit('acme', draft('news@acme.test'));
  assert.equal(rsa.code, 250, rsa.response);
  assert.match(openssl(rsa.relayed!).algorithms, /rsassaPss/);
  const ec = await submit('acme', draft('alerts@acme.test'));
  assert.equal(ec.code, 250, ec.response);
  assert.match(openssl(ec.relayed!).algorithms, /ecdsa-with-SHA256/);
  // pss=true asked of a P-256 identity is refused, as it was before settings.
  assert.equal((await signHttp('acme', draft('alerts@acme.test'), '?pss=true')).status, 400);
});

test('DKIM by setting for a domain without a key: the setting is refused; a key retired after it: refused on both ports, nothing relayed, never sent without it', async () => {
  // No active DKIM key for any of initech's domains: DKIM cannot be turned on.
  await assert.rejects(tenants.setSignSettings('initech', { dkim: true }), (e: Error & { code?: string }) => e.code === 'KEY_INVALID' && /no active DKIM key for its domains \(initech\.test\)/.test(e.message));
  assert.deepEqual((await tenants.findTenant('initech'))!.signSettings, {});
  const dkim = new DkimKeyDirectory(store);
  await dkim.addKey('initech.test', 'gone', { algorithm: 'ed25519' });
  await tenants.setSignSettings('initech', { dkim: true });
  await dkim.retireKey('initech.test', 'gone');
  const smtpOut = await submit('initech', draft('hr@initech.test'));
  assert.equal(smtpOut.code, 550);
  assert.match(smtpOut.response, /No active DKIM key for initech\.test.*the tenant's setting dkim asked for it: turn it off for tenant "initech"/);
  const http = await signHttp('initech', draft('hr@initech.test'));
  assert.equal(http.status, 422);
  // Back to the defaults: stored as nothing, and in force at the next message.
  const t = await tenants.setSignSettings('initech', { dkim: false });
  assert.deepEqual(t.signSettings, {});
  assert.equal((await store.engine.all("SELECT sign_settings FROM tenants WHERE name = 'initech'"))[0]!.sign_settings, null);
  assert.equal((await submit('initech', draft('hr@initech.test'))).code, 250);
  const audit = await store.auditLog({ limit: 50 });
  assert.ok(audit.some((e) => e.action === 'tenant.settings' && e.detail === '{"dkim":true}'));
});

test('settings are checked: an unknown digest is refused, an unknown tenant is NOT_FOUND, a bad stored value is ignored', async () => {
  await assert.rejects(tenants.setSignSettings('acme', { hash: 'md5' as never }), /hash md5/);
  await assert.rejects(tenants.setSignSettings('nobody', { opaque: true }), (e: Error & { code?: string }) => e.code === 'NOT_FOUND');
  await store.engine.run("UPDATE tenants SET sign_settings = ? WHERE name = 'initech'", ['{"opaque":"yes","hash":"md5","dkim":1,"extra":true}']);
  assert.deepEqual((await tenants.findTenant('initech'))!.signSettings, {});
  await store.engine.run("UPDATE tenants SET sign_settings = ? WHERE name = 'initech'", ['not json']);
  assert.deepEqual((await tenants.findTenant('initech'))!.signSettings, {});
});

// GET and PATCH /api/v1/tenants/{tenant}/settings (scope admin): the same rules through HTTP.

const admins: Record<string, { token: string; id: string }> = {};

async function settingsHttp(token: string | undefined, tenant: string, body?: string | Buffer, contentType = 'application/json'): Promise<{ status: number; json: Record<string, unknown> }> {
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = contentType;
  const r = await fetch(new URL(`/api/v1/tenants/${tenant}/settings`, server.url), { method: body === undefined ? 'GET' : 'PATCH', headers, ...(body !== undefined ? { body } : {}) });
  const text = await r.text();
  if (r.status >= 400) assert.equal(r.headers.get('content-type'), 'application/problem+json', text);
  return { status: r.status, json: text ? JSON.parse(text) as Record<string, unknown> : {} };
}

test('API: an admin key reads and changes its own tenant\'s settings, in force from the next message; audited under the key', async () => {
  for (const tenant of ['acme', 'initech']) {
    const { token, key } = await tenants.createApiKey(tenant, { scopes: ['admin'] });
    admins[tenant] = { token, id: key.id };
  }
  await tenants.setSignSettings('acme', { opaque: false, hash: null, pss: false, dkim: false });
  const shown = await settingsHttp(admins.acme!.token, 'acme');
  assert.equal(shown.status, 200);
  assert.deepEqual(shown.json, { tenant: 'acme', signing: { opaque: false, hash: 'default', pss: false, dkim: false } });

  const changed = await settingsHttp(admins.acme!.token, 'acme', JSON.stringify({ hash: 'sha512', dkim: true }));
  assert.equal(changed.status, 200, JSON.stringify(changed.json));
  assert.deepEqual(changed.json, { tenant: 'acme', signing: { opaque: false, hash: 'sha512', pss: false, dkim: true } });
  assert.deepEqual((await tenants.findTenant('acme'))!.signSettings, { hash: 'sha512', dkim: true });
  const signed = await signHttp('acme', draft('news@acme.test'));
  assert.equal(signed.status, 200, signed.body.toString());
  assert.match(headerOf(signed.body), /^DKIM-Signature:/m);
  assert.match(openssl(signed.body).algorithms, /sha512/);

  // A member not sent stays; "default" and false go back; merge-patch+json is taken too.
  const back = await settingsHttp(admins.acme!.token, 'acme', JSON.stringify({ hash: 'default', dkim: false, opaque: true }), 'application/merge-patch+json');
  assert.deepEqual(back.json, { tenant: 'acme', signing: { opaque: true, hash: 'default', pss: false, dkim: false } });
  assert.deepEqual((await settingsHttp(admins.acme!.token, 'acme', '{}')).json.signing, { opaque: true, hash: 'default', pss: false, dkim: false });
  await tenants.setSignSettings('acme', { opaque: false });

  const actor = `api:acme/${admins.acme!.id}`;
  const audit = (await store.auditLog({ limit: 100 })).filter((e) => e.actor === actor);
  assert.ok(audit.some((e) => e.action === 'tenant.settings' && e.detail === '{"hash":"sha512","dkim":true}'), 'the change, under the key');
  assert.ok(audit.some((e) => e.action === 'api.tenant.settings'), 'the read');
});

test('API: DKIM is refused as the CLI refuses it, with no active key for the tenant\'s domains (422 KEY_INVALID, nothing changed)', async () => {
  const before = (await tenants.findTenant('initech'))!.signSettings;
  const r = await settingsHttp(admins.initech!.token, 'initech', JSON.stringify({ dkim: true, opaque: true }));
  assert.equal(r.status, 422);
  assert.equal(r.json.code, 'KEY_INVALID');
  // Worded for an API client, whose administrator adds the key: no command line in it.
  assert.match(String(r.json.detail), /no active DKIM key for its domains \(initech\.test\).*Add a DKIM key for initech\.test first and publish its DNS record\./);
  assert.doesNotMatch(String(r.json.detail), /kakitome|--/);
  assert.deepEqual((await tenants.findTenant('initech'))!.signSettings, before, 'nothing of the change was kept');
  const refused = (await store.auditLog({ limit: 50 })).find((e) => e.action === 'api.tenant.settings.change.refused' && e.actor === `api:initech/${admins.initech!.id}`);
  assert.ok(refused, 'the refusal is audited');
});

test('API: hostile bodies are refused with problem details, nothing changed', async () => {
  const before = (await tenants.findTenant('acme'))!.signSettings;
  const cases: Array<[string | Buffer, number, string, string?]> = [
    ['{"hash":"md5"}', 400, 'INVALID_ARGUMENT'],
    ['{"hash":"SHA256"}', 400, 'INVALID_ARGUMENT'],
    ['{"opaque":"yes"}', 400, 'INVALID_ARGUMENT'],
    ['{"dkim":1}', 400, 'INVALID_ARGUMENT'],
    ['{"pss":null}', 400, 'INVALID_ARGUMENT'],
    ['{"sevenBit":false}', 400, 'INVALID_ARGUMENT'],
    ['{"__proto__":{"dkim":true}}', 400, 'INVALID_ARGUMENT'],
    ['[]', 400, 'INVALID_ARGUMENT'],
    ['"dkim"', 400, 'INVALID_ARGUMENT'],
    ['null', 400, 'INVALID_ARGUMENT'],
    ['{"opaque":true', 400, 'MALFORMED'],
    ['', 400, 'MALFORMED'],
    [Buffer.from([0xff, 0xfe, 0x7b, 0x7d]), 400, 'MALFORMED'],
    [`{"opaque":true,"pad":"${'x'.repeat(5000)}"}`, 413, 'LIMIT'],
    ['opaque=true', 415, 'INVALID_ARGUMENT', 'application/x-www-form-urlencoded'],
    ['{"opaque":true}', 415, 'INVALID_ARGUMENT', 'text/plain'],
  ];
  for (const [body, status, code, type] of cases) {
    const r = await settingsHttp(admins.acme!.token, 'acme', body, type);
    assert.equal(r.status, status, `${String(body).slice(0, 40)}: ${JSON.stringify(r.json)}`);
    assert.equal(r.json.code, code, String(body).slice(0, 40));
  }
  assert.deepEqual((await tenants.findTenant('acme'))!.signSettings, before);
});

test('API: wrong tenant (404, whether it exists or not), wrong scope (403), no key (401)', async () => {
  const before = (await tenants.findTenant('initech'))!.signSettings;
  for (const name of ['initech', 'nobody', 'default', 'ACME', '..', 'a'.repeat(200)]) {
    const read = await settingsHttp(admins.acme!.token, encodeURIComponent(name));
    assert.ok(read.status === 404 || read.status === 400, `${name}: ${read.status}`);
    assert.ok(!JSON.stringify(read.json).includes('"signing"'), name);
    const write = await settingsHttp(admins.acme!.token, encodeURIComponent(name), '{"opaque":true}');
    assert.ok(write.status === 404 || write.status === 400, `${name}: ${write.status}`);
  }
  assert.equal((await settingsHttp(admins.acme!.token, 'initech')).status, 404);
  assert.deepEqual((await tenants.findTenant('initech'))!.signSettings, before, 'another tenant\'s settings are never changed');
  // A sign-scoped key of the tenant itself: 403; no key or a wrong one: 401.
  assert.equal((await settingsHttp(keys.acme!, 'acme')).status, 403);
  assert.equal((await settingsHttp(keys.acme!, 'acme', '{"opaque":true}')).status, 403);
  assert.equal((await settingsHttp(undefined, 'acme')).status, 401);
  assert.equal((await settingsHttp(`kk_${admins.acme!.id}_${'A'.repeat(43)}`, 'acme', '{"opaque":true}')).status, 401);
  assert.equal((await tenants.findTenant('acme'))!.signSettings.opaque, undefined);
});

test('API: the OpenAPI document describes both operations from the same schemas', async () => {
  const doc = await (await fetch(new URL('/api/v1/openapi.json', server.url))).json() as { paths: Record<string, Record<string, { security?: unknown; requestBody?: { content: Record<string, { schema: { $ref?: string } }> }; responses: Record<string, { content?: Record<string, { schema: { $ref?: string } }> }> }>>; components: { schemas: Record<string, { properties?: Record<string, { enum?: string[] }>; additionalProperties?: unknown }> } };
  const path = doc.paths['/api/v1/tenants/{tenant}/settings']!;
  assert.deepEqual(Object.keys(path).sort(), ['get', 'patch']);
  assert.deepEqual(path.get!.security, [{ apiKey: ['admin'] }]);
  assert.equal(path.get!.responses['200']!.content!['application/json']!.schema.$ref, '#/components/schemas/TenantSettings');
  assert.equal(path.patch!.requestBody!.content['application/json']!.schema.$ref, '#/components/schemas/TenantSettingsChange');
  const change = doc.components.schemas.TenantSettingsChange!;
  assert.deepEqual(change.properties!.hash!.enum, ['sha256', 'sha384', 'sha512', 'default']);
  assert.equal(change.additionalProperties, false);
});
