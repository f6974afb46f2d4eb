/**
 * Sign-in by an e-mailed one-time link, and invitations mailed instead of shown,
 * over a real socket with a real SMTP sink as the relay (test/gateway's Sink):
 * the same answer whether the address has an account or not, one mail in the
 * person's language, the link single-use, short-lived, replaced by a newer one,
 * bound to its person, rate-limited, never logged; a person with a passkey still
 * proves it; the mail settings are checked at start.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { masterKeyFromBytes } from '../../src/keys/master-key.ts';
import { Store } from '../../src/store/store.ts';
import { openSqliteEngine } from '../../src/store/sqlite-engine.ts';
import { PasskeyDirectory } from '../../src/store/console-passkeys.ts';
import { startServer, type RunningServer } from '../../src/server/start-server.ts';
import { resolveServeConfig } from '../../src/server/config.ts';
import { composeConsoleMail } from '../../src/server/console/console-mail.ts';
import { en } from '../../src/server/console/messages/en.ts';
import { ja } from '../../src/server/console/messages/ja.ts';
import { isKakitomeError } from '../../src/errors.ts';
import { Sink } from '../gateway/gateway-fixture.ts';
import { ConsoleClient, TEST_PASSWORD } from './console-client.ts';
import { readMail } from './read-console-mail.ts';

const dir = mkdtempSync(join(tmpdir(), 'kakitome-console-mail-'));
let server: RunningServer;
let store: Store;
let sink: Sink;
let now = Date.now();
const logs: string[] = [];

before(async () => {
  sink = await new Sink().start();
  store = await Store.open(openSqliteEngine(join(dir, 'kakitome.db')), { masterKey: masterKeyFromBytes(randomBytes(32)), actor: 'serve', clock: () => new Date(now) });
  server = await startServer(store, { host: '127.0.0.1', port: 0, maxMessageBytes: 1024 * 1024, shutdownGraceMs: 2000, revocation: 'allow-unknown', mail: { relay: { host: '127.0.0.1', port: sink.port }, from: 'kakitome@example.co.jp' } }, {
    log: (e) => logs.push(JSON.stringify(e)), version: 'test',
    console: { passwordHash: { memoryKiB: 1024, passes: 1, parallelism: 1 }, rates: { linkPerAddress: 100, signInPerAddress: 100 } },
  });
  await server.console.people.addPerson({ email: 'admin@example.co.jp', roles: ['administrator'], password: TEST_PASSWORD });
  await server.console.people.addPerson({ email: 'hanako@example.co.jp', password: TEST_PASSWORD, language: 'ja' });
  await server.console.people.addPerson({ email: 'jiro@example.co.jp', password: TEST_PASSWORD, language: 'en' });
});

after(async () => {
  await server?.close();
  await sink?.stop();
  rmSync(dir, { recursive: true, force: true });
});

class Client extends ConsoleClient {
  constructor() {
    super(() => ({ url: server.url, origin: server.console.origin.baseUrl }));
  }
}


async function nextMailTo(address: string, before: number): Promise<{ headers: string; text: string; link: string }> {
  for (let i = 0; i < 800 && !sink.deliveries.slice(before).some((d) => d.to.includes(address)); i++) await new Promise((r) => setTimeout(r, 25));
  const d = sink.deliveries.slice(before).find((x) => x.to.includes(address));
  assert.ok(d, `a mail to ${address}`);
  const mail = readMail(d.message);
  const link = /(http:\/\/\S+\/(?:sign-in\/link|welcome)\/[A-Za-z0-9_-]{43})/.exec(mail.text)?.[1] ?? '';
  return { ...mail, link };
}

/** Lets the background work of a request finish (the lookup and the mail come after the answer). */
async function settle(): Promise<void> {
  await new Promise((r) => setTimeout(r, 300));
}

