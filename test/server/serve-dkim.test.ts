/**
 * POST /api/v1/sign?dkim=true over a real socket: the S/MIME-signed message is
 * DKIM-signed with the From domain's active keys; dkimpy verifies every DKIM
 * signature against dnsmasq on loopback, openssl cms the S/MIME layer under it. A
 * tenant never signs with another tenant's domain key; a domain without a key is
 * refused, never sent without the DKIM signature the caller asked for.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodePem } from '../../src/asn1/pem.ts';
import { initCertificateAuthority } from '../../src/ca/init-certificate-authority.ts';
import { issueMailboxCertificate } from '../../src/ca/issue-mailbox-certificate.ts';
import { masterKeyFromBytes } from '../../src/keys/master-key.ts';
import { DkimKeyDirectory } from '../../src/store/dkim-key-directory.ts';
import { openSqliteEngine } from '../../src/store/sqlite-engine.ts';
import { Store } from '../../src/store/store.ts';
import { TenantDirectory } from '../../src/store/tenant-directory.ts';
import { startServer, type RunningServer } from '../../src/server/start-server.ts';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.ts';
import { dkimpyVerify } from '../peers/dkimpy.ts';

const dir = mkdtempSync(join(tmpdir(), 'kakitome-serve-dkim-'));
let store: Store;
let server: RunningServer;
let dns: DnsServer;
const keys: Record<string, string> = {};

function draft(from: string): Buffer {
  return Buffer.from(`From: ${from}\r\nTo: customer@example.net\r\nSubject: Your statement\r\nDate: Sun, 06 Dec 2026 10:00:00 +0000\r\nMessage-ID: <${randomBytes(6).toString('hex')}@x>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe statement is ready.\r\n`);
}

const sign = (key: string, message: Buffer, query: string) => fetch(new URL(`/api/v1/sign${query}`, server.url), {
  method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'message/rfc822' }, body: message,
});

before(async () => {
  store = await Store.open(openSqliteEngine(join(dir, 'kakitome.db')), { masterKey: masterKeyFromBytes(randomBytes(32)), actor: 'tester' });
  const { root } = await initCertificateAuthority(store, { name: 'DKIM Service CA', keyType: 'p256' });
  writeFileSync(join(dir, 'root.pem'), encodePem('CERTIFICATE', root.certificate.der));
  const tenants = new TenantDirectory(store);
  await tenants.addTenant('acme', ['acme.test']);
  await tenants.addTenant('globex', ['globex.test']);
  await tenants.addTenant('initech', ['initech.test']);
  for (const [tenant, email] of [['acme', 'news@acme.test'], ['globex', 'info@globex.test'], ['initech', 'hr@initech.test']] as const) {
    await issueMailboxCertificate(store, { email, keyType: 'rsa2048' });
    await tenants.registerIdentities(tenant, [email]);
    keys[tenant] = (await tenants.createApiKey(tenant, { scopes: ['sign'] })).token;
  }
  const dkim = new DkimKeyDirectory(store);
  const records = [
    (await dkim.addKey('acme.test', 'r2026', { algorithm: 'rsa-2048' })).dns,
    (await dkim.addKey('acme.test', 'e2026', { algorithm: 'ed25519' })).dns,
    (await dkim.addKey('globex.test', 'g1', { algorithm: 'rsa-2048' })).dns,
  ];
  dns = await startDnsServer({ zones: ['acme.test', 'globex.test', 'initech.test'], txt: records.map((r) => [r.name, r.value] as const) });
  server = await startServer(store, { host: '127.0.0.1', port: 0, maxMessageBytes: 1 << 20, shutdownGraceMs: 5000, revocation: 'allow-unknown' }, { log: () => {}, version: 'test' });
});

after(async () => {
  // Closing the server closes its store.
  await server?.close();
  await dns?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('dkim=true: DKIM over the S/MIME signature, both verified by independent tools', async () => {
  const r = await sign(keys.acme!, draft('News <news@acme.test>'), '?dkim=true');
  const signed = Buffer.from(await r.arrayBuffer());
  assert.equal(r.status, 200, signed.toString());
  const header = signed.toString('latin1').split('\r\n\r\n')[0]!;
  assert.equal(header.match(/^DKIM-Signature:/gm)?.length, 2, 'RSA and Ed25519');
  assert.match(header, /d=acme\.test; s=r2026/);
  assert.equal((await dkimpyVerify(signed, dns, 0)).ok, true, 'dkimpy: the RSA signature');
  assert.equal((await dkimpyVerify(signed, dns, 1)).ok, true, 'dkimpy: the Ed25519 signature');
  const file = join(dir, 'signed.eml');
  writeFileSync(file, signed);
  execFileSync('openssl', ['cms', '-verify', '-in', file, '-CAfile', join(dir, 'root.pem'), '-purpose', 'smimesign', '-out', '/dev/null'], { stdio: 'pipe' });
  const audit = await store.auditLog({ limit: 20 });
  assert.ok(audit.some((e) => e.action === 'key.use.dkim' && e.detail === 'r2026._domainkey.acme.test'));
  assert.ok(audit.some((e) => e.action === 'api.sign' && /DKIM r2026, e2026/.test(e.detail ?? '')));
});

test('without dkim=true nothing is DKIM-signed; opaque S/MIME is DKIM-signed too', async () => {
  const plain = Buffer.from(await (await sign(keys.acme!, draft('news@acme.test'), '')).arrayBuffer());
  assert.doesNotMatch(plain.toString('latin1').split('\r\n\r\n')[0]!, /DKIM-Signature/);
  const opaque = Buffer.from(await (await sign(keys.acme!, draft('news@acme.test'), '?dkim=true&opaque=true')).arrayBuffer());
  assert.equal((await dkimpyVerify(opaque, dns, 0)).ok, true);
});

test('a tenant never signs with another tenant\'s DKIM key; a domain without a key is refused', async () => {
  const before = (await store.auditLog({ limit: 1000 })).filter((e) => e.action === 'key.use.dkim' && /globex/.test(e.detail ?? '')).length;
  const cross = await sign(keys.acme!, draft('info@globex.test'), '?dkim=true');
  assert.equal(cross.status, 403, await cross.text());
  const after = (await store.auditLog({ limit: 1000 })).filter((e) => e.action === 'key.use.dkim' && /globex/.test(e.detail ?? '')).length;
  assert.equal(after, before, 'globex\'s key was not even opened');
  const none = await sign(keys.initech!, draft('hr@initech.test'), '?dkim=true');
  const p = await none.json() as { code: string; detail: string };
  assert.equal(none.status, 422);
  assert.equal(p.code, 'KEY_INVALID');
  assert.match(p.detail, /No active DKIM key for initech\.test/);
  assert.equal((await sign(keys.acme!, draft('news@acme.test'), '?dkim=yes')).status, 400);
});
