/**
 * The console over a real socket, without a browser, on what a browser cannot be
 * made to do wrong on purpose: forged Origin and Sec-Fetch-Site, a foreign Host
 * (DNS rebinding), every route with every role, oversized uploads, rate limits,
 * links used twice, roles given by someone who may not. First run here imports an
 * existing CA (a root and an issuing CA made by the test) from a PKCS#12 file;
 * the browser test creates one.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { masterKeyFromBytes } from '../../src/keys/master-key.ts';
import { exportPkcs12 } from '../../src/keys/export-pkcs12.ts';
import { encodePem } from '../../src/asn1/pem.ts';
import { OID } from '../../src/asn1/oids.ts';
import { issueCertificate } from '../../src/x509/issue.ts';
import { parseCertificate } from '../../src/x509/certificate.ts';
import { importPkcs12 } from '../../src/keys/import-pkcs12.ts';
import { Store } from '../../src/store/store.ts';
import { openSqliteEngine } from '../../src/store/sqlite-engine.ts';
import type { ConsoleRole } from '../../src/store/people-directory.ts';
import { startServer, type RunningServer } from '../../src/server/start-server.ts';
import { issueSetupLink } from '../../src/server/console/first-run.ts';
import { CONSOLE_ROUTES } from '../../src/server/console/console-routes.ts';
import { CONTENT_SECURITY_POLICY } from '../../src/server/console/security-headers.ts';
import { en } from '../../src/server/console/messages/en.ts';
import { ja } from '../../src/server/console/messages/ja.ts';
import { Attribute, Client } from 'ldapts';
import { generateKey, TestPki } from '../helpers/pki.ts';
import { startSlapd, type LdapServer } from '../store/ldap-server.ts';
import { readPlist } from './read-plist.ts';
import { ConsoleClient, TEST_PASSWORD } from './console-client.ts';
import { ADMIN_ALLOWED } from './admin-allowed.ts';

const dir = mkdtempSync(join(tmpdir(), 'kakitome-console-http-'));
const pki = new TestPki('Console Import Root');
const PASSWORD = TEST_PASSWORD;
const CHECK_LIMIT = 64 * 1024;
let server: RunningServer;
let store: Store;
let ldap: LdapServer;
let origin: string;
const logs: Array<Record<string, unknown>> = [];

after(async () => {
  await server?.close();
  await ldap?.stop();
  pki.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

/** A browser without a browser, on this file's server. */
class Browser extends ConsoleClient {
  constructor(headers: Record<string, string> = {}) {
    super(() => ({ url: server.url, origin }), headers);
  }
}

function makeCaFile(): Buffer {
  const keys = generateKey('p256');
  const now = Date.now();
  const issuing = issueCertificate({
    subject: { commonName: 'Imported S/MIME CA', organization: 'Sample KK' }, publicKey: keys.publicKey, issuer: pki.caCert, signingKey: pki.caKey,
    ca: { pathLength: 0 }, keyUsage: ['keyCertSign', 'cRLSign'], extKeyUsage: [OID.emailProtection],
    notBefore: new Date(now - 60_000), notAfter: new Date(now + 365 * 86_400_000),
  });
  return exportPkcs12({ key: keys.privateKey, certificate: issuing, chain: [pki.caCert], password: 'ca file pass', iterations: 2048 });
}

const people: Record<string, string> = {};

/** The company directory: one person whose certificate our CA's root vouches for, one from a CA nobody trusts. */
async function startDirectory(): Promise<LdapServer> {
  const server = await startSlapd();
  const c = new Client({ url: server.url });
  await c.bind(server.rootDn, server.password);
  await c.add(server.baseDn, { objectClass: ['dcObject', 'organization'], dc: 'example', o: 'Example' });
  const entry = (cn: string, der: Buffer) => [
    new Attribute({ type: 'objectClass', values: ['inetOrgPerson'] }), new Attribute({ type: 'cn', values: [cn] }), new Attribute({ type: 'sn', values: [cn] }),
    new Attribute({ type: 'mail', values: [`${cn}@example.com`] }), new Attribute({ type: 'userCertificate;binary', values: [der] }),
  ];
  await c.add(`cn=ldapfriend,${server.baseDn}`, entry('ldapfriend', pki.identity('rsa2048', 'ldapfriend').cert.der));
  await c.add(`cn=stranger,${server.baseDn}`, entry('stranger', new TestPki('Nobody Trusts Me').identity('rsa2048', 'stranger').cert.der));
  await c.unbind();
  return server;
}

before(async () => {
  ldap = await startDirectory();
  store = await Store.open(openSqliteEngine(join(dir, 'kakitome.db')), { masterKey: masterKeyFromBytes(randomBytes(32)), actor: 'serve' });
  server = await startServer(store, { host: '127.0.0.1', port: 0, maxMessageBytes: 1024 * 1024, shutdownGraceMs: 2000, revocation: 'allow-unknown', checkMaxBytes: CHECK_LIMIT }, {
    log: (e) => logs.push(e), version: 'test',
    // A cheap hash keeps the many sign-ins here fast (console-store.test.ts checks the real cost); a low limit keeps the rate test short. The route walk posts to every issuing route as the user: on a fast run its issues and the next test's fell in one minute (5 a person by default).
    console: { passwordHash: { memoryKiB: 1024, passes: 1, parallelism: 1 }, rates: { signInPerAddress: 60, linkPerAddress: 100, issuePerPerson: 100 }, ldap: { url: ldap.url, baseDn: ldap.baseDn } },
  });
  origin = server.console.origin.baseUrl;
});

