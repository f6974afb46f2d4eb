/**
 * The service cache (src/server/service-cache.ts) keeps API keys, senders and
 * identities between requests and stays exact: a change made through another
 * connection to the same store (another node, the CLI) counts from the next
 * request on, and what changes by the clock alone (a renewal dated ahead, an
 * identity expiring) counts from that moment on, with nothing written to the
 * store. Every message, served from the cache or not, has its api.sign row, and
 * the certificate it names a key.use.sign row for the key's opening before it.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes, X509Certificate } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { initCertificateAuthority } from '../../src/ca/init-certificate-authority.ts';
import { issueMailboxCertificate } from '../../src/ca/issue-mailbox-certificate.ts';
import { masterKeyFromBytes } from '../../src/keys/master-key.ts';
import { Store } from '../../src/store/store.ts';
import { TenantDirectory } from '../../src/store/tenant-directory.ts';
import { retireTenantIdentity } from '../../src/store/retire-tenant-identity.ts';
import { openSqliteEngine } from '../../src/store/sqlite-engine.ts';
import { startServer, type RunningServer } from '../../src/server/start-server.ts';

const DAY = 86_400_000;
const dir = mkdtempSync(join(tmpdir(), 'kakitome-serve-cache-'));
const db = join(dir, 'kakitome.db');
const master = masterKeyFromBytes(randomBytes(32));
const t0 = Date.now();
let offset = 0;
/** The service's clock; the other connection keeps the real one. */
const clock = () => new Date(t0 + offset);
let store: Store;
let other: Store;
let otherTenants: TenantDirectory;
let server: RunningServer;
let token = '';
let keyId = '';
const fingerprints: Record<string, string> = {};

before(async () => {
  store = await Store.open(openSqliteEngine(db), { masterKey: master, actor: 'tester', clock });
  other = await Store.open(openSqliteEngine(db), { masterKey: master, actor: 'other node' });
  otherTenants = new TenantDirectory(other);
  await initCertificateAuthority(other, { name: 'Cache Test CA', keyType: 'p256' });
  await otherTenants.addTenant('acme', ['acme.example']);
  // Valid from now for two days; a renewal dated a day ahead, valid three days.
  fingerprints.first = (await issueMailboxCertificate(other, { email: 'news@acme.example', keyType: 'p256', validityDays: 2, now: new Date(t0) }))[0]!.certificate.fingerprint256;
  fingerprints.renewal = (await issueMailboxCertificate(other, { email: 'news@acme.example', keyType: 'p256', validityDays: 3, now: new Date(t0 + DAY) }))[0]!.certificate.fingerprint256;
  await otherTenants.registerIdentities('acme', ['news@acme.example']);
  const k = await otherTenants.createApiKey('acme', { scopes: ['sign'] });
  token = k.token;
  keyId = k.key.id;
  server = await startServer(store, { host: '127.0.0.1', port: 0, maxMessageBytes: 256 * 1024, shutdownGraceMs: 5000, revocation: 'allow-unknown' }, { log: () => {}, version: 'test' });
});

after(async () => {
  await server?.close();
  await other?.close();
  rmSync(dir, { recursive: true, force: true });
});

function sign(from = 'news@acme.example'): Promise<Response> {
  return fetch(new URL('/api/v1/sign', server.url), {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'message/rfc822' },
    body: `From: ${from}\r\nTo: a@example.net\r\nSubject: cache\r\nMessage-ID: <${randomBytes(4).toString('hex')}@acme.example>\r\n\r\nHello.\r\n`,
  });
}

/** The signer's fingerprint as openssl reads it (the signature checked, the certificate's dates not: the renewal is dated ahead). */
async function signer(): Promise<string> {
  const r = await sign();
  const body = Buffer.from(await r.arrayBuffer());
  assert.equal(r.status, 200, body.toString());
  const file = join(dir, 'signed.eml');
  writeFileSync(file, body);
  execFileSync('openssl', ['cms', '-verify', '-noverify', '-in', file, '-signer', join(dir, 'signer.pem'), '-out', '/dev/null'], { stdio: 'pipe' });
  return new X509Certificate(readFileSync(join(dir, 'signer.pem'))).fingerprint256.replaceAll(':', '').toLowerCase();
}

async function status(r: Promise<Response>): Promise<number> {
  const res = await r;
  await res.arrayBuffer();
  return res.status;
}

test('what changes by the clock alone counts at that moment: a renewal dated ahead, then expiry', async () => {
  assert.equal(await signer(), fingerprints.first);
  assert.equal(await signer(), fingerprints.first, 'served from the cache');
  offset = DAY + 120_000;
  assert.equal(await signer(), fingerprints.renewal, 'the renewal signs once its notBefore has passed, with nothing changed in the store');
  offset = 4 * DAY + 120_000;
  assert.equal(await status(sign()), 422, 'both expired');
  offset = DAY + 120_000;
  assert.equal(await signer(), fingerprints.renewal);
});

