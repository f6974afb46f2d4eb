/**
 * Passkeys with real WebAuthn data: Debian's chromium (playwright-core, never a
 * downloaded browser) with Chrome's virtual authenticator (CDP WebAuthn.enable,
 * WebAuthn.addVirtualAuthenticator) registers a passkey on "Sign-in and
 * passkeys" and proves it at sign-in, against a console served in this process
 * (http://localhost: WebAuthn needs a host name). What a browser cannot be made to
 * do wrong is played over HTTP with what the browser really sent: the password
 * alone opens no session once a passkey exists; an assertion replayed, tampered
 * with, or presented for another person is refused; adding and removing ask for
 * the password. Before any passkey exists, each person signs in by a link mailed
 * to them (a real SMTP sink as the console's relay), in their language; and the
 * first run completes in Japanese here (console-browser.test.ts completes it in
 * English, from the link `kakitome serve` prints). The step-up page (/confirm)
 * runs here too: by passkey in Japanese, by password in English. axe-core
 * checks each page in both languages; no page breaks its CSP.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { masterKeyFromBytes } from '../../src/keys/master-key.ts';
import { Store } from '../../src/store/store.ts';
import { openSqliteEngine } from '../../src/store/sqlite-engine.ts';
import { PasskeyDirectory } from '../../src/store/console-passkeys.ts';
import { startServer, type RunningServer } from '../../src/server/start-server.ts';
import { en } from '../../src/server/console/messages/en.ts';
import { ja } from '../../src/server/console/messages/ja.ts';
import { axeAudit } from './axe-audit.ts';
import { ConsoleClient, TEST_PASSWORD } from './console-client.ts';
import { Sink } from '../gateway/gateway-fixture.ts';
import { readMail } from './read-console-mail.ts';
import { issueSetupLink } from '../../src/server/console/first-run.ts';

const CHROMIUM = process.env.KAKITOME_CHROMIUM ?? '/usr/bin/chromium';
const present = existsSync(CHROMIUM);
if (!present && process.env.CI) throw new Error(`${CHROMIUM} is missing: install Debian's chromium and fonts-noto-cjk (bash .ci/run does).`);
const skip = present ? false : `${CHROMIUM} is not installed: apt-get install chromium fonts-noto-cjk to run the browser tests`;

const dir = mkdtempSync(join(tmpdir(), 'kakitome-console-passkey-'));
let server: RunningServer;
let store: Store;
let browser: Browser | undefined;
/** The console's mail relay: sign-in links arrive here. */
let sink: Sink | undefined;
/** http://localhost:PORT: the relying party is "localhost". */
let base = '';
const problems: string[] = [];

before(async () => {
  if (skip) return;
  sink = await new Sink().start();
  store = await Store.open(openSqliteEngine(join(dir, 'kakitome.db')), { masterKey: masterKeyFromBytes(randomBytes(32)), actor: 'serve' });
  server = await startServer(store, { host: '127.0.0.1', port: 0, maxMessageBytes: 1024 * 1024, shutdownGraceMs: 2000, revocation: 'allow-unknown', mail: { relay: { host: '127.0.0.1', port: sink.port }, from: 'kakitome@example.co.jp' } }, {
    log: () => {}, version: 'test',
    console: { passwordHash: { memoryKiB: 1024, passes: 1, parallelism: 1 }, rates: { signInPerAddress: 200, signInPerAccount: 200 } },
  });
  base = server.console.origin.baseUrl.replace('//127.0.0.1:', '//localhost:');
  for (const [email, language] of [['hanako@example.co.jp', 'ja'], ['jiro@example.co.jp', 'en']] as const) {
    await server.console.people.addPerson({ email, password: TEST_PASSWORD, language });
  }
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
});

after(async () => {
  await browser?.close();
  await server?.close();
  await sink?.stop();
  rmSync(dir, { recursive: true, force: true });
});

class Client extends ConsoleClient {
  constructor() {
    super(() => ({ url: base, origin: base }));
  }
}