test('first run: the setup link works once, only from the console itself, and imports an existing CA with its chain', async () => {
  const setup = (await issueSetupLink(server.console))!;
  assert.match(setup.url, new RegExp(`^${origin}/setup/[A-Za-z0-9_-]{43}$`));
  const path = new URL(setup.url).pathname;
  const b = new Browser();
  assert.equal((await b.request('/setup/' + 'A'.repeat(43))).status, 404);
  assert.equal((await b.request(path)).status, 200);
  const caFile = makeCaFile();
  const form = () => {
    const f = new FormData();
    f.set('organisation', 'Sample KK');
    f.set('domains', 'example.co.jp\nbranch.example.co.jp');
    f.set('name', 'Admin');
    f.set('email', 'admin@example.co.jp');
    f.set('password', PASSWORD);
    f.set('password2', PASSWORD);
    f.set('ca', 'import');
    f.set('ca-file', new Blob([caFile]), 'ca.p12');
    f.set('ca-password', 'ca file pass');
    return f;
  };
  // From another site, or with no Origin at all: refused before anything is read, the link still usable.
  assert.equal((await b.request(path, { form: form(), origin: 'http://evil.example' })).status, 403);
  assert.equal((await b.request(path, { form: form(), origin: null })).status, 403);
  assert.equal((await b.request(path, { form: form(), headers: { 'sec-fetch-site': 'cross-site' } })).status, 403);
  const mismatch = form();
  mismatch.set('password2', 'another password');
  const refused = await b.request(path, { form: mismatch });
  assert.equal(refused.status, 400);
  assert.match(await refused.text(), /The two passwords differ/);
  const wrongCa = form();
  wrongCa.set('ca-password', 'wrong');
  assert.equal((await b.request(path, { form: wrongCa })).status, 400);
  const done = await b.request(path, { form: form() });
  assert.equal(done.status, 303, await done.text());
  assert.equal(done.headers.get('location'), '/admin?setup=done');
  const cookie = done.headers.getSetCookie().find((c) => c.startsWith('__Host-kakitome-session='))!;
  assert.match(cookie, /; Path=\/; HttpOnly; Secure; SameSite=Lax$/);
  assert.ok(!/Domain=|Max-Age/i.test(cookie));
  assert.equal((await b.request(path, { form: form() })).status, 404, 'the link is used up');
  assert.equal((await new Browser().request(path)).status, 404);
  assert.equal(await issueSetupLink(server.console), undefined, 'no setup link once there is an administrator');
  const dashboard = await b.request('/admin?setup=done');
  const html = await dashboard.text();
  assert.equal(dashboard.status, 200);
  assert.match(html, /Imported S\/MIME CA/);
  assert.ok(!logs.some((l) => JSON.stringify(l).includes(path.slice(7))), 'the link never reaches the log');

  const pd = server.console.people;
  for (const [name, roles] of [['user', []], ['officer', ['registration-officer']], ['auditor', ['auditor']], ['helpdesk', ['helpdesk']]] as Array<[string, ConsoleRole[]]>) {
    // Staff outside the organisation's domains: the route test issues them no certificate (time).
    people[name] = (await pd.addPerson({ email: `${name}@${name === 'user' ? 'example.co.jp' : 'staff.example'}`, roles, password: PASSWORD })).id;
  }
  people.admin = (await pd.findPersonByEmail('admin@example.co.jp'))!.id;
});

test('every console page carries the security headers and no inline script or style', async () => {
  const b = new Browser();
  await b.signIn('admin@example.co.jp');
  for (const path of ['/', '/sign-in', '/check', '/me', '/admin', '/admin/people', '/admin/settings', '/admin/audit', '/admin/certificates', '/nowhere', '/assets/console.css']) {
    const r = await b.request(path);
    assert.equal(r.headers.get('content-security-policy'), CONTENT_SECURITY_POLICY, path);
    assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(r.headers.get('x-frame-options'), 'DENY');
    assert.equal(r.headers.get('referrer-policy'), 'same-origin');
    assert.equal(r.headers.get('cache-control'), path.startsWith('/assets/') ? 'public, max-age=3600' : 'no-store', path);
    const text = await r.text();
    if (!r.headers.get('content-type')?.startsWith('text/html')) continue;
    assert.ok(!/<script(?![^>]*\bsrc=)/i.test(text), `${path}: inline script`);
    assert.ok(!/<style|\sstyle=|\son[a-z]+=/i.test(text), `${path}: inline style or handler`);
  }
  assert.equal((await b.request('/nowhere')).status, 404);
  assert.match(await (await b.request('/assets/htmx.min.js')).text(), /htmx/);
  assert.equal((await b.request('/assets/../package.json')).status, 404);
  // The API keeps its problem details.
  const api = await b.request('/api/v1/nothing');
  assert.equal(api.status, 404);
  assert.match(api.headers.get('content-type') ?? '', /problem\+json/);
});

test('sign-in: a new session every time (the old cookie stops working), one answer for every failure', async () => {
  const b = new Browser();
  assert.equal((await b.signIn('user@example.co.jp')).status, 303);
  const first = b.cookies.get('__Host-kakitome-session')!;
  assert.equal((await b.request('/me')).status, 200);
  const again = await b.signIn('user@example.co.jp');
  assert.equal(again.headers.get('location'), '/me');
  const second = b.cookies.get('__Host-kakitome-session')!;
  assert.notEqual(first, second);
  const old = new Browser();
  old.cookies.set('__Host-kakitome-session', first);
  assert.equal((await old.request('/me')).headers.get('location'), '/sign-in?next=%2Fme', 'the session before sign-in was ended');
  const wrong = await new Browser().signIn('user@example.co.jp', 'wrong password');
  const unknown = await new Browser().signIn('nobody@example.co.jp', 'wrong password');
  assert.equal(wrong.status, 401);
  assert.equal(unknown.status, 401);
  const strip = (s: string) => s.replace(/value="[^"]*"/g, '');
  assert.equal(strip(await wrong.text()), strip(await unknown.text()));
  // A staff member lands on the dashboard; `next` goes only to our own paths.
  const staff = new Browser();
  assert.equal((await staff.request('/sign-in', { form: { email: 'auditor@staff.example', password: PASSWORD, next: '//evil.example/' } })).headers.get('location'), '/');
  assert.equal((await staff.signIn('auditor@staff.example')).headers.get('location'), '/admin');
  const out = await staff.request('/sign-out', { form: {} });
  assert.equal(out.headers.get('location'), '/sign-in?signed-out');
  assert.equal((await staff.request('/admin')).status, 303);
});

