/**
 * Identities over HTTP (issue 10): POST /api/v1/identities (a PKCS#12 upload, raw
 * or multipart, legacy RC2 included; or an identity issued by the internal CA) and
 * DELETE /api/v1/identities/{address}, scope admin, with the rules and bounds of
 * `kakitome tenant identity`. A new, renewed or retired identity counts from the
 * next request on; the signer of each signed message is read back with
 * `openssl cms -verify -signer`. PKCS#12 files are made by `openssl pkcs12`.
 * (Two server processes on one PostgreSQL: serve-identities-nodes.test.ts.)
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPrivateKey, generateKeyPairSync, randomBytes, X509Certificate, type KeyObject } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { encodePem } from '../../src/asn1/pem.ts';
import { OID } from '../../src/asn1/oids.ts';
import { initCertificateAuthority } from '../../src/ca/init-certificate-authority.ts';
import { issueMailboxCertificate } from '../../src/ca/issue-mailbox-certificate.ts';
import { masterKeyFromBytes } from '../../src/keys/master-key.ts';
import { Store } from '../../src/store/store.ts';
import { TenantDirectory } from '../../src/store/tenant-directory.ts';
import { startServer, type RunningServer } from '../../src/server/start-server.ts';
import { WorkGate } from '../../src/server/work-gate.ts';
import { Certificate } from '../../src/x509/certificate.ts';
import { issueCertificate } from '../../src/x509/issue.ts';
import { TestPki } from '../helpers/pki.ts';
import { openSqliteEngine } from '../../src/store/sqlite-engine.ts';

const dir = mkdtempSync(join(tmpdir(), 'kakitome-serve-ids-'));
const partner = new TestPki('Partner Commercial CA');
const master = masterKeyFromBytes(randomBytes(32));
const internalRoot = join(dir, 'internal-root.pem');

function draft(from: string): Buffer {
  return Buffer.from(`From: ${from}\r\nTo: customer@example.net\r\nSubject: Statement\r\nDate: Sun, 06 Dec 2026 10:00:00 +0000\r\nMessage-ID: <${randomBytes(6).toString('hex')}@acme.example>\r\nContent-Type: text/plain\r\n\r\nYour statement is ready.\r\n`);
}

let n = 0;
const file = (name: string) => join(dir, `${++n}-${name}`);

/** A mailbox certificate for `email` from the partner CA, and its key. */
function partnerIdentity(email: string, opts: { notBefore?: Date; ca?: boolean } = {}): { cert: Certificate; key: KeyObject } {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const cert = issueCertificate({
    subject: { commonName: email, emailAddress: email }, publicKey, issuer: partner.caCert, signingKey: partner.caKey,
    keyUsage: opts.ca ? ['keyCertSign', 'digitalSignature'] : ['digitalSignature', 'nonRepudiation', 'keyAgreement'], extKeyUsage: [OID.emailProtection], emails: [email],
    ...(opts.ca ? { ca: true } : {}), ...(opts.notBefore ? { notBefore: opts.notBefore } : {}),
  });
  return { cert, key: privateKey };
}

/** `openssl pkcs12 -export` of key and certificate (and chain), AES by default, RC2 with legacy. */
function pkcs12(id: { cert: Certificate; key: KeyObject }, password: string, o: { legacy?: boolean; chain?: Certificate[]; iter?: number; nocerts?: boolean } = {}): Buffer {
  const keyPath = file('key.pem');
  const certPath = file('cert.pem');
  const out = file('id.p12');
  writeFileSync(keyPath, id.key.export({ format: 'pem', type: 'pkcs8' }));
  writeFileSync(certPath, encodePem('CERTIFICATE', id.cert.der));
  const args = ['pkcs12', '-export', '-inkey', keyPath, '-passout', `pass:${password}`, '-out', out];
  args.push(...(o.nocerts ? ['-nocerts'] : ['-in', certPath]));
  if (o.chain?.length) {
    const chainPath = file('chain.pem');
    writeFileSync(chainPath, o.chain.map((c) => encodePem('CERTIFICATE', c.der)).join(''));
    args.push('-certfile', chainPath);
  }
  if (o.legacy) args.push('-legacy');
  if (o.iter) args.push('-iter', String(o.iter));
  execFileSync('openssl', args, { stdio: 'pipe' });
  return readFileSync(out);
}