test('a link by mail: the same answer for every address, one mail in the person\'s language, used once', async () => {
  const page = await (await new Client().request('/sign-in')).text();
  assert.match(page, /action="\/sign-in\/link"/);
  const before = sink.deliveries.length;
  const strip = (s: string) => s.replace(/[a-z]+@example\.co\.jp/g, 'X');
  const known = await new Client().request('/sign-in/link', { form: { email: 'hanako@example.co.jp' } });
  const unknown = await new Client().request('/sign-in/link', { form: { email: 'nobody@example.co.jp' } });
  assert.equal(known.status, 200);
  assert.equal(unknown.status, 200);
  assert.equal(strip(await known.text()), strip(await unknown.text()));
  const mail = await nextMailTo('hanako@example.co.jp', before);
  await settle();
  assert.equal(sink.deliveries.slice(before).length, 1, 'no mail for an address without an account');
  assert.match(mail.headers, /^Subject: Kakitome: =\?UTF-8\?B\?/m, "an encoded-word for the Japanese subject");
  assert.match(mail.headers, /^Auto-Submitted: auto-generated$/m);
  assert.match(mail.headers, /^To: <hanako@example\.co\.jp>$/m);
  assert.ok(mail.text.startsWith(ja.mailLink.body('', 15).slice(0, 20)), 'Japanese for a Japanese person');
  assert.ok(mail.link.startsWith(server.console.origin.baseUrl));
  const path = new URL(mail.link).pathname;
  const b = new Client();
  // Opening the link (or a mail scanner fetching it) uses up nothing.
  assert.equal((await b.request(path)).status, 200);
  assert.match(await (await b.request(path)).text(), /hanako@example\.co\.jp/);
  // From another site: refused before anything is used.
  assert.equal((await b.request(path, { form: {}, origin: 'http://evil.example' })).status, 403);
  const signedIn = await b.request(path, { form: {} });
  assert.equal(signedIn.status, 303);
  assert.equal(signedIn.headers.get('location'), '/me');
  assert.ok(b.cookies.has('__Host-kakitome-session'));
  assert.equal((await b.request('/me')).status, 200);
  assert.equal((await new Client().request(path, { form: {} })).status, 404, 'used once');
  assert.ok(!logs.some((l) => l.includes(path.slice(-43))), 'the link never reaches the log');
  const audit = await store.auditLog({ object: 'hanako@example.co.jp' });
  assert.ok(audit.some((e) => e.action === 'console.sign-in' && e.detail === 'mail link'));
  assert.ok(!audit.some((e) => (e.detail ?? '').includes(path.slice(-43))));
});

test('a link is short-lived, replaced by a newer one, bound to its person, and rate-limited per address', async () => {
  let before = sink.deliveries.length;
  await new Client().request('/sign-in/link', { form: { email: 'jiro@example.co.jp' } });
  const first = await nextMailTo('jiro@example.co.jp', before);
  assert.ok(first.text.startsWith(en.mailLink.body('', 15).slice(0, 20)), 'English for an English person');
  before = sink.deliveries.length;
  await new Client().request('/sign-in/link', { form: { email: 'JIRO@example.co.jp' } });
  const second = await nextMailTo('jiro@example.co.jp', before);
  assert.notEqual(first.link, second.link);
  assert.equal((await new Client().request(new URL(first.link).pathname, { form: {} })).status, 404, 'the newer link replaced it');
  // 15 minutes later it no longer works.
  now += 15 * 60_000 + 1000;
  assert.equal((await new Client().request(new URL(second.link).pathname, { form: {} })).status, 404, 'expired');
  now -= 15 * 60_000 + 1000;
  // A third request for the same address within the minute is the last; the fourth waits (however it is spelt).
  const third = await new Client().request('/sign-in/link', { form: { email: 'jiro@example.co.jp' } });
  assert.equal(third.status, 200);
  const fourth = await new Client().request('/sign-in/link', { form: { email: 'Jiro@Example.co.jp' } });
  assert.equal(fourth.status, 429);
  assert.match(fourth.headers.get('retry-after') ?? '', /^\d+$/);
  // Junk is refused, never mailed.
  for (const email of ['', 'not an address', 'a@b@c', `${'x'.repeat(400)}@example.co.jp`]) {
    const r = await new Client().request('/sign-in/link', { form: { email } });
    assert.ok(r.status === 400, `${email.slice(0, 20)} → ${r.status}`);
  }
  // A token of the wrong kind (an invitation's) signs nobody in by this route.
  const person = (await server.console.people.findPersonByEmail('jiro@example.co.jp'))!;
  const { secret } = await server.console.sessions.issueLink('invitation', 60_000, person.id);
  assert.equal((await new Client().request(`/sign-in/link/${secret}`, { form: {} })).status, 404);
});