// Who may use each route: written out here, not read from the route table, so a
// wrong declaration there fails this test.
const ALLOWED: Record<string, readonly string[]> = {
  '/admin': ['admin', 'officer', 'auditor', 'helpdesk'],
  '/admin/people': ['admin', 'officer', 'helpdesk'],
  'POST /admin/people': ['admin', 'officer'],
  'POST /admin/people/:id/invitation': ['admin', 'officer', 'helpdesk'],
  'POST /admin/people/:id/roles': ['admin'],
  '/admin/settings': ['admin'],
  'POST /admin/settings': ['admin'],
  '/admin/audit': ['admin', 'auditor'],
  '/admin/audit/export': ['admin', 'auditor'],
  '/admin/certificates': ['admin', 'officer'],
  'POST /admin/certificates/crl': ['admin', 'officer'],
  '/admin/certificates/:id': ['admin', 'officer'],
  'POST /admin/certificates/:id/revoke': ['admin', 'officer'],
  ...ADMIN_ALLOWED,
  '/admin/mail-server': ['admin'],
  'POST /admin/mail-server': ['admin'],
};
const SIGNED_IN = ['POST /sign-out', '/lookup', '/me', 'POST /me/certificate', '/me/certificate/download/:id', 'POST /me/certificate/renew', 'POST /me/certificate/request', 'POST /me/keys', '/me/lost', 'POST /me/lost', '/me/guides', '/me/security', 'POST /me/passkeys/options', 'POST /me/passkeys', 'POST /me/passkeys/:id/remove', '/me/recovered', 'POST /me/recovered/:id', '/confirm', 'POST /confirm', 'POST /confirm/passkey/options', 'POST /confirm/passkey', '/confirm/oidc'];

test('every route, every role: the server refuses what a role may not do', async () => {
  const forbiddenText = en.errors.forbidden;
  for (const role of ['anonymous', 'user', 'officer', 'auditor', 'helpdesk', 'admin']) {
    const b = new Browser();
    if (role !== 'anonymous') assert.equal((await b.signIn(`${role}@${role === 'user' || role === 'admin' ? 'example.co.jp' : 'staff.example'}`)).status, 303, role);
    // Sign-out last: it ends the session the other routes need.
    const routes = [...CONSOLE_ROUTES].sort((x, y) => Number(x.page === 'sign-out') - Number(y.page === 'sign-out'));
    for (const r of routes) {
      const key = r.method === 'get' ? r.path : `POST ${r.path}`;
      // Parameters name nothing real: the access decision comes before any lookup.
      const path = r.path.replace(':id', 'no-such-id').replace(':token', 'A'.repeat(43)).replace(':name', 'console.css');
      // The roles route is tried with role=administrator by everyone: nobody may get a role that way.
      const res = await b.request(path, r.method === 'post' ? { form: r.page === 'admin.people.roles' ? { role: 'administrator' } : {} } : {});
          const body = await res.text();
      const label = `${role} ${key} → ${res.status}`;
      const staffRoute = ALLOWED[key];
      const needsSession = staffRoute !== undefined || SIGNED_IN.includes(key);
      if (role === 'anonymous' && needsSession) {
        if (r.method === 'get') assert.equal(res.headers.get('location'), `/sign-in?next=${encodeURIComponent(path)}`, label);
        else assert.equal(res.status, 401, label);
      } else if (staffRoute && !staffRoute.includes(role)) {
        assert.equal(res.status, 403, label);
        assert.ok(body.includes(forbiddenText), label);
      } else {
        assert.ok(!body.includes(forbiddenText) && !body.includes(en.errors.signInFirst), label);
      }
    }
  }
  // Nobody got a role on the way.
  assert.deepEqual((await server.console.people.findPerson(people.user!))!.roles, []);
});

test('roles and invitations: only an administrator gives roles or invites someone who holds one', async () => {
  const officer = new Browser();
  await officer.signIn('officer@staff.example');
  const withRole = await officer.request('/admin/people', { form: { email: 'new-admin@example.co.jp', role: 'administrator' } });
  assert.equal(withRole.status, 403);
  assert.equal(await server.console.people.findPersonByEmail('new-admin@example.co.jp'), undefined);
  const added = await officer.request('/admin/people', { form: { email: 'hanako@example.co.jp', name: '花子' } });
  const html = await added.text();
  assert.equal(added.status, 200);
  const link = /data-invitation-link>([^<]+)</.exec(html)![1]!;
  assert.ok(link.startsWith(`${origin}/welcome/`));
  const helpdesk = new Browser();
  await helpdesk.signIn('helpdesk@staff.example');
  assert.equal((await helpdesk.request(`/admin/people/${people.admin}/invitation`, { form: {} })).status, 403, 'a helpdesk link for an administrator would take over the account');
  assert.equal((await helpdesk.request(`/admin/people/${people.user}/invitation`, { form: {} })).status, 200);
  // The invited person chooses a password once.
  const hanako = new Browser({ 'accept-language': 'ja,en;q=0.5' });
  const path = new URL(link).pathname;
  const page = await hanako.request(path);
  assert.match(await page.text(), /hanako@example\.co\.jp/);
  assert.equal((await hanako.request(path, { form: { password: 'short', password2: 'short' } })).status, 400);
  const set = await hanako.request(path, { form: { password: 'hanako password', password2: 'hanako password' } });
  assert.equal(set.headers.get('location'), '/me');
  assert.equal((await hanako.request(path)).status, 404, 'the link is used up');
  assert.match(await (await hanako.request('/me')).text(), new RegExp(ja.me.title));
  // The administrator takes a role away: that person's sessions end at once.
  const admin = new Browser();
  await admin.signIn('admin@example.co.jp');
  const auditor = new Browser();
  await auditor.signIn('auditor@staff.example');
  assert.equal((await auditor.request('/admin/audit')).status, 200);
  assert.equal((await admin.request(`/admin/people/${people.auditor}/roles`, { form: { role: [] } })).status, 200);
  assert.equal((await auditor.request('/admin/audit')).status, 303);
  const last = await admin.request(`/admin/people/${people.admin}/roles`, { form: { role: 'auditor' } });
  assert.equal(last.status, 400);
  assert.match(await last.text(), /last administrator/);
});