/** Verifies with openssl against `caFile` and returns the signer certificate's SHA-256 fingerprint (lower-case hex). */
function opensslSigner(signed: Uint8Array, caFile: string): string {
  const input = file('signed.eml');
  const signer = file('signer.pem');
  writeFileSync(input, signed);
  execFileSync('openssl', ['cms', '-verify', '-in', input, '-CAfile', caFile, '-purpose', 'smimesign', '-signer', signer, '-out', '/dev/null'], { stdio: 'pipe' });
  return new X509Certificate(readFileSync(signer)).fingerprint256.replaceAll(':', '').toLowerCase();
}

describe('identities over HTTP', () => {
  let store: Store;
  let server: RunningServer;
  const logs: Array<Record<string, unknown>> = [];
  const keys: Record<string, string> = {};
  const keyIds: Record<string, string> = {};
  let partnerBundle = '';

  // A connection per request (Connection: close): this file blocks its own event
  // loop, which is also the server's, with openssl (execFileSync: PKCS#12 files with
  // up to two million PBKDF2 iterations) for seconds between requests. Meanwhile the
  // server's keep-alive timeout (5 s) and undici's (the server's hint less 2 s, on a
  // coarse timer) both lapse, and which fires first when the loop resumes is a race:
  // undici could send the next request on a connection the server is closing, and
  // get ECONNRESET. The server is right to close an idle connection after the
  // timeout it advertised; a client that reuses one must be ready to retry, which
  // fetch does not do for a POST.
  const call = (path: string, init: { key?: string; body?: Uint8Array | string | FormData; type?: string; method?: string; headers?: Record<string, string> } = {}) => fetch(new URL(path, server.url), {
    method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
    headers: { connection: 'close', ...(init.key ? { authorization: `Bearer ${init.key}` } : {}), ...(init.type ? { 'content-type': init.type } : {}), ...init.headers },
    ...(init.body !== undefined ? { body: init.body } : {}),
  });
  const upload = (key: string, p12: Uint8Array, password: string | undefined, type = 'application/pkcs12') =>
    call('/api/v1/identities', { key, body: p12, type, headers: password === undefined ? {} : { 'kakitome-pkcs12-password': password } });
  const sign = (key: string, from: string) => call('/api/v1/sign', { key, body: draft(from), type: 'message/rfc822' });
  async function ok(r: Response, status = 200): Promise<any> {
    const text = await r.text();
    assert.equal(r.status, status, text);
    return JSON.parse(text);
  }
  async function problem(r: Response, status: number, code: string): Promise<{ detail: string }> {
    const text = await r.text();
    assert.equal(r.status, status, text);
    assert.equal(JSON.parse(text).code, code, text);
    return JSON.parse(text);
  }
  async function signedBy(from: string, caFile = partnerBundle): Promise<string> {
    const r = await sign(keys.acmeSign!, from);
    const body = Buffer.from(await r.arrayBuffer());
    assert.equal(r.status, 200, body.toString());
    return opensslSigner(body, caFile);
  }
  const certificateCount = async () => (await store.listCertificates()).length;

  before(async () => {
    store = await Store.open(openSqliteEngine(join(dir, 'kakitome.db')), { masterKey: master, actor: 'tester' });
    const { root } = await initCertificateAuthority(store, { name: 'Acme Test CA', keyType: 'p256' });
    writeFileSync(internalRoot, encodePem('CERTIFICATE', root.certificate.der));
    partnerBundle = partner.caPath;
    const tenants = new TenantDirectory(store);
    await tenants.addTenant('acme', ['acme.example']);
    await tenants.addTenant('globex', ['globex.example']);
    await issueMailboxCertificate(store, { email: 'info@globex.example', keyType: 'p256' });
    await tenants.registerIdentities('globex', ['info@globex.example']);
    for (const [name, tenant, scopes] of [['acmeAdmin', 'acme', ['admin']], ['acmeSign', 'acme', ['sign', 'verify']], ['globexAdmin', 'globex', ['admin']], ['globexSign', 'globex', ['sign']]] as const) {
      const k = await tenants.createApiKey(tenant, { scopes: [...scopes] });
      keys[name] = k.token;
      keyIds[name] = k.key.id;
    }
    server = await startServer(store, { host: '127.0.0.1', port: 0, maxMessageBytes: 256 * 1024, shutdownGraceMs: 5000, revocation: 'allow-unknown' }, { log: (e) => logs.push(e), version: 'test' });
  });
  after(async () => {
    await server?.close();
    partner.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a PKCS#12 uploaded raw signs the next request; a renewed one takes over at once', async () => {
    await problem(await sign(keys.acmeSign!, 'billing@acme.example'), 403, 'FORBIDDEN');
    const first = partnerIdentity('billing@acme.example', { notBefore: new Date(Date.now() - 86_400_000) });
    const added = await ok(await upload(keys.acmeAdmin!, pkcs12(first, 'pw 1'), 'pw 1'), 201);
    assert.equal(added.certificate, first.cert.fingerprint256);
    assert.deepEqual(added.identities.map((i: any) => [i.address, i.certificates.map((c: any) => c.status)]), [['billing@acme.example', ['current']]]);
    assert.equal(await signedBy('Billing <billing@acme.example>'), first.cert.fingerprint256);

    // Renewal: a newer certificate (new key) for the same address signs from the next request on.
    const renewed = partnerIdentity('billing@acme.example');
    await ok(await upload(keys.acmeAdmin!, pkcs12(renewed, 'pw 2'), 'pw 2'), 201);
    assert.equal(await signedBy('billing@acme.example'), renewed.cert.fingerprint256);
    const listed = await ok(await call('/api/v1/identities', { key: keys.acmeAdmin! }));
    assert.deepEqual(listed.identities.find((i: any) => i.address === 'billing@acme.example').certificates.map((c: any) => c.fingerprint), [first.cert.fingerprint256, renewed.cert.fingerprint256]);
  });

  test('multipart/form-data with a legacy RC2 PKCS#12 (openssl -legacy), read off the request thread', async () => {
    const legacy = partnerIdentity('legacy@acme.example');
    const file = pkcs12(legacy, 'パスワード', { legacy: true });
    const info = spawnSync('openssl', ['pkcs12', '-info', '-noout', '-legacy', '-passin', 'pass:パスワード'], { input: file });
    assert.match(info.stderr.toString(), /pbeWithSHA1And40BitRC2-CBC/, 'the file is a legacy RC2 one');
    const form = new FormData();
    form.set('pkcs12', new Blob([file], { type: 'application/pkcs12' }), 'legacy.p12');
    form.set('password', 'パスワード');
    await ok(await call('/api/v1/identities', { key: keys.acmeAdmin!, body: form }), 201);
    assert.equal(await signedBy('legacy@acme.example'), legacy.cert.fingerprint256);
  });

  test('the internal CA issues an identity from JSON; openssl verifies its signature up to the internal root', async () => {
    const issued = await ok(await call('/api/v1/identities', { key: keys.acmeAdmin!, type: 'application/json', body: JSON.stringify({ email: 'news@acme.example', keyType: 'p256', days: 30 }) }), 201);
    assert.equal(issued.identities[0].address, 'news@acme.example');
    assert.equal(issued.identities[0].certificates[0].status, 'current');
    assert.ok(issued.identities[0].certificates[0].daysLeft <= 30);
    assert.equal(await signedBy('news@acme.example', internalRoot), issued.certificate);
    await problem(await call('/api/v1/identities', { key: keys.acmeAdmin!, type: 'application/json', body: JSON.stringify({ email: 'news@globex.example' }) }), 403, 'FORBIDDEN');
    await problem(await call('/api/v1/identities', { key: keys.acmeAdmin!, type: 'application/json', body: JSON.stringify({ email: 'not an address' }) }), 400, 'INVALID_ARGUMENT');
    await problem(await call('/api/v1/identities', { key: keys.acmeAdmin!, type: 'application/json', body: JSON.stringify({ email: 'x@acme.example', days: 900 }) }), 400, 'INVALID_ARGUMENT');
    await problem(await call('/api/v1/identities', { key: keys.acmeAdmin!, type: 'application/json', body: JSON.stringify({ email: 'x@acme.example', ca: 'other' }) }), 400, 'INVALID_ARGUMENT');
    await problem(await call('/api/v1/identities', { key: keys.acmeAdmin!, type: 'application/json', body: '{"email": ' }), 400, 'MALFORMED');
  });

  test('refused uploads leave nothing behind: outside the domains, another tenant\'s address, a CA certificate, no certificate, wrong password', async () => {
    const before = await certificateCount();
    const outside = partnerIdentity('ceo@bank.example');
    assert.match((await problem(await upload(keys.acmeAdmin!, pkcs12(outside, 'pw'), 'pw'), 403, 'FORBIDDEN')).detail, /outside the domains of tenant "acme"/);
    const theirs = partnerIdentity('info@globex.example');
    assert.match((await problem(await upload(keys.acmeAdmin!, pkcs12(theirs, 'pw'), 'pw'), 403, 'FORBIDDEN')).detail, /globex/);
    const ca = partnerIdentity('ca@acme.example', { ca: true });
    assert.match((await problem(await upload(keys.acmeAdmin!, pkcs12(ca, 'pw'), 'pw'), 422, 'KEY_INVALID')).detail, /CA certificate/);
    const keyOnly = partnerIdentity('keyonly@acme.example');
    await problem(await upload(keys.acmeAdmin!, pkcs12(keyOnly, 'pw', { nocerts: true }), 'pw'), 422, 'KEY_INVALID');
    const wrong = partnerIdentity('wrong@acme.example');
    await problem(await upload(keys.acmeAdmin!, pkcs12(wrong, 'right'), 'wrong'), 422, 'KEY_INVALID');
    assert.equal(await certificateCount(), before, 'no certificate was stored by a refused upload');
    assert.equal((await store.listKeys()).filter((k) => k.label?.includes('wrong') || k.certificates.includes(outside.cert.fingerprint256)).length, 0);
  });

  test('hostile bodies: too large, malformed, costly, wrong type, no password, wrong scope', async () => {
    // The files openssl makes (seconds for the costly one) are made before the first request.
    const withoutPassword = pkcs12(partnerIdentity('nopass@acme.example'), 'pw');
    const costly = pkcs12(partnerIdentity('costly@acme.example'), 'pw', { iter: 2_000_001 });
    // Content-Length over the 4 MiB PKCS#12 bound: 413 before the body is read. The
    // client sends the headers only and waits: the answer comes without any body (a
    // client still sending 4 MiB when the server's lingering close ends, which takes
    // only 500 ms on a loaded machine, would see a reset instead of the answer).
    const declared = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest(new URL('/api/v1/identities', server.url), { method: 'POST', headers: { authorization: `Bearer ${keys.acmeAdmin}`, 'content-type': 'application/pkcs12', 'kakitome-pkcs12-password': 'pw', 'content-length': String(4 * 1024 * 1024 + 1) } }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => {
          req.destroy();
          resolve({ status: res.statusCode ?? 0, body });
        });
      });
      req.on('error', (e) => (req.destroyed ? undefined : reject(e)));
      req.flushHeaders();
    });
    assert.equal(declared.status, 413, declared.body);
    assert.equal(JSON.parse(declared.body).code, 'LIMIT');
    // The same without a length (chunked): refused as soon as it passes the bound.
    const chunked = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest(new URL('/api/v1/identities', server.url), { method: 'POST', headers: { authorization: `Bearer ${keys.acmeAdmin}`, 'content-type': 'application/pkcs12', 'kakitome-pkcs12-password': 'pw', 'transfer-encoding': 'chunked' } }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      const chunk = Buffer.alloc(256 * 1024);
      let sent = 0;
      const pump = () => {
        while (sent < 8 * 1024 * 1024) {
          sent += chunk.length;
          if (!req.write(chunk)) return void req.once('drain', pump);
        }
        req.end();
      };
      pump();
    });
    assert.equal(chunked.status, 413, chunked.body);
    await problem(await upload(keys.acmeAdmin!, randomBytes(2000), 'pw'), 400, 'MALFORMED');
    await problem(await upload(keys.acmeAdmin!, withoutPassword, undefined), 400, 'INVALID_ARGUMENT');
    await problem(await upload(keys.acmeAdmin!, Buffer.from('x'), 'pw', 'text/plain'), 415, 'INVALID_ARGUMENT');
    await problem(await call('/api/v1/identities', { key: keys.acmeAdmin!, type: 'multipart/form-data; boundary=zzz', body: '--zzz\r\nContent-Disposition: form-data; name="pkcs12"\r\n\r\nunterminated' }), 400, 'MALFORMED');
    const noPassword = new FormData();
    noPassword.set('pkcs12', new Blob([randomBytes(100)]), 'a.p12');
    await problem(await call('/api/v1/identities', { key: keys.acmeAdmin!, body: noPassword }), 400, 'INVALID_ARGUMENT');
    // A file asking for more key-derivation work than the CLI allows: LIMIT, nothing derived past the bound.
    await problem(await upload(keys.acmeAdmin!, costly, 'pw'), 422, 'LIMIT');
    await problem(await upload(keys.acmeSign!, Buffer.from('x'), 'pw'), 403, 'FORBIDDEN');
    await problem(await upload('kk_0000000000000000_' + 'A'.repeat(43), Buffer.from('x'), 'pw'), 401, 'UNAUTHENTICATED');
  });

  test('a costly import does not hold up other requests', async () => {
    const slow = pkcs12(partnerIdentity('slow@acme.example'), 'pw', { iter: 600_000 });
    let uploaded = 0;
    const pending = upload(keys.acmeAdmin!, slow, 'pw').then(async (r) => {
      uploaded = performance.now();
      return ok(r, 201);
    });
    await new Promise((r) => setTimeout(r, 150));
    const health = await call('/healthz');
    const answered = performance.now();
    assert.equal(health.status, 200);
    await pending;
    assert.ok(answered < uploaded, 'the health check was answered while the PKCS#12 was being read');
  });

  test('retire: the identity stops signing at once, is listed as retired, and another tenant cannot retire it', async () => {
    const id = partnerIdentity('retire@acme.example');
    await ok(await upload(keys.acmeAdmin!, pkcs12(id, 'pw'), 'pw'), 201);
    assert.equal(await signedBy('retire@acme.example'), id.cert.fingerprint256);
    await problem(await call('/api/v1/identities/retire@acme.example', { key: keys.globexAdmin!, method: 'DELETE' }), 404, 'NOT_FOUND');
    await problem(await call('/api/v1/identities/retire@acme.example', { key: keys.acmeSign!, method: 'DELETE' }), 403, 'FORBIDDEN');
    await problem(await call(`/api/v1/identities/retire@acme.example?certificate=${'ab'.repeat(32)}`, { key: keys.acmeAdmin!, method: 'DELETE' }), 404, 'NOT_FOUND');
    await problem(await call('/api/v1/identities/retire@acme.example?certificate=xyz', { key: keys.acmeAdmin!, method: 'DELETE' }), 400, 'INVALID_ARGUMENT');
    const retired = await ok(await call('/api/v1/identities/retire%40acme.example', { key: keys.acmeAdmin!, method: 'DELETE' }));
    assert.equal(retired.retired.length, 1);
    assert.deepEqual(retired.retired[0].certificates, [id.cert.fingerprint256]);
    assert.deepEqual(retired.identity.certificates.map((c: any) => c.status), ['retired']);
    await problem(await sign(keys.acmeSign!, 'retire@acme.example'), 422, 'KEY_INVALID');
    // Idempotent: nothing left to retire.
    assert.deepEqual((await ok(await call('/api/v1/identities/retire@acme.example', { key: keys.acmeAdmin!, method: 'DELETE' }))).retired, []);
    // Renewal after retirement: a new key for the address signs again.
    const next = partnerIdentity('retire@acme.example');
    await ok(await upload(keys.acmeAdmin!, pkcs12(next, 'pw'), 'pw'), 201);
    assert.equal(await signedBy('retire@acme.example'), next.cert.fingerprint256);
  });

  test('a look-alike CA in one tenant\'s upload never replaces the real CA in another tenant\'s signed mail', async () => {
    // Globex uploads an identity issued by a CA it made with the internal issuing CA's name and key identifier.
    const real = (await store.listCertificates()).find((r) => r.isCa && r.certificate.subjectText.includes('S/MIME CA'))!.certificate;
    const ski = Buffer.from(real.subjectKeyIdentifier!).toString('hex');
    const fakeKey = file('fake-ca.key');
    const fakePem = file('fake-ca.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', fakeKey, '-out', fakePem, '-days', '30',
      '-subj', '/O=Acme Test CA/CN=Acme Test CA S\\/MIME CA', '-addext', `subjectKeyIdentifier=${ski}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], { stdio: 'pipe' });
    const fake = Certificate.fromDer(new X509Certificate(readFileSync(fakePem)).raw);
    assert.ok(Buffer.from(fake.subject).equals(Buffer.from(real.subject)) && Buffer.from(fake.subjectKeyIdentifier!).equals(Buffer.from(real.subjectKeyIdentifier!)), 'the look-alike has the real name and key identifier');
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const leaf = issueCertificate({ subject: { commonName: 'promo@globex.example' }, publicKey, issuer: fake, signingKey: createPrivateKey(readFileSync(fakeKey)), keyUsage: ['digitalSignature'], extKeyUsage: [OID.emailProtection], emails: ['promo@globex.example'] });
    await ok(await upload(keys.globexAdmin!, pkcs12({ cert: leaf, key: privateKey }, 'pw', { chain: [fake] }), 'pw'), 201);
    // Acme's identity from the internal CA, issued after the upload, still goes out with the real issuing CA.
    const issued = await ok(await call('/api/v1/identities', { key: keys.acmeAdmin!, type: 'application/json', body: JSON.stringify({ email: 'statements@acme.example', keyType: 'p256' }) }), 201);
    assert.equal(await signedBy('statements@acme.example', internalRoot), issued.certificate);
  });

  test('audited under the caller; no password or key material in the logs; in the OpenAPI document', async () => {
    const entries = await store.auditLog({ limit: 2000 });
    assert.ok(entries.some((e) => e.action === 'api.identities.add' && e.actor === `api:acme/${keyIds.acmeAdmin}` && /billing@acme\.example from a PKCS#12 upload/.test(e.detail ?? '')));
    assert.ok(entries.some((e) => e.action === 'tenant.identity' && e.actor === `api:acme/${keyIds.acmeAdmin}`));
    assert.ok(entries.some((e) => e.action === 'api.identities.retire' && e.object === 'retire@acme.example'));
    assert.ok(entries.some((e) => e.action === 'api.identities.add.refused' && /FORBIDDEN/.test(e.detail ?? '')));
    const text = JSON.stringify(logs);
    assert.ok(!text.includes('パスワード') && !text.includes('pw 1'), 'no password in the logs');
    const doc = await ok(await call('/api/v1/openapi.json'));
    const add = doc.paths['/api/v1/identities'].post;
    assert.deepEqual(Object.keys(add.requestBody.content).sort(), ['application/json', 'application/pkcs12', 'multipart/form-data']);
    assert.equal(add.requestBody.content['application/json'].schema.$ref, '#/components/schemas/IssueIdentity');
    assert.ok(add.parameters.some((p: any) => p.name === 'kakitome-pkcs12-password' && p.in === 'header'));
    const del = doc.paths['/api/v1/identities/{address}'].delete;
    assert.deepEqual(del.parameters.map((p: any) => [p.name, p.in, p.required]), [['address', 'path', true], ['certificate', 'query', false]]);
    assert.ok(del.responses['404'] && add.responses['201']);
  });
});

test('WorkGate: one at a time, a bounded queue, 429 beyond it', async () => {
  const gate = new WorkGate(1, 1);
  let release!: () => void;
  const first = gate.run('imports', () => new Promise<string>((r) => (release = () => r('first'))));
  const second = gate.run('imports', async () => 'second');
  await assert.rejects(gate.run('imports', async () => 'third'), (e: { status?: number; code?: string }) => e.status === 429 && e.code === 'RATE_LIMITED');
  release();
  assert.deepEqual(await Promise.all([first, second]), ['first', 'second']);
  assert.equal(await gate.run('imports', async () => 'again'), 'again');
});