test('a person with a passkey proves it after the link; a disabled person gets no mail', async () => {
  const person = await server.console.people.addPerson({ email: 'shiro@example.co.jp', password: TEST_PASSWORD });
  await new PasskeyDirectory(store).add({ personId: person.id, email: person.email, id: 'jiro-key', publicKey: new Uint8Array(randomBytes(77)), signCount: 0, name: 'key' });
  const before = sink.deliveries.length;
  await new Client().request('/sign-in/link', { form: { email: 'shiro@example.co.jp' } });
  const mail = await nextMailTo('shiro@example.co.jp', before);
  const b = new Client();
  const r = await b.request(new URL(mail.link).pathname, { form: {} });
  assert.equal(r.status, 303);
  assert.equal(r.headers.get('location'), '/sign-in/passkey?next=%2F');
  assert.ok(!b.cookies.has('__Host-kakitome-session'), 'no session before the passkey');
  assert.ok(b.cookies.has('__Host-kakitome-pending'));
  await store.engine.run('UPDATE people SET disabled_at = ? WHERE email = ?', [new Date(now).toISOString(), 'hanako@example.co.jp']);
  const n = sink.deliveries.length;
  assert.equal((await new Client().request('/sign-in/link', { form: { email: 'hanako@example.co.jp' } })).status, 200);
  await settle();
  assert.equal(sink.deliveries.length, n, 'a disabled person gets no link');
});

test('invitations are mailed to the person instead of shown; shown when the relay refuses', async () => {
  const admin = new Client();
  assert.equal((await admin.signIn('admin@example.co.jp')).status, 303);
  const before = sink.deliveries.length;
  const added = await admin.request('/admin/people', { form: { email: 'saburo@example.co.jp', name: 'Saburo' } });
  assert.equal(added.status, 200);
  const html = await added.text();
  assert.match(html, new RegExp(en.mailLink.invitationMailed('saburo@example.co.jp').replace(/\./g, '\\.')));
  assert.ok(!/\/welcome\/[A-Za-z0-9_-]{43}/.test(html), 'the link is not shown to the administrator');
  const mail = await nextMailTo('saburo@example.co.jp', before);
  assert.match(mail.link, /\/welcome\//);
  assert.equal((await new Client().request(new URL(mail.link).pathname)).status, 200);
  sink.mode = 'reject';
  try {
    const person = (await server.console.people.findPersonByEmail('saburo@example.co.jp'))!;
    const again = await admin.request(`/admin/people/${person.id}/invitation`, { form: {} });
    assert.match(await again.text(), /\/welcome\/[A-Za-z0-9_-]{43}/, 'shown when it could not be mailed');
  } finally {
    sink.mode = 'accept';
  }
});

test('mail settings are checked at start; a message cannot grow header lines', () => {
  const fails = (o: Record<string, string>, env: Record<string, string> = {}) => {
    try {
      resolveServeConfig({ ...o, workers: '0' }, env);
    } catch (e) {
      assert.ok(isKakitomeError(e, 'INVALID_ARGUMENT'));
      return e.message;
    }
    return '';
  };
  assert.match(fails({ mailRelay: '127.0.0.1:25' }), /--mail-relay and --mail-from go together/);
  assert.match(fails({ mailFrom: 'a@example.jp' }), /go together/);
  assert.match(fails({ mailRelay: '127.0.0.1:25', mailFrom: 'not an address' }), /--mail-from/);
  assert.match(fails({ mailRelay: 'relay', mailFrom: 'a@example.jp' }), /--mail-relay/);
  assert.match(fails({ mailRelay: '127.0.0.1:99999', mailFrom: 'a@example.jp' }), /--mail-relay/);
  assert.deepEqual(resolveServeConfig({ workers: '0' }, { KAKITOME_MAIL_RELAY: '[::1]:2525', KAKITOME_MAIL_FROM: 'k@example.jp' }).mail, { relay: { host: '::1', port: 2525 }, from: 'k@example.jp' });
  const raw = composeConsoleMail({ relay: { host: 'x', port: 25 }, from: 'k@example.jp' }, { to: 'a@example.jp', fromName: 'Evil\r\nBcc: victim@example.com', subject: 'Hi\r\nBcc: victim@example.com', text: 'body' }).toString('latin1');
  const header = raw.slice(0, raw.indexOf('\r\n\r\n'));
  assert.ok(!/^Bcc:/im.test(header), header);
});