test('serve with no address listens on 127.0.0.1:8080; a public URL is an origin only', async () => {
  const { resolveServeConfig } = await import('../../src/server/config.ts');
  const config = resolveServeConfig({}, {});
  assert.equal(`${config.host}:${config.port}`, '127.0.0.1:8080');
  assert.equal(resolveServeConfig({}, { KAKITOME_PUBLIC_URL: 'https://console.example.co.jp' }).publicUrl, 'https://console.example.co.jp');
  for (const bad of ['console.example.co.jp', 'https://console.example.co.jp/path', 'https://user:pw@console.example.co.jp', 'ftp://console.example.co.jp']) {
    assert.throws(() => resolveServeConfig({ publicUrl: bad }, {}), /--public-url/, bad);
  }
  assert.deepEqual(resolveServeConfig({}, { KAKITOME_LDAP_URL: 'ldaps://ldap.example.co.jp:636', KAKITOME_LDAP_BASE: 'dc=example,dc=co,dc=jp' }).ldap, { url: 'ldaps://ldap.example.co.jp:636', baseDn: 'dc=example,dc=co,dc=jp' });
  assert.throws(() => resolveServeConfig({ ldapUrl: 'ldap://ldap.example.co.jp' }, {}), /--ldap-url and --ldap-base go together/);
  assert.throws(() => resolveServeConfig({ ldapUrl: 'http://ldap.example.co.jp', ldapBase: 'dc=x' }, {}), /--ldap-url http:/);
  const { consoleOriginFor } = await import('../../src/server/console/console-origin.ts');
  const behindProxy = consoleOriginFor('http://127.0.0.1:8080/', 'https://console.example.co.jp');
  assert.deepEqual([...behindProxy.hosts], ['console.example.co.jp']);
  assert.deepEqual([...behindProxy.origins], ['https://console.example.co.jp']);
  assert.equal(behindProxy.secure, true);
  const loopback = consoleOriginFor('http://127.0.0.1:8080/');
  assert.deepEqual([...loopback.hosts].sort(), ['127.0.0.1:8080', 'localhost:8080']);
});

test('the language: cookie, then Accept-Language, else English', async () => {
  const lang = async (headers: Record<string, string>) => /<html lang="(\w+)"/.exec(await (await new Browser(headers).request('/sign-in')).text())![1];
  assert.equal(await lang({}), 'en');
  assert.equal(await lang({ 'accept-language': 'ja-JP,ja;q=0.9' }), 'ja');
  assert.equal(await lang({ 'accept-language': 'fr, en;q=0.2, ja;q=0.8' }), 'ja');
  assert.equal(await lang({ 'accept-language': 'ja;q=0, en' }), 'en');
  assert.equal(await lang({ 'accept-language': 'ja', cookie: '__Host-kakitome-lang=en' }), 'en');
  assert.equal(await lang({ 'accept-language': 'ja', cookie: '__Host-kakitome-lang=xx' }), 'ja');
  const b = new Browser({ 'accept-language': 'en' });
  const set = await b.request('/language', { form: { lang: 'ja', next: '/check' } });
  assert.equal(set.headers.get('location'), '/check');
  assert.match(set.headers.get('set-cookie') ?? '', /^__Host-kakitome-lang=ja; Max-Age=31536000; Path=\/; Secure; SameSite=Lax$/);
  assert.match(await (await b.request('/check')).text(), /<html lang="ja">/);
  assert.equal((await b.request('/language', { form: { lang: 'ja', next: 'https://evil.example/' } })).headers.get('location'), '/');
  // A page answering a POST sends the switch back to the start page, not to a URL that cannot be fetched.
  assert.match(await (await b.request('/check', { form: { 'message-text': 'x' } })).text(), /name="next" value="\/"/);
  assert.match(await (await b.request('/check')).text(), /name="next" value="\/check"/);
});