test('a kept key still checks its secret on every request: another secret under its id is refused', async () => {
  assert.equal(await status(sign()), 200, 'the key is kept after this');
  const right = token;
  const secret = right.slice(right.lastIndexOf('_') + 1);
  const flipped = `${secret.slice(0, -1)}${secret.endsWith('A') ? 'B' : 'A'}`;
  try {
    for (const wrong of [`kk_${keyId}_${flipped}`, `kk_${keyId}_${'A'.repeat(43)}`, `kk_${keyId}_${secret.slice(0, -1)}`, `kk_${keyId}_`]) {
      token = wrong;
      assert.equal(await status(sign()), 401, wrong);
    }
  } finally {
    token = right;
  }
  assert.equal(await status(sign()), 200);
});

test('changes through another connection count from the next request', async () => {
  // Retired (its key stops signing): the next request has no identity.
  await retireTenantIdentity(other, otherTenants, 'acme', 'news@acme.example');
  assert.equal(await status(sign()), 422);
  // A new identity: used at once.
  const fresh = (await issueMailboxCertificate(other, { email: 'news@acme.example', keyType: 'p256', now: new Date(t0 + DAY) }))[0]!.certificate.fingerprint256;
  assert.equal(await signer(), fresh);
  // A new address of the tenant: refused (not its identity), then registered, then signed.
  assert.equal(await status(sign('billing@acme.example')), 403);
  await issueMailboxCertificate(other, { email: 'billing@acme.example', keyType: 'p256' });
  await otherTenants.registerIdentities('acme', ['billing@acme.example']);
  assert.equal(await status(sign('billing@acme.example')), 200);
  // A rate limit: the next request takes the first token.
  await otherTenants.setRateLimit(keyId, 1);
  assert.equal(await status(sign()), 200);
  assert.equal(await status(sign()), 429);
  await otherTenants.setRateLimit(keyId, undefined);
  assert.equal(await status(sign()), 200);
  // Revoked: refused at the next request.
  await otherTenants.revokeApiKey(keyId);
  assert.equal(await status(sign()), 401);
});

test('every message has its api.sign row, and its key an opening recorded before it', async () => {
  const rows = await other.engine.all("SELECT action, at, object, detail FROM audit_log WHERE actor = ? AND action IN ('api.sign', 'key.use.sign') ORDER BY at", [`api:acme/${keyId}`]);
  const signs = rows.filter((r) => r.action === 'api.sign');
  assert.equal(signs.length, 10);
  for (const s of signs) {
    assert.ok(rows.some((r) => r.action === 'key.use.sign' && r.detail === s.object && String(r.at) <= String(s.at)), `no opening recorded for ${String(s.object)}`);
  }
  // One opening per identity and change, not one per message.
  assert.ok(rows.filter((r) => r.action === 'key.use.sign').length < signs.length);
});

test('a store that fails a revision read fails that request only; the next one reads again', async () => {
  await other.engine.run('ALTER TABLE cache_revision RENAME TO cache_revision_away');
  assert.equal(await status(sign()), 500);
  await other.engine.run('ALTER TABLE cache_revision_away RENAME TO cache_revision');
  assert.equal(await status(sign()), 401, 'the key was revoked above: read again, not an old failure');
});

test('a revision read that fails while another is waiting for it (PostgreSQL: reads take a round trip) fails only its callers', async () => {
  const { ServiceCache } = await import('../../src/server/service-cache.ts');
  const s = await Store.open(openSqliteEngine(db), { masterKey: master });
  const engine = s.engine as unknown as { all: (sql: string, params?: unknown[]) => Promise<unknown[]> };
  const all = engine.all.bind(engine);
  let failing = true;
  engine.all = (sql, params) => (/cache_revision/.test(sql) && failing ? new Promise((_, reject) => setTimeout(() => reject(new Error('connection lost (test)')), 20)) : all(sql, params));
  const cache = new ServiceCache(s, new TenantDirectory(s));
  const first = cache.refresh();
  await new Promise((r) => setTimeout(r, 5));
  const second = cache.refresh(); // sent after the first read, which is still out
  await assert.rejects(first, /connection lost/);
  await assert.rejects(second, /connection lost/);
  failing = false;
  await cache.refresh();
  await s.close();
});

test('requests that arrive in one turn of the event loop share one revision read, sent after they all arrived; a later request reads again', async () => {
  const { ServiceCache } = await import('../../src/server/service-cache.ts');
  const s = await Store.open(openSqliteEngine(db), { masterKey: master });
  const engine = s.engine as unknown as { all: (sql: string, params?: unknown[]) => Promise<unknown[]> };
  const all = engine.all.bind(engine);
  const reads: number[] = [];
  let arrived = 0;
  engine.all = (sql, params) => {
    if (/cache_revision/.test(sql)) reads.push(arrived);
    return all(sql, params);
  };
  const cache = new ServiceCache(s, new TenantDirectory(s));
  // Five requests handled one after the other in the same turn, each by its own
  // callback (as node:http emits each socket's request), microtasks running between them.
  const turn = await new Promise<Array<Promise<void>>>((resolve) => {
    const calls: Array<Promise<void>> = [];
    for (let i = 0; i < 5; i++) {
      setImmediate(() => {
        arrived++;
        calls.push(cache.refresh());
        if (calls.length === 5) resolve(calls);
      });
    }
  });
  await Promise.all(turn);
  assert.deepEqual(reads, [5], 'one read, sent after the five requests arrived');
  await cache.refresh();
  assert.deepEqual(reads, [5, 5], 'the next turn reads again');
  await s.close();
});
