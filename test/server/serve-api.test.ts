/**
 * The signing service over a real socket, on SQLite and on PostgreSQL: every
 * endpoint with good and hostile input. Signed output is verified by
 * `openssl cms -verify` against the internal CA's root; the service's verdict is
 * the CLI's `verify --json`.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { rawRequest } from './raw-request.ts';
import { encodePem } from '../../src/asn1/pem.ts';
import { initCertificateAuthority } from '../../src/ca/init-certificate-authority.ts';
import { issueMailboxCertificate } from '../../src/ca/issue-mailbox-certificate.ts';
import { revokeIssuedCertificate } from '../../src/ca/revoke-issued-certificate.ts';
import { masterKeyFromBytes } from '../../src/keys/master-key.ts';
import { Store } from '../../src/store/store.ts';
import { TenantDirectory } from '../../src/store/tenant-directory.ts';
import { startServer, type RunningServer } from '../../src/server/start-server.ts';
import { engineFactories } from '../store/engine-factories.ts';

const master = masterKeyFromBytes(randomBytes(32));
const LIMIT = 256 * 1024;

function draft(from: string, extra = '', body = 'Hello,\r\n\r\nthe statement for November is ready.\r\n'): Buffer {
  return Buffer.from(`From: ${from}\r\nTo: customer@example.net\r\nSubject: Your statement\r\nDate: Sun, 06 Dec 2026 10:00:00 +0000\r\nMessage-ID: <${randomBytes(6).toString('hex')}@acme.example>\r\n${extra}Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n${body}`);
}

const factories = engineFactories('kakitome-serve-');

for (const f of factories) {
  describe(`signing service on ${f.name}`, () => {
    let store: Store;
    let server: RunningServer;
    let tenants: TenantDirectory;
    const logs: Array<Record<string, unknown>> = [];
    const dir = mkdtempSync(join(tmpdir(), 'kakitome-serve-files-'));
    const rootPem = join(dir, 'root.pem');
    const keys: Record<string, string> = {};
    let keyIds: Record<string, string> = {};

    const call = (path: string, init: { key?: string; body?: Uint8Array | string; type?: string; method?: string } = {}) => fetch(new URL(path, server.url), {
      method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
      headers: { ...(init.key ? { authorization: `Bearer ${init.key}` } : {}), ...(init.body !== undefined ? { 'content-type': init.type ?? 'message/rfc822' } : {}) },
      ...(init.body !== undefined ? { body: init.body } : {}),
    });
    const sign = (key: string, message: Uint8Array, query = '') => call(`/api/v1/sign${query}`, { key, body: message });
    async function problem(r: Response, status: number, code: string): Promise<{ detail: string; code: string; remedy?: string }> {
      const text = await r.text();
      assert.equal(r.status, status, text);
      assert.match(r.headers.get('content-type') ?? '', /^application\/problem\+json/);
      const p = JSON.parse(text);
      assert.equal(p.code, code, text);
      assert.equal(p.status, status);
      assert.equal(p.type, `urn:kakitome:error:${code}`);
      return p;
    }
    function opensslVerify(signed: Uint8Array): string {
      const file = join(dir, `signed-${randomBytes(4).toString('hex')}.eml`);
      writeFileSync(file, signed);
      return execFileSync('openssl', ['cms', '-verify', '-in', file, '-CAfile', rootPem, '-purpose', 'smimesign'], { stdio: ['ignore', 'pipe', 'pipe'] }).toString('latin1');
    }

    before(async () => {
      await f.setup();
      store = await Store.open(f.make(), { masterKey: master, actor: 'tester' });
      const { root } = await initCertificateAuthority(store, { name: 'Acme Test CA', keyType: 'p256' });
      writeFileSync(rootPem, encodePem('CERTIFICATE', root.certificate.der));
      tenants = new TenantDirectory(store);
      await tenants.addTenant('acme', ['acme.example']);
      await tenants.addTenant('globex', ['globex.example']);
      const [news] = await issueMailboxCertificate(store, { email: 'news@acme.example', keyType: 'rsa2048' });
      writeFileSync(join(dir, 'news.pem'), encodePem('CERTIFICATE', news!.certificate.der));
      await issueMailboxCertificate(store, { email: 'info@globex.example', keyType: 'p256' });
      // Expired: valid for one day, a year ago. Revoked: revoked by the CA.
      await issueMailboxCertificate(store, { email: 'old@acme.example', validityDays: 1, now: new Date(Date.now() - 365 * 86_400_000) });
      const gone = await issueMailboxCertificate(store, { email: 'gone@acme.example' });
      await revokeIssuedCertificate(store, gone[0]!.certificate.fingerprint256, 'keyCompromise');
      // A correspondent: encrypted mail to them is opened by openssl with this key.
      const [bob] = await issueMailboxCertificate(store, { email: 'bob@partner.example', keyType: 'rsa2048' });
      writeFileSync(join(dir, 'bob.pem'), encodePem('CERTIFICATE', bob!.certificate.der));
      writeFileSync(join(dir, 'bob.key'), (await store.exportPrivateKey(bob!.keyId!, 'test: openssl decrypts as bob')).export({ format: 'pem', type: 'pkcs8' }));
      await tenants.registerIdentities('acme', ['news@acme.example', 'old@acme.example', 'gone@acme.example']);
      await tenants.registerIdentities('globex', ['info@globex.example']);
      const make = async (name: string, tenant: string, scopes: Array<'sign' | 'verify' | 'admin'>, rate?: number) => {
        const k = await tenants.createApiKey(tenant, { scopes, ...(rate ? { ratePerMinute: rate } : {}) });
        keys[name] = k.token;
        keyIds = { ...keyIds, [name]: k.key.id };
      };
      await make('acme', 'acme', ['sign', 'verify']);
      await make('acmeVerify', 'acme', ['verify']);
      await make('globex', 'globex', ['sign', 'verify']);
      await make('revoked', 'acme', ['sign', 'verify']);
      await make('limited', 'acme', ['verify'], 2);
      await make('acmeAdmin', 'acme', ['admin']);
      await tenants.revokeApiKey(keyIds.revoked!);
      server = await startServer(store, { host: '127.0.0.1', port: 0, maxMessageBytes: LIMIT, shutdownGraceMs: 5000, revocation: 'allow-unknown' }, { log: (e) => logs.push(e), version: 'test' });
    });
    after(async () => {
      await server?.close();
      rmSync(dir, { recursive: true, force: true });
      await f.teardown();
    });

    test('POST /api/v1/sign signs with the tenant\'s identity for From; openssl cms verifies it', async () => {
      const r = await sign(keys.acme!, draft('Acme Bank <news@acme.example>'));
      const body = Buffer.from(await r.arrayBuffer());
      assert.equal(r.status, 200, body.toString());
      assert.equal(r.headers.get('content-type'), 'message/rfc822');
      assert.match(body.toString('latin1'), /^From: Acme Bank <news@acme.example>\r\n/);
      assert.match(body.toString('latin1'), /multipart\/signed; protocol="application\/pkcs7-signature";\r\n micalg=sha-256/);
      assert.match(opensslVerify(body), /the statement for November is ready/);
      // 8bit content went out in 7-bit form, as the CLI prepares it.
      assert.ok(!/[\x80-\xff]/.test(body.toString('latin1')));
    });

    test('sign options: opaque, hash, PSS (each verified by openssl)', async () => {
      const opaque = await sign(keys.acme!, draft('news@acme.example'), '?opaque=true&hash=sha384&pss=true');
      const bytes = Buffer.from(await opaque.arrayBuffer());
      assert.equal(opaque.status, 200, bytes.toString());
      assert.match(bytes.toString('latin1'), /application\/pkcs7-mime; smime-type=signed-data/);
      assert.match(opensslVerify(bytes), /statement/);
      const sha384 = Buffer.from(await (await sign(keys.acme!, draft('news@acme.example'), '?hash=sha384')).arrayBuffer());
      assert.match(sha384.toString('latin1'), /micalg=sha-384/);
      assert.match(opensslVerify(sha384), /statement/);
      await problem(await sign(keys.acme!, draft('news@acme.example'), '?hash=md5'), 400, 'INVALID_ARGUMENT');
      await problem(await sign(keys.acme!, draft('news@acme.example'), '?detached=false'), 400, 'INVALID_ARGUMENT');
    });

    test('POST /api/v1/verify answers the CLI verdict; a tampered message is invalid', async () => {
      const signed = Buffer.from(await (await sign(keys.acme!, draft('news@acme.example'))).arrayBuffer());
      const r = await call('/api/v1/verify', { key: keys.acmeVerify!, body: signed });
      const verdict = await r.json() as { status: string; code?: string; signers: Array<{ email: string[] }> };
      assert.equal(r.status, 200);
      assert.equal(verdict.status, 'trusted');
      assert.deepEqual(verdict.signers[0]!.email, ['news@acme.example']);
      const tampered = Buffer.from(signed.toString('latin1').replace('statement for November', 'statement for December'), 'latin1');
      const bad = await (await call('/api/v1/verify', { key: keys.acmeVerify!, body: tampered })).json() as { status: string; code?: string };
      assert.equal(bad.status, 'invalid');
      assert.equal(bad.code, 'DIGEST_MISMATCH');
      await problem(await call('/api/v1/verify', { key: keys.acmeVerify!, body: Buffer.from([0x30, 0x82, 0xff]) }), 400, 'MALFORMED');
    });

    test('POST /api/v1/encrypt encrypts to addresses (openssl decrypts), signed first on request', async () => {
      const encrypt = (key: string, message: Uint8Array, query: string) => call(`/api/v1/encrypt${query}`, { key, body: message });
      const opened = (bytes: Uint8Array) => {
        const file = join(dir, `enc-${randomBytes(4).toString('hex')}.eml`);
        writeFileSync(file, bytes);
        return execFileSync('openssl', ['cms', '-decrypt', '-in', file, '-recip', join(dir, 'bob.pem'), '-inkey', join(dir, 'bob.key')], { stdio: ['ignore', 'pipe', 'pipe'] });
      };
      const r = await encrypt(keys.acme!, draft('news@acme.example'), '?to=bob@partner.example');
      const sealed = Buffer.from(await r.arrayBuffer());
      assert.equal(r.status, 200, sealed.toString());
      assert.match(sealed.toString('latin1'), /Content-Type: application\/pkcs7-mime; smime-type=authEnveloped-data/);
      assert.ok(!sealed.toString('latin1').includes('statement for November'));
      assert.match(opened(sealed).toString('latin1'), /statement for November/);
      const signedFirst = await encrypt(keys.acme!, draft('news@acme.example'), '?to=bob@partner.example&sign=true&cipher=aes-128-gcm');
      assert.equal(signedFirst.status, 200);
      assert.match(opensslVerify(opened(Buffer.from(await signedFirst.arrayBuffer()))), /statement/);
      await problem(await encrypt(keys.acme!, draft('news@acme.example'), ''), 400, 'INVALID_ARGUMENT');
      await problem(await encrypt(keys.acme!, draft('news@acme.example'), '?to=not-an-address'), 400, 'INVALID_ARGUMENT');
      await problem(await encrypt(keys.acme!, draft('news@acme.example'), '?to=nobody@partner.example'), 400, 'INVALID_ARGUMENT');
      await problem(await encrypt(keys.acme!, draft('news@acme.example'), '?to=gone@acme.example'), 400, 'INVALID_ARGUMENT');
      await problem(await encrypt(keys.globex!, draft('news@acme.example'), '?to=bob@partner.example'), 403, 'FORBIDDEN');
      await problem(await encrypt(keys.acmeVerify!, draft('news@acme.example'), '?to=bob@partner.example'), 403, 'FORBIDDEN');
      await problem(await encrypt(keys.acme!, draft('"ceo@bank.example" <news@acme.example>'), '?to=bob@partner.example'), 422, 'IDENTITY_MISMATCH');
    });

    test('POST /api/v1/decrypt opens mail for the tenant\'s identities only, with the CLI\'s rules', async () => {
      const sealedBy = (cipher: string) => {
        const plain = join(dir, `plain-${cipher}.eml`);
        writeFileSync(plain, Buffer.from('Content-Type: text/plain; charset=us-ascii\r\n\r\nThe wire transfer code is 1234.\r\n'));
        return execFileSync('openssl', ['cms', '-encrypt', '-in', plain, `-${cipher}`, '-from', 'bob@partner.example', '-to', 'news@acme.example', '-subject', 'Code', join(dir, 'news.pem')], { stdio: ['ignore', 'pipe', 'pipe'] });
      };
      const decrypt = (key: string, message: Uint8Array) => call('/api/v1/decrypt', { key, body: message });
      const gcm = sealedBy('aes-256-gcm');
      const r = await decrypt(keys.acmeVerify!, gcm);
      const body = await r.json() as { verdict: { status: string }; message?: string };
      assert.equal(r.status, 200, JSON.stringify(body));
      assert.equal(body.verdict.status, 'unsigned');
      assert.match(Buffer.from(body.message!, 'base64').toString(), /wire transfer code is 1234/);
      // Another tenant's caller: its keys are not the recipient's, and acme's key is never opened for it.
      await problem(await decrypt(keys.globex!, gcm), 422, 'NOT_RECIPIENT');
      assert.ok(!(await store.auditLog({ limit: 1000 })).some((e) => e.action === 'key.use.decrypt' && e.actor.startsWith('api:globex/')));
      // CBC without a signature of its sender inside is not released (EFAIL).
      await problem(await decrypt(keys.acmeVerify!, sealedBy('aes-256-cbc')), 422, 'UNAUTH_ENC');
      await problem(await decrypt(keys.acmeVerify!, draft('news@acme.example')), 400, 'MALFORMED');
      const damaged = Buffer.from(gcm.toString('latin1').replace(/\n([A-Za-z0-9+/]{20})([A-Za-z0-9+/])/, (_, a: string, b: string) => `\n${a}${b === 'A' ? 'B' : 'A'}`), 'latin1');
      assert.notDeepEqual(damaged, gcm);
      const failed = await decrypt(keys.acmeVerify!, damaged);
      const code = (await failed.json() as { code: string }).code;
      assert.ok(['DECRYPT_FAILED', 'MALFORMED'].includes(code) && failed.status >= 400, `${failed.status} ${code}`);
    });

    test('GET /api/v1/identities lists the tenant\'s identities with their expiry (scope admin)', async () => {
      const r = await call('/api/v1/identities', { key: keys.acmeAdmin! });
      const body = await r.json() as { identities: Array<{ address: string; certificates: Array<{ status: string; daysLeft: number }> }> };
      assert.equal(r.status, 200, JSON.stringify(body));
      const by = Object.fromEntries(body.identities.map((i) => [i.address, i.certificates.map((c) => c.status)]));
      assert.deepEqual(by['news@acme.example'], ['current']);
      assert.deepEqual(by['old@acme.example'], ['expired']);
      assert.deepEqual(by['gone@acme.example'], ['revoked']);
      assert.ok(!('info@globex.example' in by), 'another tenant\'s identities are not listed');
      assert.ok(body.identities.find((i) => i.address === 'news@acme.example')!.certificates[0]!.daysLeft > 300);
      await problem(await call('/api/v1/identities', { key: keys.acme! }), 403, 'FORBIDDEN');
      await problem(await call('/api/v1/identities'), 401, 'UNAUTHENTICATED');
    });

    test('authentication: missing, malformed, unknown, revoked keys are 401; a wrong scope is 403', async () => {
      const m = draft('news@acme.example');
      const missing = await sign('', m);
      assert.equal(missing.headers.get('www-authenticate'), 'Bearer realm="kakitome"');
      await problem(missing, 401, 'UNAUTHENTICATED');
      await problem(await sign('not-a-key', m), 401, 'UNAUTHENTICATED');
      const forged = keys.acme!.slice(0, -4) + (keys.acme!.endsWith('AAAA') ? 'BBBB' : 'AAAA');
      await problem(await sign(forged, m), 401, 'UNAUTHENTICATED');
      await problem(await sign(`kk_${'0'.repeat(16)}_${'A'.repeat(43)}`, m), 401, 'UNAUTHENTICATED');
      await problem(await sign(keys.revoked!, m), 401, 'UNAUTHENTICATED');
      const scope = await problem(await sign(keys.acmeVerify!, m), 403, 'FORBIDDEN');
      assert.match(scope.detail, /needs sign/);
    });

    test('a tenant signs only its own identities and only for its own domains', async () => {
      const other = await problem(await sign(keys.globex!, draft('news@acme.example')), 403, 'FORBIDDEN');
      assert.match(other.detail, /outside the domains of tenant "globex"/);
      await problem(await sign(keys.acme!, draft('info@globex.example')), 403, 'FORBIDDEN');
      await problem(await sign(keys.acme!, draft('ceo@evil.example')), 403, 'FORBIDDEN');
      // In the tenant's domain but not registered as its identity.
      const unregistered = await problem(await sign(keys.acme!, draft('someone@acme.example')), 403, 'FORBIDDEN');
      assert.match(unregistered.detail, /not an identity of tenant "acme"/);
      const ok = await sign(keys.globex!, draft('info@globex.example'));
      assert.equal(ok.status, 200);
      assert.match(opensslVerify(Buffer.from(await ok.arrayBuffer())), /statement/);
    });

    test('a message a careful verifier would refuse is never signed', async () => {
      await problem(await sign(keys.acme!, draft('news@acme.example', 'From: ceo@acme.example\r\n')), 400, 'MALFORMED');
      const shown = await problem(await sign(keys.acme!, draft('"ceo@bank.example" <news@acme.example>')), 422, 'IDENTITY_MISMATCH');
      assert.match(shown.detail, /ceo@bank\.example/);
      await problem(await sign(keys.acme!, draft('news@acme.example, info@globex.example')), 422, 'IDENTITY_MISMATCH');
      await problem(await sign(keys.acme!, Buffer.from('Subject: no sender\r\n\r\nbody\r\n')), 422, 'IDENTITY_MISMATCH');
      await problem(await sign(keys.acme!, draft('"news\u202e@acme.example" <news@acme.example>')), 422, 'IDENTITY_MISMATCH');
      // The route splits the message once for the sender's rules and the signing: a message that
      // does not split (MIME nested past the limit) is still judged by its From first, as before.
      const nested = (from: string) => {
        let parts = '';
        for (let i = 0; i < 40; i++) parts += `--b${i}\r\nContent-Type: multipart/mixed; boundary="b${i + 1}"\r\n\r\n`;
        return Buffer.from(`From: ${from}\r\nSubject: deep\r\nContent-Type: multipart/mixed; boundary="b0"\r\n\r\n${parts}--b40\r\nContent-Type: text/plain\r\n\r\nhi\r\n`);
      };
      await problem(await sign(keys.acme!, nested('"ceo@bank.example" <news@acme.example>')), 422, 'IDENTITY_MISMATCH');
      await problem(await sign(keys.acme!, nested('ceo@evil.example')), 403, 'FORBIDDEN');
      await problem(await sign(keys.acme!, nested('news@acme.example')), 422, 'LIMIT');
    });

    test('a multipart in a transfer encoding is refused 400 MALFORMED, the problem saying why and what to do; the same multipart in 7bit is signed', async () => {
      // As a broken mailer writes it: the parts as they are, the multipart labelled with an encoding.
      const mixed = (cte: string) => {
        const parts = '--p\r\nContent-Type: text/plain\r\n\r\nThe statement is attached.\r\n--p\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--p--\r\n';
        const head = draft('news@acme.example').toString('latin1').split('Content-Type:')[0]!;
        return Buffer.from(`${head}MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="p"\r\nContent-Transfer-Encoding: ${cte}\r\n\r\n${parts}`, 'latin1');
      };
      for (const cte of ['base64', 'quoted-printable']) {
        const p = await problem(await sign(keys.acme!, mixed(cte)), 400, 'MALFORMED');
        assert.match(p.detail, new RegExp(`multipart/mixed in Content-Transfer-Encoding ${cte} \\(RFC 2045 section 6\\.4`));
        assert.match(p.detail, /remove the field from the multipart \(or make it 7bit\) and send it again/);
      }
      const ok = await sign(keys.acme!, mixed('7bit'));
      assert.equal(ok.status, 200);
      assert.match(opensslVerify(Buffer.from(await ok.arrayBuffer())), /statement is attached/);
    });

    test('expired and revoked identities do not sign', async () => {
      const expired = await problem(await sign(keys.acme!, draft('old@acme.example')), 422, 'KEY_INVALID');
      assert.match(expired.detail, /No current signing identity for old@acme\.example/);
      // The problem names the remedy as the library does (docs/errors.md), and no CLI command.
      assert.equal(expired.remedy, 'tenantIdentity');
      assert.ok(!expired.detail.includes('kakitome '), expired.detail);
      await problem(await sign(keys.acme!, draft('gone@acme.example')), 422, 'KEY_INVALID');
    });

    test('a new identity is used at once, without a restart', async () => {
      await problem(await sign(keys.acme!, draft('billing@acme.example')), 403, 'FORBIDDEN');
      await issueMailboxCertificate(store, { email: 'billing@acme.example', keyType: 'p256' });
      await tenants.registerIdentities('acme', ['billing@acme.example']);
      const r = await sign(keys.acme!, draft('billing@acme.example'));
      assert.equal(r.status, 200);
      assert.match(opensslVerify(Buffer.from(await r.arrayBuffer())), /statement/);
    });

    test('media type, unknown routes and malformed input are problem details', async () => {
      await problem(await call('/api/v1/sign', { key: keys.acme!, body: draft('news@acme.example'), type: 'application/x-www-form-urlencoded' }), 415, 'INVALID_ARGUMENT');
      await problem(await call('/api/v1/nothing'), 404, 'NOT_FOUND');
      await problem(await call('/api/v1/sign', { key: keys.acme! }), 404, 'NOT_FOUND');
      await problem(await sign(keys.acme!, Buffer.alloc(0)), 422, 'IDENTITY_MISMATCH');
    });

    test('API answers are never sniffed, framed or stored: a path echoed in a 404 stays inert JSON', async () => {
      // The API shares the console's origin: a link a victim follows must not turn an echoed path into a page.
      const echoed = await call('/api/v1/%3Cscript%3Ealert(1)%3C%2Fscript%3E');
      assert.match((await problem(echoed, 404, 'NOT_FOUND')).detail, /<script>/);
      const signed = await sign(keys.acme!, draft('news@acme.example'));
      assert.equal(signed.status, 200);
      await signed.arrayBuffer();
      const refused = await call('/api/v1/identities', { key: keys.acme! });
      await refused.text();
      for (const r of [echoed, signed, refused, await call('/healthz')]) {
        assert.equal(r.headers.get('x-content-type-options'), 'nosniff', r.url);
        assert.equal(r.headers.get('content-security-policy'), "default-src 'none'; frame-ancestors 'none'; base-uri 'none'", r.url);
        assert.equal(r.headers.get('cache-control'), 'no-store', r.url);
      }
    });

    test('over the size limit: 413 from Content-Length at once, and from a chunked body as soon as it passes the limit', async () => {
      await problem(await sign(keys.acme!, Buffer.alloc(LIMIT + 1, 0x41)), 413, 'LIMIT');
      // A Content-Length of 10 GiB with almost nothing sent: answered without waiting for the body.
      const lie = await signRaw(server.url, { 'content-length': String(10 * 1024 ** 3) }, keys.acme!, async (req) => { req.write('From: news@acme.example\r\n'); });
      assert.equal(lie.status, 413);
      assert.equal(JSON.parse(lie.body).code, 'LIMIT');
      // Chunked, 32 KiB at a time, 64 MiB announced by nothing: the 413 arrives while the client is still sending.
      let sent = 0;
      const chunked = await signRaw(server.url, { 'transfer-encoding': 'chunked' }, keys.acme!, async (req, answered) => {
        const chunk = Buffer.alloc(32 * 1024, 0x41);
        while (!answered() && sent < 64 * 1024 * 1024) {
          if (!req.write(chunk)) await new Promise((r) => setTimeout(r, 5));
          sent += chunk.length;
          await new Promise((r) => setImmediate(r));
        }
      });
      assert.equal(chunked.status, 413);
      assert.equal(JSON.parse(chunked.body).code, 'LIMIT');
      assert.ok(sent < 16 * 1024 * 1024, `the client was still sending when refused (${sent} bytes sent)`);
    });

    test('a rate limit set by an administrator applies at once; none by default', async () => {
      const m = draft('news@acme.example');
      const signed = Buffer.from(await (await sign(keys.acme!, m)).arrayBuffer());
      for (let i = 0; i < 2; i++) assert.equal((await call('/api/v1/verify', { key: keys.limited!, body: signed })).status, 200);
      const limited = await call('/api/v1/verify', { key: keys.limited!, body: signed });
      assert.ok(Number(limited.headers.get('retry-after')) >= 1);
      await problem(limited, 429, 'RATE_LIMITED');
      await tenants.setRateLimit(keyIds.limited!, undefined);
      assert.equal((await call('/api/v1/verify', { key: keys.limited!, body: signed })).status, 200);
      for (let i = 0; i < 5; i++) assert.equal((await call('/api/v1/verify', { key: keys.acmeVerify!, body: signed })).status, 200);
    });

    test('every use is audited under the tenant and key; logs never carry a body or a secret', async () => {
      const entries = await store.auditLog({ limit: 1000 });
      const signs = entries.filter((e) => e.action === 'api.sign');
      assert.ok(signs.length >= 3);
      assert.ok(signs.every((e) => e.actor.startsWith('api:')));
      assert.ok(signs.some((e) => e.actor === `api:acme/${keyIds.acme}`));
      assert.ok(entries.some((e) => e.action === 'key.use.sign' && e.actor === `api:acme/${keyIds.acme}`), 'the key opening is audited for the caller too');
      assert.ok(entries.some((e) => e.action === 'api.sign.refused' && e.actor === `api:globex/${keyIds.globex}` && /FORBIDDEN/.test(e.detail ?? '')));
      const requests = logs.filter((l) => l.msg === 'request');
      assert.ok(requests.length > 20);
      const text = JSON.stringify(logs);
      for (const k of Object.values(keys)) assert.ok(!text.includes(k.slice(20)), 'no key secret in the logs');
      assert.ok(!text.includes('statement for November'), 'no body in the logs');
      const line = requests.find((l) => l.route === '/api/v1/sign' && l.status === 200)!;
      assert.equal(line.tenant, 'acme');
      assert.equal(typeof line.ms, 'number');
      assert.ok(requests.some((l) => l.code === 'FORBIDDEN'));
    });

    test('/healthz, /metrics and the OpenAPI document', async () => {
      assert.deepEqual(await (await call('/healthz')).json(), { status: 'ok', batches: 'running' });
      const metrics = await (await call('/metrics')).text();
      assert.match(metrics, /kakitome_http_requests_total\{method="POST",route="\/api\/v1\/sign",status="200"\} \d+/);
      assert.match(metrics, /kakitome_messages_total\{operation="sign",outcome="ok"\} \d+/);
      assert.ok(!/acme|globex/.test(metrics), 'no tenant in the metrics');
      const doc = await (await call('/api/v1/openapi.json')).json() as { openapi: string; paths: Record<string, Record<string, { parameters?: Array<{ name: string }>; responses: Record<string, unknown> }>>; components: { schemas: Record<string, unknown> } };
      assert.equal(doc.openapi, '3.1.0');
      assert.deepEqual(doc.paths['/api/v1/sign']!.post!.parameters!.map((p) => p.name), ['opaque', 'hash', 'pss', 'dkim']);
      assert.deepEqual(doc.paths['/api/v1/encrypt']!.post!.parameters!.map((p) => p.name), ['to', 'cipher', 'oaep', 'sign', 'hideSubject']);
      assert.deepEqual(Object.keys(doc.paths).sort(), ['/api/v1/batches', '/api/v1/batches/{id}', '/api/v1/batches/{id}/result', '/api/v1/decrypt', '/api/v1/encrypt', '/api/v1/identities', '/api/v1/identities/{address}', '/api/v1/openapi.json', '/api/v1/sign', '/api/v1/tenants/{tenant}/settings', '/api/v1/verify', '/healthz', '/metrics']);
      assert.ok(doc.paths['/api/v1/sign']!.post!.responses['413']);
      assert.ok(doc.components.schemas.Verdict && doc.components.schemas.Problem);
    });
  });
}

/** POST /api/v1/sign written by hand (raw-request.ts). */
function signRaw(base: string, headers: Record<string, string>, key: string, write: Parameters<typeof rawRequest>[2]): Promise<{ status: number; body: string }> {
  return rawRequest(new URL('/api/v1/sign', base), { ...headers, authorization: `Bearer ${key}`, 'content-type': 'message/rfc822' }, write);
}