test('my certificate: issued by the imported CA, handed over once, to its owner only', async () => {
  // A connection per request: this test reads the PKCS#12 files (600,000 PBKDF2
  // iterations each) and runs openssl and python3 synchronously, on the event loop
  // it shares with the server, for seconds; the server's keep-alive timeout and
  // undici's then both lapse and race, and a request sent on a connection the
  // server is closing meets ECONNRESET (the server is right to close it).
  const b = new Browser({ connection: 'close' });
  await b.signIn('user@example.co.jp');
  const ready = await b.request('/me/certificate', { form: { profile: 'modern' } });
  const html = await ready.text();
  assert.equal(ready.status, 200, html);
  const password = /data-handover-password>([A-Z0-9-]+)</.exec(html)![1]!;
  assert.match(password, /^[A-HJ-NP-Z2-9]{5}(-[A-HJ-NP-Z2-9]{5}){3}$/);
  const download = /href="(\/me\/certificate\/download\/[A-Za-z0-9_-]+)"/.exec(html)![1]!;
  const other = new Browser({ connection: 'close' });
  await other.signIn('helpdesk@staff.example');
  assert.equal((await other.request(download)).status, 404, 'another person cannot take it');
  const file = await b.request(download);
  assert.equal(file.status, 200);
  assert.equal(file.headers.get('content-type'), 'application/x-pkcs12');
  assert.equal(file.headers.get('cache-control'), 'no-store');
  const p12 = Buffer.from(await file.arrayBuffer());
  assert.equal((await b.request(download)).status, 404, 'only once');
  const contents = importPkcs12(p12, password);
  assert.deepEqual(contents.certificate!.emailAddresses, ['user@example.co.jp']);
  assert.equal(contents.chain[0]!.subjectText, 'O=Sample KK, CN=Imported S/MIME CA');
  const leaf = join(dir, 'user.pem');
  writeFileSync(leaf, encodePem('CERTIFICATE', contents.certificate!.der));
  writeFileSync(join(dir, 'issuing.pem'), encodePem('CERTIFICATE', contents.chain[0]!.der));
  execFileSync('openssl', ['verify', '-CAfile', pki.caPath, '-untrusted', join(dir, 'issuing.pem'), '-purpose', 'smimesign', leaf], { stdio: 'pipe' });
  // The iPhone/iPad profile: a well-formed plist (python3's plistlib reads it) with the PKCS#12 and the root, once, for its owner only.
  const profileLink = /href="(\/me\/certificate\/download\/[A-Za-z0-9_-]+)" download data-mobileconfig/.exec(html)![1]!;
  assert.notEqual(profileLink, download);
  assert.equal((await other.request(profileLink)).status, 404);
  const profile = await b.request(profileLink);
  assert.equal(profile.status, 200);
  assert.equal(profile.headers.get('content-type'), 'application/x-apple-aspen-config');
  assert.match(profile.headers.get('content-disposition') ?? '', /filename="user@example\.co\.jp\.mobileconfig"/);
  const profileFile = join(dir, 'user.mobileconfig');
  // Signed by the console (CMS signed-data, DER): openssl verifies it against the organisation's root and hands back the plist.
  writeFileSync(`${profileFile}.p7s`, Buffer.from(await profile.arrayBuffer()));
  execFileSync('openssl', ['cms', '-verify', '-inform', 'DER', '-in', `${profileFile}.p7s`, '-CAfile', pki.caPath, '-out', profileFile], { stdio: 'pipe' });
  assert.equal((await b.request(profileLink)).status, 404, 'only once');
  const parsed = readPlist(profileFile);
  assert.equal(parsed.PayloadType, 'Configuration');
  assert.equal(parsed.PayloadVersion, 1);
  assert.equal(parsed.PayloadOrganization, 'Sample KK');
  assert.equal(parsed.PayloadRemovalDisallowed, false);
  assert.deepEqual(parsed.PayloadContent.map((p) => p.PayloadType), ['com.apple.security.pkcs12', 'com.apple.security.root']);
  const uuids = [parsed.PayloadUUID, ...parsed.PayloadContent.map((p) => p.PayloadUUID)] as string[];
  for (const u of uuids) assert.match(u, /^[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$/);
  const ids = [parsed.PayloadIdentifier, ...parsed.PayloadContent.map((p) => p.PayloadIdentifier)] as string[];
  assert.equal(new Set(uuids).size, 3);
  assert.equal(new Set(ids).size, 3);
  for (const id of ids.slice(1)) assert.ok(id.startsWith(`${ids[0]}.`), id);
  assert.match(ids[0]!, /^kakitome\.1\.0\.0\.127\.smime\.user-example-co-jp$/);
  const inProfile = Buffer.from((parsed.PayloadContent[0]!.PayloadContent as { data: string }).data, 'base64');
  assert.ok(!('Password' in parsed.PayloadContent[0]!), 'the password is not in the profile: iOS asks for it');
  assert.deepEqual(importPkcs12(inProfile, password).certificate!.der, contents.certificate!.der);
  assert.deepEqual(Buffer.from((parsed.PayloadContent[1]!.PayloadContent as { data: string }).data, 'base64'), Buffer.from(pki.caCert.der));
  assert.match(await (await b.request('/me')).text(), /valid · (364|365) days left/);
  // Outside the organisation's domains: no certificate.
  await server.console.people.addPerson({ email: 'guest@elsewhere.example', password: PASSWORD });
  const guest = new Browser({ connection: 'close' });
  await guest.signIn('guest@elsewhere.example');
  const refused = await guest.request('/me/certificate', { form: {} });
  assert.equal(refused.status, 403);
  assert.match(await refused.text(), /not in your organisation&#39;s mail domains/);
  assert.equal((await store.listCertificates({ email: 'guest@elsewhere.example' })).length, 0);
  assert.ok(parseCertificate(contents.certificate!.der));
});

test('certificates: a paged, searched inventory; detail with chain and extensions; revoke with a BR reason, and the next CRL lists it (openssl crl)', async () => {
  // 55 certificates of others (not issued by our CA), one EC key for all: enough for two pages.
  const key = generateKey('p256');
  const now = Date.now();
  for (let i = 0; i < 55; i++) {
    await store.importCertificate(issueCertificate({
      subject: { commonName: `Bulk ${i}` }, publicKey: key.publicKey, issuer: pki.caCert, signingKey: pki.caKey,
      emails: [`bulk-${String(i).padStart(2, '0')}@partner.example`],
      notBefore: new Date(now - 60_000), notAfter: new Date(now + (100 + i) * 86_400_000),
    }));
  }
  const b = new Browser();
  await b.signIn('officer@staff.example');
  const rows = (html: string) => [...html.matchAll(/<tr data-certificate="([0-9a-f]{64})">/g)].map((m) => m[1]!);
  const issued = await (await b.request('/admin/certificates')).text();
  assert.match(issued, /user@example\.co\.jp/);
  assert.ok(!/bulk-\d\d@/.test(issued), 'only what our CA issued, by default');
  const first = await (await b.request('/admin/certificates?q=BULK-&kind=all')).text();
  assert.equal(rows(first).length, 50);
  const next = /<a rel="next" href="([^"]+)"/.exec(first)![1]!.replaceAll('&amp;', '&');
  const second = await (await b.request(next)).text();
  assert.equal(rows(second).length, 5);
  assert.ok(!/rel="next"/.test(second));
  assert.equal(new Set([...rows(first), ...rows(second)]).size, 55, 'no row twice, none left out');
  assert.match(first, /bulk-54@partner\.example/, 'latest expiry first');
  assert.equal((await b.request('/admin/certificates?after=bm90IGEgY3Vyc29y')).status, 400);
  const [user] = await store.listCertificates({ email: 'user@example.co.jp' });
  const byPrint = await (await b.request(`/admin/certificates?q=${user!.certificate.fingerprint256.toUpperCase().replace(/(..)(?!$)/g, '$1:')}`)).text();
  assert.deepEqual(rows(byPrint), [user!.certificate.fingerprint256]);

  const detail = await (await b.request(`/admin/certificates/${user!.id}`)).text();
  assert.match(detail, /Imported S\/MIME CA/);
  assert.match(detail, new RegExp(pki.caCert.subjectText.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')));
  assert.match(detail, /<td>extKeyUsage<\/td><td>no<\/td><td>emailProtection<\/td>/);
  assert.match(detail, /<td>keyUsage<\/td><td>yes<\/td>/);
  for (const r of ['unspecified', 'keyCompromise', 'affiliationChanged', 'superseded', 'cessationOfOperation']) assert.ok(detail.includes(`value="${r}"`), r);
  assert.ok(!detail.includes('value="cACompromise"') && !detail.includes('value="certificateHold"'));
  // A reason the S/MIME BR do not allow, and a certificate our CA did not issue: refused, nothing revoked.
  for (const reason of ['cACompromise', 'certificateHold', 'privilegeWithdrawn', '1', '']) {
    assert.equal((await b.request(`/admin/certificates/${user!.id}/revoke`, { form: { reason } })).status, 400, reason);
  }
  const other = (await store.listCertificates({ email: 'bulk-00@partner.example' }))[0]!;
  assert.ok(!(await (await b.request(`/admin/certificates/${other.id}`)).text()).includes('/revoke'), 'no revoke form for a certificate we did not issue');
  assert.equal((await b.request(`/admin/certificates/${other.id}/revoke`, { form: { reason: 'keyCompromise' } })).status, 400);
  assert.equal((await store.findCertificateById(other.id))!.revokedAt, undefined);
  const issuingCa = (await store.listCertificates()).find((r) => r.isCa && r.certificate.subjectText.includes('Imported S/MIME CA'))!;
  assert.ok(!(await (await b.request(`/admin/certificates/${issuingCa.id}`)).text()).includes('/revoke'));
  assert.equal((await b.request(`/admin/certificates/${issuingCa.id}/revoke`, { form: { reason: 'cessationOfOperation' } })).status, 400, 'a CA certificate is not revoked from a form');
  assert.equal((await store.findCertificateById(issuingCa.id))!.revokedAt, undefined);
  assert.equal((await store.findCertificateById(user!.id))!.revokedAt, undefined);
  const revoked = await b.request(`/admin/certificates/${user!.id}/revoke`, { form: { reason: 'keyCompromise' } });
  assert.equal(revoked.status, 200);
  assert.match(await revoked.text(), /The certificate is revoked/);
  assert.equal((await store.findCertificateById(user!.id))!.revocationReason, 1);
  assert.equal((await b.request(`/admin/certificates/${user!.id}/revoke`, { form: { reason: 'superseded' } })).status, 409);
  assert.ok((await store.auditLog({ object: user!.certificate.fingerprint256 })).some((e) => e.action === 'certificate.revoke' && e.actor === 'console:officer@staff.example'));
  const crl = await b.request('/admin/certificates/crl', { form: {} });
  assert.equal(crl.status, 200);
  assert.equal(crl.headers.get('content-type'), 'application/pkix-crl');
  writeFileSync(join(dir, 'console.crl'), Buffer.from(await crl.arrayBuffer()));
  const text = execFileSync('openssl', ['crl', '-inform', 'DER', '-in', join(dir, 'console.crl'), '-noout', '-text', '-CAfile', join(dir, 'issuing.pem')], { encoding: 'utf8', stdio: 'pipe' });
  assert.match(text, new RegExp(`Serial Number: ${user!.certificate.serialHex}\\s+Revocation Date: [^\\n]+\\s+CRL entry extensions:\\s+X509v3 CRL Reason Code:\\s+Key Compromise`));
  // The CRL is the issuing CA's: openssl checks its signature.
  const verified = spawnSync('openssl', ['crl', '-inform', 'DER', '-in', join(dir, 'console.crl'), '-noout', '-CAfile', join(dir, 'issuing.pem')], { encoding: 'utf8' });
  assert.match(verified.stderr + verified.stdout, /verify OK/);
});

test('"can I send encrypted mail to ...?": the store answers, else the directory (kept only when its CA is trusted), in plain words', async () => {
  const b = new Browser();
  await b.signIn('user@example.co.jp');
  const ask = async (address: string, who = b) => {
    const r = await who.request(`/lookup?address=${encodeURIComponent(address)}`);
    const html = await r.text();
    return { status: r.status, html, answer: /data-lookup="([a-z-]+)"/.exec(html)?.[1] };
  };
  const known = await ask('Bulk-07@Partner.Example');
  assert.equal(known.answer, 'yes');
  assert.match(known.html, /Yes: mail to bulk-07@partner\.example can be encrypted/);
  const key = generateKey('p256');
  const cert = (email: string, notAfter: Date) => issueCertificate({ subject: { commonName: email }, publicKey: key.publicKey, issuer: pki.caCert, signingKey: pki.caKey, emails: [email], notBefore: new Date(Date.now() - 3 * 86_400_000), notAfter });
  const gone = await store.importCertificate(cert('gone@partner.example', new Date(Date.now() + 86_400_000)));
  await store.revokeCertificate(gone.certificate.fingerprint256, 3);
  await store.importCertificate(cert('old@partner.example', new Date(Date.now() - 86_400_000)));
  assert.equal((await ask('gone@partner.example')).answer, 'revoked');
  assert.equal((await ask('old@partner.example')).answer, 'expired');
  assert.equal((await ask('nobody@partner.example')).answer, 'none');
  for (const bad of ['not an address', 'a@b@c', '<x@example.com>', `${'a'.repeat(65)}@example.com`]) {
    const r = await ask(bad);
    assert.equal(r.status, 400, bad);
    assert.match(r.html, /That is not a mail address/);
  }
  // The directory: a certificate our trusted root issued is found, checked and kept; a stranger's is not.
  assert.equal((await store.listCertificates({ email: 'ldapfriend@example.com' })).length, 0);
  const found = await ask('ldapfriend@example.com');
  assert.equal(found.answer, 'yes');
  assert.match(found.html, /found in the company directory/);
  const kept = await store.listCertificates({ email: 'ldapfriend@example.com' });
  assert.equal(kept.length, 1);
  assert.equal(kept[0]!.source, `ldap:${ldap.url}`);
  assert.equal((await ask('stranger@example.com')).answer, 'none');
  assert.equal((await store.listCertificates({ email: 'stranger@example.com' })).length, 0);
  const ja = new Browser({ 'accept-language': 'ja' });
  await ja.signIn('user@example.co.jp');
  assert.match((await ask('ldapfriend@example.com', ja)).html, /はい、ldapfriend@example\.com 宛てのメールは暗号化できます。/);
  assert.match((await ask('nobody@partner.example', ja)).html, /まだできません。/);
  // A directory that does not answer: said so, and the page still answers.
  const stopped = server.console.ldap;
  server.console.ldap = { url: 'ldap://127.0.0.1:1', baseDn: 'dc=example,dc=com', timeoutMs: 500 };
  try {
    assert.equal((await ask('someone@partner.example')).answer, 'directory-failed');
  } finally {
    server.console.ldap = stopped;
  }
});

test('the .mobileconfig writer escapes what it is given: a hostile organisation name stays a string', async () => {
  const { buildMobileconfig } = await import('../../src/server/console/build-mobileconfig.ts');
  const evil = '</string><key>PayloadRemovalDisallowed</key><true/><string>&amp; "\'\u0001';
  const file = join(dir, 'evil.mobileconfig');
  writeFileSync(file, buildMobileconfig({ email: 'a@example.co.jp', organisation: evil, host: 'console.example.co.jp', pkcs12: Buffer.from('p12'), text: { displayName: evil, description: evil, identityName: evil, rootName: evil } }));
  const out = JSON.parse(execFileSync('python3', ['-c', 'import plistlib,sys,json; p=plistlib.load(open(sys.argv[1],"rb")); print(json.dumps([p["PayloadOrganization"], p["PayloadRemovalDisallowed"], p["PayloadIdentifier"], len(p["PayloadContent"])]))', file], { encoding: 'utf8' }));
  assert.deepEqual(out, [evil.replace('\u0001', ''), false, 'kakitome.jp.co.example.console.smime.a-example-co-jp', 1]);
});

test('the audit log: filtered by who, what and when, paged without loss, exported as CSV that a spreadsheet cannot run', async () => {
  const b = new Browser();
  await b.signIn('admin@example.co.jp');
  await store.actingAs('console:mallory@example.co.jp').audit('test.formula', '=HYPERLINK("http://evil.example","x")', '+1, "quoted"\r\nline');
  const rows = (html: string) => [...html.matchAll(/<tr data-audit="([^"]+)">/g)].map((m) => m[1]!);
  const revokes = await (await b.request('/admin/audit?action=certificate.rev')).text();
  assert.ok(rows(revokes).length >= 2, 'the officer\'s revocation and the store\'s');
  assert.ok(![...revokes.matchAll(/<tr data-audit[^]*?<\/tr>/g)].some((m) => !m[0].includes('certificate.revoke')));
  const byOfficer = await (await b.request('/admin/audit?actor=console%3Aofficer%40&action=certificate.revoke')).text();
  assert.equal(rows(byOfficer).length, 1);
  // The UTC days the revocations were recorded on (a run may cross midnight), and the day after the last row.
  const revoked = (await store.auditLog({ limit: 10_000 })).filter((e) => e.action === 'certificate.revoke').map((e) => e.at.toISOString().slice(0, 10)).sort();
  const latest = (await store.auditLog({ limit: 1 }))[0]!.at;
  const dayAfter = new Date(latest.getTime() + 86_400_000).toISOString().slice(0, 10);
  assert.ok(rows(await (await b.request(`/admin/audit?from=${revoked[0]}&to=${revoked.at(-1)}&action=certificate.revoke`)).text()).length >= 2);
  assert.equal(rows(await (await b.request(`/admin/audit?from=${dayAfter}`)).text()).length, 0);
  for (const bad of ['from=2026-02-30', 'to=yesterday', 'after=bm90IGEgY3Vyc29y']) assert.equal((await b.request(`/admin/audit?${bad}`)).status, 400, bad);
  // Pages: 50 rows each, the next one starts where the last ended.
  const first = await (await b.request('/admin/audit')).text();
  const next = /<a rel="next" href="([^"]+)"/.exec(first)![1]!.replaceAll('&amp;', '&');
  const second = await (await b.request(next)).text();
  assert.equal(rows(first).length, 50);
  assert.ok(rows(second).length > 0);
  assert.equal(new Set([...rows(first), ...rows(second)]).size, rows(first).length + rows(second).length);
  const total = (await store.auditLog({ limit: 10_000 })).length;
  // The export: every row the filter matches, RFC 4180, formulas defused.
  const csv = await b.request('/admin/audit/export');
  assert.equal(csv.headers.get('content-type'), 'text/csv; charset=utf-8');
  const text = await csv.text();
  assert.ok(text.startsWith('time,actor,action,object,detail\r\n'));
  assert.ok(text.includes(`,console:mallory@example.co.jp,test.formula,"'=HYPERLINK(""http://evil.example"",""x"")","'+1, ""quoted""\r\nline"\r\n`), 'formula cells start with an apostrophe');
  const parsed = JSON.parse(execFileSync('python3', ['-c', 'import csv,sys,json; print(json.dumps(list(csv.reader(sys.stdin))))'], { input: text, encoding: 'utf8' })) as string[][];
  assert.equal(parsed.length - 1, total, 'every row, once');
  assert.ok(parsed.every((r) => r.length === 5));
  const onlyRevokes = await (await b.request('/admin/audit/export?action=certificate.revoke')).text();
  assert.equal(onlyRevokes.trim().split('\r\n').length - 1, rows(revokes).length);
  assert.ok((await store.auditLog({ limit: 5 })).some((e) => e.action === 'console.audit.export' && e.actor === 'console:admin@example.co.jp'));
});

