/**
 * Key generation never stops a serving thread (issue 10): an identity issued over
 * the API (POST /api/v1/identities with an address: the internal CA makes the key)
 * generates its RSA key off the thread (src/keys/generate-key-pair.ts), so the
 * thread's other requests keep being answered meanwhile. With generateKeyPairSync
 * an RSA-3072 key (tens of milliseconds to seconds, a search for primes) held every
 * other request of that thread, and the keep-alive timers of its idle connections
 * fired late (clients then met resets reusing them).
 *
 * The server here is one thread (startServer in the test's own process). While
 * RSA-3072 identities are issued one after the other (for 2 s at least), a client signs
 * messages back to back on the same thread; the longest of those requests must stay
 * well under the longest issuance (a ratio, so a loaded machine slows both sides alike).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { encodePem } from '../../src/asn1/pem.ts';
import { initCertificateAuthority } from '../../src/ca/init-certificate-authority.ts';
import { issueMailboxCertificate } from '../../src/ca/issue-mailbox-certificate.ts';
import { masterKeyFromBytes } from '../../src/keys/master-key.ts';
import { Store } from '../../src/store/store.ts';
import { TenantDirectory } from '../../src/store/tenant-directory.ts';
import { openSqliteEngine } from '../../src/store/sqlite-engine.ts';
import { startServer, type RunningServer } from '../../src/server/start-server.ts';

const dir = mkdtempSync(join(tmpdir(), 'kakitome-serve-keygen-'));
let store: Store;
let server: RunningServer;
let admin = '';
let signer = '';
let root = '';

before(async () => {
  store = await Store.open(openSqliteEngine(join(dir, 'kakitome.db')), { masterKey: masterKeyFromBytes(randomBytes(32)), actor: 'tester' });
  const { root: rootCa } = await initCertificateAuthority(store, { name: 'Keygen Test CA', keyType: 'p256' });
  root = join(dir, 'root.pem');
  writeFileSync(root, encodePem('CERTIFICATE', rootCa.certificate.der));
  const tenants = new TenantDirectory(store);
  await tenants.addTenant('acme', ['acme.example']);
  await issueMailboxCertificate(store, { email: 'news@acme.example', keyType: 'p256' });
  await tenants.registerIdentities('acme', ['news@acme.example']);
  admin = (await tenants.createApiKey('acme', { scopes: ['admin'] })).token;
  signer = (await tenants.createApiKey('acme', { scopes: ['sign'] })).token;
  server = await startServer(store, { host: '127.0.0.1', port: 0, maxMessageBytes: 256 * 1024, shutdownGraceMs: 5000, revocation: 'allow-unknown' }, { log: () => {}, version: 'test' });
});

after(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function sign(): Promise<{ ms: number; status: number; body: Buffer }> {
  const t0 = performance.now();
  const r = await fetch(new URL('/api/v1/sign', server.url), {
    method: 'POST',
    headers: { authorization: `Bearer ${signer}`, 'content-type': 'message/rfc822' },
    body: `From: news@acme.example\r\nTo: a@example.net\r\nSubject: meanwhile\r\nMessage-ID: <${randomBytes(4).toString('hex')}@acme.example>\r\n\r\nHello.\r\n`,
  });
  const body = Buffer.from(await r.arrayBuffer());
  return { ms: performance.now() - t0, status: r.status, body };
}

async function issue(email: string): Promise<void> {
  const r = await fetch(new URL('/api/v1/identities', server.url), {
    method: 'POST',
    headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
    body: JSON.stringify({ email, keyType: 'rsa3072' }),
  });
  assert.equal(r.status, 201, await r.text());
}

test('issuing RSA-3072 identities over the API does not stall the thread\'s other requests', async () => {
  await sign(); // connections and caches warm
  let issuing = true;
  const t0 = performance.now();
  // Identities one after the other until the issuance has lasted 2 s (two at least, six at most): an RSA key's
  // search for primes is random, and two quick ones left too short a time beside a request slowed by the machine's load.
  const issues: number[] = [];
  const issuance = (async () => {
    try {
      while (issues.length < 2 || (performance.now() - t0 < 2000 && issues.length < 6)) {
        const started = performance.now();
        await issue(`slow${issues.length + 1}@acme.example`);
        issues.push(performance.now() - started);
      }
    } finally {
      issuing = false;
    }
  })();
  const during: Array<{ ms: number; status: number; body: Buffer }> = [];
  while (issuing) during.push(await sign());
  await issuance;
  const issuanceMs = performance.now() - t0;
  const longest = Math.max(...during.map((d) => d.ms));
  // A blocked thread holds a request about as long as a whole key generation, the longest issue's bulk.
  const longestIssue = Math.max(...issues);
  assert.ok(during.every((d) => d.status === 200), `statuses ${during.map((d) => d.status).join(',')}`);
  assert.ok(during.length >= 3, `only ${during.length} messages signed during ${issuanceMs.toFixed(0)} ms of issuance`);
  assert.ok(longest < longestIssue / 2, `a request waited ${longest.toFixed(0)} ms while ${issues.length} identities were issued in ${issues.map((ms) => ms.toFixed(0)).join(', ')} ms: the thread was blocked`);
  // What was answered meanwhile is a real signature.
  const file = join(dir, 'signed.eml');
  writeFileSync(file, during.at(-1)!.body);
  execFileSync('openssl', ['cms', '-verify', '-in', file, '-CAfile', root, '-purpose', 'smimesign', '-out', '/dev/null'], { stdio: 'pipe' });
});
