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

test('DKIM by setting for a domain without a key: refused on both ports, nothing relayed, never sent without it', async () => {
  await tenants.setSignSettings('initech', { dkim: true });
  const smtpOut = await submit('initech', draft('hr@initech.test'));
  assert.equal(smtpOut.code, 550);
  assert.match(smtpOut.response, /No active DKIM key for initech\.test.*kakitome tenant settings initech --dkim off/);
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