test('the check page: bounded uploads, signed-in only when set so', async () => {
  const b = new Browser();
  const big = new FormData();
  big.set('message-file', new Blob([Buffer.alloc(CHECK_LIMIT + 32 * 1024, 0x61)]), 'big.eml');
  const tooLarge = await b.request('/check', { form: big });
  assert.equal(tooLarge.status, 413);
  assert.match(await tooLarge.text(), /The file is too large: at most/);
  const empty = await b.request('/check', { form: { 'message-text': '' } });
  assert.equal(empty.status, 400);
  const notMail = await b.request('/check', { form: { 'message-text': 'hello, is this genuine?' } });
  assert.match(await notMail.text(), /does not look like a mail/);
  const fragment = await b.request('/check', { form: { 'message-text': 'From: a@example.com\r\nSubject: hi\r\n\r\nhello\r\n' }, headers: { 'hx-request': 'true' } });
  const text = await fragment.text();
  assert.ok(!text.includes('<html'), 'htmx gets the result only');
  assert.match(text, /data-verdict="unsigned"/);
  const admin = new Browser();
  await admin.signIn('admin@example.co.jp');
  await admin.request('/admin/settings', { form: { domains: 'example.co.jp branch.example.co.jp', 'check-page': 'signed-in' } });
  assert.equal((await new Browser().request('/check')).headers.get('location'), '/sign-in?next=%2Fcheck');
  assert.equal((await new Browser().request('/check', { form: { 'message-text': 'x' } })).status, 401);
  await admin.request('/admin/settings', { form: { domains: 'example.co.jp branch.example.co.jp', 'check-page': 'public' } });
  assert.equal((await new Browser().request('/check')).status, 200);
});

