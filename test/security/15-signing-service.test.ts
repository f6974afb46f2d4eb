/**
 * Issue 10 (docs/security.md section 15): the signing service never lends a signature or a key to the wrong
 * caller. Each test plays the attacker: a tenant signing as another tenant's
 * sender or for a domain it does not own, a display name that shows another
 * sender, an API key guessed or forged (one answer for every cause, nothing
 * stored that would let a database reader call the service), and a tenant asking
 * to decrypt mail sent to another tenant's identity. Run through the application
 * itself (app.request, no socket) over a real store.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { initCertificateAuthority } from '../../src/ca/init-certificate-authority.ts';
import { issueMailboxCertificate } from '../../src/ca/issue-mailbox-certificate.ts';
import { masterKeyFromBytes } from '../../src/keys/master-key.ts';
import { Store } from '../../src/store/store.ts';
import { openSqliteEngine } from '../../src/store/sqlite-engine.ts';
import { TenantDirectory } from '../../src/store/tenant-directory.ts';
import { encryptMessage } from '../../src/smime/encrypt-message.ts';
import { createApp } from '../../src/server/create-app.ts';
import { Metrics } from '../../src/server/metrics.ts';
import { RateLimiter } from '../../src/server/rate-limiter.ts';
import type { Hono } from 'hono';
import type { AppEnv } from '../../src/server/service-context.ts';

let store: Store;
let tenants: TenantDirectory;
let app: Hono<AppEnv>;
const keys: Record<string, string> = {};
let bankCert: Awaited<ReturnType<typeof issueMailboxCertificate>>[number]['certificate'];

const message = (from: string) => Buffer.from(`From: ${from}\r\nTo: victim@example.net\r\nSubject: Please pay\r\n\r\nPay invoice 42 to account 9999.\r\n`);
const post = (path: string, key: string, body: Uint8Array) => app.request(path, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'message/rfc822' }, body });
async function refused(r: Response, status: number, code: string): Promise<string> {
  const p = await r.json() as { code: string; detail: string };
  assert.equal(r.status, status, p.detail);
  assert.equal(p.code, code);
  return p.detail;
}

before(async () => {
  store = await Store.open(openSqliteEngine(':memory:'), { masterKey: masterKeyFromBytes(randomBytes(32)), actor: 'tester' });
  await initCertificateAuthority(store, { name: 'Service Root', keyType: 'p256' });
  tenants = new TenantDirectory(store);
  await tenants.addTenant('bank', ['bank.example']);
  await tenants.addTenant('shop', ['shop.example']);
  bankCert = (await issueMailboxCertificate(store, { email: 'statements@bank.example' }))[0]!.certificate;
  await issueMailboxCertificate(store, { email: 'news@shop.example' });
  await tenants.registerIdentities('bank', ['statements@bank.example']);
  await tenants.registerIdentities('shop', ['news@shop.example']);
  keys.bank = (await tenants.createApiKey('bank', { scopes: ['sign', 'verify'] })).token;
  keys.shop = (await tenants.createApiKey('shop', { scopes: ['sign', 'verify'] })).token;
  app = createApp({
    store, tenants, config: { host: '127.0.0.1', port: 0, maxMessageBytes: 1024 * 1024, shutdownGraceMs: 1000, revocation: 'allow-unknown' },
    metrics: new Metrics(), rateLimiter: new RateLimiter(), log: () => {}, version: 'test', shuttingDown: () => false,
  });
});
after(() => store.close());

test('a tenant cannot get another tenant\'s sender signed, nor a domain it does not own', async () => {
  assert.match(await refused(await post('/api/v1/sign', keys.shop!, message('statements@bank.example')), 403, 'FORBIDDEN'), /outside the domains of tenant "shop"/);
  assert.match(await refused(await post('/api/v1/sign', keys.shop!, message('"Bank" <statements@bank.example>')), 403, 'FORBIDDEN'), /not signed/);
  await refused(await post('/api/v1/sign', keys.shop!, message('security@paypal.example')), 403, 'FORBIDDEN');
  // The default tenant owns only what no one else claims: it cannot sign for the bank either.
  keys.default = (await tenants.createApiKey('default', { scopes: ['sign'] })).token;
  await refused(await post('/api/v1/sign', keys.default!, message('statements@bank.example')), 403, 'FORBIDDEN');
  assert.equal((await post('/api/v1/sign', keys.bank!, message('statements@bank.example'))).status, 200);
});

test('a sender the reader would see as someone else is never signed, even the tenant\'s own', async () => {
  // "Johnny, you are fired": the display name shows another address; two From fields.
  await refused(await post('/api/v1/sign', keys.shop!, message('"statements@bank.example" <news@shop.example>')), 422, 'IDENTITY_MISMATCH');
  await refused(await post('/api/v1/sign', keys.shop!, message('news@shop.example\r\nFrom: statements@bank.example')), 400, 'MALFORMED');
  await refused(await post('/api/v1/sign', keys.shop!, message('"statements\uFF20bank.example" <news@shop.example>')), 422, 'IDENTITY_MISMATCH');
});

test('API keys: one answer for every wrong key, and the store keeps nothing that calls the service', async () => {
  const m = message('news@shop.example');
  const id = keys.shop!.slice(3, 19);
  const wrongSecret = `kk_${id}_${randomBytes(32).toString('base64url')}`;
  const unknownId = `kk_${randomBytes(8).toString('hex')}_${randomBytes(32).toString('base64url')}`;
  const details = new Set<string>();
  for (const k of [wrongSecret, unknownId, 'kk_short', keys.shop!.toUpperCase()]) details.add(await refused(await post('/api/v1/sign', k, m), 401, 'UNAUTHENTICATED'));
  assert.equal(details.size, 1, 'the same answer whether the id exists or not');
  const rows = await store.engine.all('SELECT * FROM api_keys');
  const dump = JSON.stringify(rows.map((r) => Object.values(r).map((v) => (v instanceof Uint8Array ? Buffer.from(v).toString('base64url') : String(v)))));
  assert.ok(!dump.includes(keys.shop!.slice(20)), 'the secret is not stored');
  const audit = JSON.stringify(await store.auditLog({ limit: 1000 }));
  assert.ok(!audit.includes(keys.shop!.slice(20)), 'nor audited');
});

test('a tenant cannot decrypt mail sent to another tenant\'s identity; the key is not even opened', async () => {
  const sealed = encryptMessage(message('partner@example.net'), { recipients: [{ certificate: bankCert }], contentEncryption: 'aes-256-gcm' });
  await refused(await post('/api/v1/decrypt', keys.shop!, sealed), 422, 'NOT_RECIPIENT');
  assert.ok(!(await store.auditLog({ limit: 1000 })).some((e) => e.action === 'key.use.decrypt' && e.actor.startsWith('api:shop/')));
  const opened = await post('/api/v1/decrypt', keys.bank!, sealed);
  assert.equal(opened.status, 200);
  assert.match(Buffer.from((await opened.json() as { message: string }).message, 'base64').toString(), /Pay invoice 42/);
});