async function newContext(locale: 'en-GB' | 'ja-JP'): Promise<{ context: BrowserContext; page: Page; authenticator: string }> {
  const context = await browser!.newContext({ locale, viewport: { width: 1000, height: 800 } });
  const page = await context.newPage();
  page.on('console', (m) => {
    if (/Content.Security.Policy|Refused to/i.test(m.text())) problems.push(`${page.url()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`${page.url()}: ${e.message}`));
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable', { enableUI: false });
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
  });
  return { context, page, authenticator: authenticatorId };
}

const audit = axeAudit;

async function signInWithPassword(page: Page, email: string, password = TEST_PASSWORD): Promise<void> {
  await page.goto(`${base}/sign-in`);
  await page.fill('#email', email);
  await page.fill('#password', password);
  await Promise.all([page.waitForURL((u) => u.pathname !== '/sign-in'), page.click('main form button[type=submit]')]);
}

/** The form body the browser posted to `path` the next time it does. */
function nextPost(page: Page, path: string): Promise<string> {
  return new Promise((resolve) => {
    const seen = (r: { method(): string; url(): string; postData(): string | null }) => {
      if (r.method() === 'POST' && new URL(r.url()).pathname === path) {
        page.off('request', seen);
        resolve(r.postData() ?? '');
      }
    };
    page.on('request', seen);
  });
}

/** A client whose password step for `email` is done: it holds the pending cookie, no session. */
async function pendingClient(email: string): Promise<Client> {
  const c = new Client();
  const r = await c.signIn(email);
  assert.equal(r.status, 303);
  assert.equal(r.headers.get('location'), '/sign-in/passkey?next=%2F');
  assert.ok(!c.cookies.has('__Host-kakitome-session'), 'the password alone makes no session');
  assert.ok(c.cookies.has('__Host-kakitome-pending'));
  return c;
}

let capturedSignIn = '';

test('first run in Japanese: the setup link creates the administrator, the CA and the mail domains', { skip }, async () => {
  const link = (await issueSetupLink(server.console))!.url.replace('//127.0.0.1:', '//localhost:');
  const { context, page } = await newContext('ja-JP');
  await page.goto(link);
  assert.equal(await page.getAttribute('html', 'lang'), 'ja');
  await page.fill('#organisation', 'サンプル商事株式会社');
  await page.fill('#domains', 'example.co.jp');
  await page.fill('#name', '管理 愛子');
  await page.fill('#email', 'kanri@example.co.jp');
  await page.fill('#password', TEST_PASSWORD);
  await page.fill('#password2', TEST_PASSWORD);
  await Promise.all([page.waitForURL((u) => u.pathname === '/admin'), page.click('main form button[type=submit]')]);
  assert.match(await page.textContent('main') ?? '', new RegExp(ja.setup.done));
  assert.match(await page.textContent('main') ?? '', /サンプル商事株式会社 S\/MIME CA/);
  await audit(page, 'dashboard after setup (ja)');
  assert.equal((await page.goto(link))!.status(), 404, 'used up');
  assert.equal(await issueSetupLink(server.console), undefined, 'no setup link once there is an administrator');
  await context.close();
});

test('a sign-in link by mail, in each person\'s language: asked for on the sign-in page, opened, confirmed, used once', { skip }, async () => {
  for (const [locale, email, t] of [['ja-JP', 'hanako@example.co.jp', ja], ['en-GB', 'jiro@example.co.jp', en]] as const) {
    const { context, page } = await newContext(locale);
    await page.goto(`${base}/sign-in`);
    await audit(page, `sign-in, with a link by mail (${locale})`);
    const before = sink!.deliveries.length;
    await page.fill('#link-email', email);
    await Promise.all([page.waitForLoadState('load'), page.click('form[action="/sign-in/link"] button[type=submit]')]);
    assert.match(await page.textContent('main') ?? '', new RegExp(t.mailLink.sent(email, 15).slice(0, 12).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
    await audit(page, `sign-in link sent (${locale})`);
    // The lookup and the mail come after the answer.
    for (let i = 0; i < 800 && !sink!.deliveries.slice(before).some((d) => d.to.includes(email)); i++) await new Promise((r) => setTimeout(r, 25));
    const mail = readMail(sink!.deliveries.slice(before).find((d) => d.to.includes(email))!.message);
    assert.ok(mail.headers.includes('Auto-Submitted: auto-generated'));
    const link = /(http:\/\/\S+\/sign-in\/link\/[A-Za-z0-9_-]{43})/.exec(mail.text)![1]!.replace('//127.0.0.1:', '//localhost:');
    assert.ok(mail.text.startsWith(t.mailLink.body(link, 15).split('\n')[0]!), mail.text);
    await page.goto(link);
    assert.match(await page.textContent('main') ?? '', new RegExp(t.mailLink.confirm(email).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
    await audit(page, `sign-in link opened (${locale})`);
    await Promise.all([page.waitForURL((u) => u.pathname === '/me'), page.click('main form button[type=submit]')]);
    // Used up: opened again, it is refused in the reader's language.
    const again = await context.newPage();
    await again.goto(link);
    assert.match(await again.textContent('main') ?? '', new RegExp(t.mailLink.invalid.slice(0, 12)));
    await context.close();
  }
});

test('a signed-in person adds a passkey with the virtual authenticator, then signs in with password and passkey', { skip }, async () => {
  const { context, page } = await newContext('ja-JP');
  await signInWithPassword(page, 'hanako@example.co.jp');
  assert.equal(new URL(page.url()).pathname, '/me');
  await page.goto(`${base}/me/security`);
  assert.match(await page.textContent('main') ?? '', new RegExp(ja.passkeys.none));
  await audit(page, 'passkeys (ja, none)');
  // A wrong password gets no options: nothing is registered.
  await page.fill('#passkey-name', '会社のノートPC');
  await page.fill('#passkey-password', 'wrong password');
  await page.click('form[data-passkey] button[type=submit]');
  await page.waitForFunction((t) => (globalThis as unknown as { document: { querySelector(s: string): { textContent: string } | null } }).document.querySelector('[data-passkey-status]')?.textContent === t, ja.passkeys.wrongPassword);
  await page.fill('#passkey-password', TEST_PASSWORD);
  await Promise.all([page.waitForURL(/\/me\/security\?added$/), page.click('form[data-passkey] button[type=submit]')]);
  assert.match(await page.textContent('main') ?? '', /会社のノートPC/);
  await audit(page, 'passkeys (ja, one)');
  const person = (await server.console.people.findPersonByEmail('hanako@example.co.jp'))!;
  const [kept] = await new PasskeyDirectory(store).list(person.id);
  assert.equal(kept!.name, '会社のノートPC');
  assert.ok(kept!.publicKey.length > 60, 'a COSE public key is kept');
  assert.deepEqual(kept!.transports, ['internal']);

  // Signed out, the password now leads to the passkey step; the authenticator answers and the person is in.
  await Promise.all([page.waitForURL(/signed-out/), page.click('form[action="/sign-out"] button')]);
  await signInWithPassword(page, 'hanako@example.co.jp');
  assert.equal(new URL(page.url()).pathname, '/sign-in/passkey');
  assert.equal(await page.textContent('h1'), ja.passkeys.signInTitle);
  await audit(page, 'passkey step (ja)');
  const posted = nextPost(page, '/sign-in/passkey');
  await Promise.all([page.waitForURL((u) => u.pathname === '/me'), page.click('form[data-passkey] button[type=submit]')]);
  capturedSignIn = await posted;
  const used = (await new PasskeyDirectory(store).list(person.id))[0]!;
  assert.ok(used.lastUsedAt, 'the sign-in is recorded on the passkey');
  const log = await store.auditLog({ object: 'hanako@example.co.jp' });
  assert.ok(log.some((e) => e.action === 'console.sign-in' && e.detail === 'password and passkey'));
  assert.ok(log.some((e) => e.action === 'person.passkey.add' && e.actor === 'console:hanako@example.co.jp'));
  await context.close();
});

test('a captured assertion is refused when replayed, tampered with, or presented for another person', { skip }, async () => {
  assert.ok(capturedSignIn, 'the first test captured a sign-in');
  const credential = new URLSearchParams(capturedSignIn).get('credential')!;
  assert.ok(JSON.parse(credential).response.signature);
  // Replayed after its sign-in: a new password step, but the challenge inside was used up.
  const replay = await pendingClient('hanako@example.co.jp');
  await replay.request('/sign-in/passkey/options', { form: {} });
  const r1 = await replay.request('/sign-in/passkey', { form: { credential, next: '/' } });
  assert.equal(r1.status, 401);
  assert.match(await r1.text(), new RegExp(en.passkeys.signInFailed));
  assert.ok(!replay.cookies.has('__Host-kakitome-session'));
  // Without any password step: nothing to finish.
  const bare = await new Client().request('/sign-in/passkey', { form: { credential, next: '/' } });
  assert.equal(bare.status, 400);
  // For another person (who has no passkey of that id): refused, and jiro has no pending step anyway without a passkey.
  const jiro = (await server.console.people.findPersonByEmail('jiro@example.co.jp'))!;
  const other = new Client();
  assert.equal((await other.signIn('jiro@example.co.jp')).headers.get('location'), '/me', 'no passkey: the password signs in');
  assert.equal((await new PasskeyDirectory(store).list(jiro.id)).length, 0);
  // Tampered: a fresh challenge is issued, and the captured answer with one bit of its signature flipped (and its own old challenge) fails.
  const tamper = await pendingClient('hanako@example.co.jp');
  const parsed = JSON.parse(credential) as { response: { signature: string } };
  const sig = Buffer.from(parsed.response.signature, 'base64url');
  sig[sig.length - 1]! ^= 1;
  parsed.response.signature = sig.toString('base64url');
  assert.equal((await tamper.request('/sign-in/passkey', { form: { credential: JSON.stringify(parsed), next: '/' } })).status, 401);
  // Garbage of every kind is a refusal, never an error.
  for (const junk of ['', 'not json', '{}', '[]', JSON.stringify({ id: 'x', rawId: 'x', type: 'public-key', response: {} }), 'x'.repeat(20_000)]) {
    const r = await tamper.request('/sign-in/passkey', { form: { credential: junk, next: '/' } });
    assert.ok(r.status === 401 || r.status === 400, `${junk.slice(0, 20)} → ${r.status}`);
  }
  // A cross-site post of a good-looking answer is refused before anything is read.
  assert.equal((await tamper.request('/sign-in/passkey', { form: { credential, next: '/' }, origin: 'http://evil.example' })).status, 403);
  // The browser on 127.0.0.1 (no host name): the page says where passkeys work instead of failing.
  const ip = new ConsoleClient(() => ({ url: server.console.origin.baseUrl, origin: server.console.origin.baseUrl }));
  await ip.signIn('jiro@example.co.jp');
  assert.match(await (await ip.request('/me/security')).text(), /Open http:\/\/localhost:\d+ instead/);
});

test('removing a passkey asks for the password; without passkeys the password signs in again', { skip }, async () => {
  const { context, page } = await newContext('en-GB');
  const c = await pendingClient('hanako@example.co.jp');
  assert.equal((await c.request('/me/security')).headers.get('location'), '/sign-in?next=%2Fme%2Fsecurity', 'a pending sign-in is no session');
  // In the browser: password, then passkey... but this browser's authenticator holds no passkey of hanako's: refused.
  await signInWithPassword(page, 'hanako@example.co.jp');
  assert.equal(new URL(page.url()).pathname, '/sign-in/passkey');
  await page.click('form[data-passkey] button[type=submit]');
  await page.waitForFunction((t) => (globalThis as unknown as { document: { querySelector(s: string): { textContent: string } | null } }).document.querySelector('[data-passkey-status]')?.textContent === t, en.passkeys.failed);
  await audit(page, 'passkey step (en, failed)');
  await context.close();

  // jiro adds one in his browser and removes it: a wrong password removes nothing.
  const j = await newContext('en-GB');
  await signInWithPassword(j.page, 'jiro@example.co.jp');
  await j.page.goto(`${base}/me/security`);
  await j.page.fill('#passkey-password', TEST_PASSWORD);
  await Promise.all([j.page.waitForURL(/added$/), j.page.click('form[data-passkey] button[type=submit]')]);
  await audit(j.page, 'passkeys (en, one)');
  // In English too: the password, then the passkey, and jiro is in.
  await Promise.all([j.page.waitForURL(/signed-out/), j.page.click('form[action="/sign-out"] button')]);
  await signInWithPassword(j.page, 'jiro@example.co.jp');
  assert.equal(new URL(j.page.url()).pathname, '/sign-in/passkey');
  assert.equal(await j.page.textContent('h1'), en.passkeys.signInTitle);
  await audit(j.page, 'passkey step (en)');
  await Promise.all([j.page.waitForURL((u) => u.pathname === '/me'), j.page.click('form[data-passkey] button[type=submit]')]);
  assert.ok((await store.auditLog({ object: 'jiro@example.co.jp' })).some((e) => e.action === 'console.sign-in' && e.detail === 'password and passkey'));
  await j.page.goto(`${base}/me/security`);
  await j.page.fill('#remove-password-0', 'wrong password');
  await Promise.all([j.page.waitForLoadState('load'), j.page.click('form[action$="/remove"] button')]);
  assert.match(await j.page.textContent('main') ?? '', new RegExp(en.passkeys.wrongPassword));
  const jiro = (await server.console.people.findPersonByEmail('jiro@example.co.jp'))!;
  assert.equal((await new PasskeyDirectory(store).list(jiro.id)).length, 1);
  // Another person's passkey id cannot be removed by jiro.
  const hanako = (await server.console.people.findPersonByEmail('hanako@example.co.jp'))!;
  const hers = (await new PasskeyDirectory(store).list(hanako.id))[0]!;
  const jc = new Client();
  await jc.signIn('jiro@example.co.jp');
  assert.equal(jc.cookies.has('__Host-kakitome-session'), false, 'jiro has a passkey now: the password alone is not enough');
  await j.page.fill('#remove-password-0', TEST_PASSWORD);
  const cookies = await j.context.cookies();
  const session = cookies.find((x) => x.name === '__Host-kakitome-session')!.value;
  const forged = new Client();
  forged.cookies.set('__Host-kakitome-session', session);
  assert.equal((await forged.request(`/me/passkeys/${encodeURIComponent(hers.id)}/remove`, { form: { password: TEST_PASSWORD } })).status, 404);
  assert.equal((await new PasskeyDirectory(store).list(hanako.id)).length, 1);
  await Promise.all([j.page.waitForURL(/removed$/), j.page.click('form[action$="/remove"] button')]);
  assert.equal((await new PasskeyDirectory(store).list(jiro.id)).length, 0);
  assert.equal((await new Client().signIn('jiro@example.co.jp')).headers.get('location'), '/me');
  await j.context.close();
  assert.deepEqual(problems, []);
});

test('step-up with a passkey: a session whose proof ran out is sent to /confirm, the passkey (user verified) confirms, the action then goes through', { skip }, async () => {
  await server.console.people.addPerson({ email: 'saburo@example.co.jp', password: TEST_PASSWORD, language: 'ja' });
  const { context, page } = await newContext('ja-JP');
  await signInWithPassword(page, 'saburo@example.co.jp');
  await page.goto(`${base}/me/security`);
  await page.fill('#passkey-password', TEST_PASSWORD);
  await Promise.all([page.waitForURL(/added$/), page.click('form[data-passkey] button[type=submit]')]);
  // The sign-in's proof has run out, as five minutes later.
  await store.engine.run("UPDATE console_tokens SET expires_at = created_at WHERE purpose = 'step-up'");
  await page.goto(`${base}/me`);
  await Promise.all([page.waitForURL((u) => u.pathname === '/confirm'), page.click('form[action="/me/certificate"] button[type=submit]')]);
  assert.equal(new URL(page.url()).searchParams.get('next'), '/me');
  assert.equal(await page.textContent('h1'), ja.stepUp.title);
  assert.equal(await page.locator('#step-up-password').count(), 0, 'a person with a passkey is not confirmed by the password alone');
  await audit(page, 'step-up (ja, passkey)');
  const posted = nextPost(page, '/confirm/passkey');
  await Promise.all([page.waitForURL((u) => u.pathname === '/me'), page.click('form[data-passkey] button[type=submit]')]);
  const credential = new URLSearchParams(await posted).get('credential')!;
  const flags = Buffer.from((JSON.parse(credential) as { response: { authenticatorData: string } }).response.authenticatorData, 'base64url')[32]!;
  assert.ok(flags & 0x04, 'the authenticator verified the person (UV), as the options required');
  const log = await store.auditLog({ object: 'saburo@example.co.jp' });
  assert.ok(log.some((e) => e.action === 'console.step-up' && /^passkey, until /.test(e.detail ?? '')), JSON.stringify(log));
  await Promise.all([page.waitForURL((u) => u.pathname === '/me/certificate'), page.click('form[action="/me/certificate"] button[type=submit]')]);
  assert.equal(await page.textContent('h1'), ja.me.readyTitle);
  // The captured assertion, replayed in the same session once its proof ran out: its challenge was used up.
  await store.engine.run("UPDATE console_tokens SET expires_at = created_at WHERE purpose = 'step-up'");
  const session = (await context.cookies()).find((x) => x.name === '__Host-kakitome-session')!.value;
  const replay = new Client();
  replay.cookies.set('__Host-kakitome-session', session);
  assert.equal((await replay.request('/confirm/passkey', { form: { credential, next: '/me' } })).status, 401);
  assert.equal((await replay.request('/me/certificate', { form: {} })).headers.get('location'), '/confirm?next=%2Fme');
  await context.close();

  // In English, by the password: jiro has no passkey any more (the test before removed it).
  const j = await newContext('en-GB');
  await signInWithPassword(j.page, 'jiro@example.co.jp');
  await store.engine.run("UPDATE console_tokens SET expires_at = created_at WHERE purpose = 'step-up'");
  await j.page.goto(`${base}/me`);
  await Promise.all([j.page.waitForURL((u) => u.pathname === '/confirm'), j.page.click('form[action="/me/certificate"] button[type=submit]')]);
  assert.equal(await j.page.textContent('h1'), en.stepUp.title);
  assert.equal(await j.page.locator('form[data-passkey]').count(), 0);
  await audit(j.page, 'step-up (en, password)');
  await j.page.fill('#step-up-password', 'wrong password');
  await Promise.all([j.page.waitForLoadState('load'), j.page.click('form[action="/confirm"] button[type=submit]')]);
  assert.ok((await j.page.textContent('main'))?.includes(en.stepUp.wrongPassword));
  await j.page.fill('#step-up-password', TEST_PASSWORD);
  await Promise.all([j.page.waitForURL((u) => u.pathname === '/me'), j.page.click('form[action="/confirm"] button[type=submit]')]);
  await Promise.all([j.page.waitForURL((u) => u.pathname === '/me/certificate'), j.page.click('form[action="/me/certificate"] button[type=submit]')]);
  assert.equal(await j.page.textContent('h1'), en.me.readyTitle);
  await j.context.close();
  assert.deepEqual(problems, []);
});