test('rate limits: the check page, 30 messages a minute per client address (in the reader\'s language), a signed-in person counted apart', async () => {
  // Near the end of this file: every client here is 127.0.0.1, so the address's minute is used up for the tests after it (the next one does not check).
  const message = { 'message-text': 'From: a@example.com\r\nSubject: hi\r\n\r\nhello\r\n' };
  const anon = new Browser({ 'accept-language': 'ja' });
  const statuses: number[] = [];
  let last: Response | undefined;
  for (let i = 0; i < 40 && last?.status !== 429; i++) {
    last = await anon.request('/check', { form: message });
    statuses.push(last.status);
  }
  assert.equal(last!.status, 429, statuses.join());
  // The check page's test before used a few of the 30; bounded uploads are counted too.
  assert.ok(statuses.length >= 20 && statuses.length <= 31, `refused after at most 30: ${statuses.join()}`);
  assert.match(last!.headers.get('retry-after') ?? '', /^\d+$/);
  assert.ok((await last!.text()).includes(ja.errors.rateLimited(Number(last!.headers.get('retry-after'))).slice(0, 10)));
  // Another client on the same address waits too; a signed-in person has a minute of their own.
  assert.equal((await new Browser().request('/check', { form: message })).status, 429);
  const person = new Browser();
  await person.signIn('user@example.co.jp');
  assert.equal((await person.request('/check', { form: message })).status, 200);
});


test('rate limits: sign-in per client address, with Retry-After', async () => {
  const b = new Browser();
  let last: Response | undefined;
  for (let i = 0; i < 70; i++) {
    last = await b.signIn(`nobody${i}@example.co.jp`, 'wrong password');
    if (last.status === 429) break;
  }
  assert.equal(last!.status, 429);
  assert.match(last!.headers.get('retry-after') ?? '', /^\d+$/);
  assert.match(await last!.text(), /Too many attempts/);
  // Even the right password waits: the limit comes before the check.
  assert.equal((await b.signIn('user@example.co.jp')).status, 429);
});
