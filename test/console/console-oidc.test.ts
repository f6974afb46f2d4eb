/**
 * Single sign-on against a real OpenID provider on loopback (oidc-provider,
 * oidc-provider-peer.ts), through the real redirect flow: the console sends the
 * browser to the provider, the provider's login and consent pages are driven over
 * HTTP, and its answer comes back to the console's callback. Signs in the person
 * whose verified e-mail it is; refuses a wrong state, a replayed code, a wrong
 * nonce, an unverified e-mail, an address without an account, a callback without
 * the flow's cookie, and a provider whose discovery names another issuer. The
 * provider's `sub` is pinned at the first sign-in: the same address from another
 * account of the provider, or that account with another person's address, is
 * refused until an administrator removes the pin. Signing out of a session made by
 * single sign-on signs out at the provider (RP-initiated logout).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { OidcRefusal, OidcSignIn, OIDC_COOKIE } from '../../src/server/console/oidc-sign-in.ts';
import { resolveOidcConfig } from '../../src/server/config.ts';
import { PasskeyDirectory } from '../../src/store/console-passkeys.ts';
import { en } from '../../src/server/console/messages/en.ts';
import { isKakitomeError } from '../../src/errors.ts';
import { startAdminFixture, ROLE_PEOPLE, type AdminFixture } from './admin-fixture.ts';
import { startOidcProvider, type OidcAccount, type OidcPeer, type ProviderJar } from './oidc-provider-peer.ts';
import { ja } from '../../src/server/console/messages/ja.ts';
import type { ConsoleClient } from './console-client.ts';

let fx: AdminFixture;
let idp: OidcPeer;
let origin = '';

/** The provider's accounts (the test changes one's address, as the provider's administrator would). */
let accounts: Record<string, OidcAccount>;

before(async () => {
  idp = await startOidcProvider(accounts = {
    user: { email: ROLE_PEOPLE.user!.email, email_verified: true },
    // The address of a person with an account, but the provider never verified it.
    unverified: { email: ROLE_PEOPLE.officer!.email, email_verified: false },
    stranger: { email: 'stranger@example.co.jp', email_verified: true },
    helpdesk: { email: ROLE_PEOPLE.helpdesk!.email.toUpperCase(), email_verified: true },
    // The user's address again, from another account of the provider (a re-created account).
    'user-again': { email: ROLE_PEOPLE.user!.email, email_verified: true },
    auditor: { email: ROLE_PEOPLE.auditor!.email, email_verified: true },
  });
  fx = await startAdminFixture({ oidc: { issuer: idp.issuer, clientId: idp.clientId, clientSecret: idp.clientSecret } });
  origin = fx.server.console.origin.baseUrl;
  idp.attach(`${origin}/sign-in/oidc/callback`, `${origin}/sign-in?signed-out`);
});
after(async () => {
  await fx?.close();
  await idp?.close();
});

/** Starts a flow in `c`: the provider's authorization URL and the flow cookie's value. */
async function start(c: ConsoleClient): Promise<{ url: string; cookie: string }> {
  const r = await c.request('/sign-in/oidc');
  assert.equal(r.status, 303);
  const url = r.headers.get('location')!;
  assert.ok(url.startsWith(`${idp.issuer}/`), url);
  return { url, cookie: c.cookies.get(OIDC_COOKIE)! };
}

/** The console's callback path (with the provider's query) after signing in at the provider as `account`. */
async function atProvider(url: string, account: string, jar?: ProviderJar): Promise<string> {
  const back = await idp.signIn(url, account, jar);
  assert.equal(back.origin, new URL(origin).origin);
  assert.equal(back.pathname, '/sign-in/oidc/callback');
  return back.pathname + back.search;
}

async function refusals(): Promise<number> {
  return (await fx.store.auditLog({ limit: 1000 })).filter((e) => e.action === 'console.sign-in.refused').length;
}

test('the real redirect flow signs in the person with that verified e-mail: PKCE S256, state and nonce sent; a new session; audited', async () => {
  const c = await fx.client('anonymous');
  const page = await (await c.request('/sign-in')).text();
  assert.ok(page.includes('href="/sign-in/oidc"') && page.includes(en.oidc.button));
  const { url, cookie } = await start(c);
  const q = new URL(url).searchParams;
  assert.equal(q.get('code_challenge_method'), 'S256');
  assert.equal(q.get('client_id'), idp.clientId);
  assert.equal(q.get('redirect_uri'), `${origin}/sign-in/oidc/callback`);
  assert.equal(q.get('scope'), 'openid email');
  assert.ok(q.get('state') && q.get('nonce') && q.get('code_challenge'));
  assert.equal(cookie.split('.').length, 3);
  const callback = await atProvider(url, 'user');
  const done = await c.request(callback);
  assert.equal(done.status, 303, await done.clone().text());
  assert.equal(done.headers.get('location'), '/me');
  assert.ok(c.cookies.get('__Host-kakitome-session'));
  assert.ok(!c.cookies.has(OIDC_COOKIE), 'the flow cookie is used once');
  assert.equal((await c.request('/me')).status, 200);
  const [row] = (await fx.store.auditLog({ object: ROLE_PEOPLE.user!.email })).filter((e) => e.action === 'console.sign-in');
  assert.match(row!.detail!, new RegExp(`^oidc ${idp.issuer} user$`));
  const all = JSON.stringify(await fx.store.auditLog({ limit: 1000 }));
  assert.ok(!all.includes(idp.clientSecret) && !all.includes(new URLSearchParams(callback.split('?')[1]).get('code')!), 'neither the secret nor the code in the audit log');

  // The same answer again (the code replayed, even with the flow's cookie back): the provider refuses the code.
  const replay = await fx.client('anonymous');
  replay.cookies.set(OIDC_COOKIE, cookie);
  const before = await refusals();
  const r = await replay.request(callback);
  assert.equal(r.status, 401);
  assert.ok((await r.text()).includes(en.oidc.failed));
  assert.ok(!replay.cookies.has('__Host-kakitome-session'));
  assert.equal(await refusals(), before + 1);
  // And without the cookie (another browser): nothing to match.
  assert.equal((await (await fx.client('anonymous')).request(callback)).status, 401);
});

test('a wrong state (an answer to another flow) and a wrong nonce are refused', async () => {
  const c = await fx.client('anonymous');
  const first = await start(c);
  const second = await start(c);
  // The browser now holds the second flow's cookie; the provider answers the first.
  const callback = await atProvider(first.url, 'user');
  assert.equal((await c.request(callback)).status, 401, 'state of another flow');
  assert.ok(!c.cookies.has('__Host-kakitome-session'));

  // The right state and PKCE verifier with another flow's nonce: the code is exchanged, the ID token's nonce does not match.
  const d = await fx.client('anonymous');
  const a = await start(d);
  const b = await start(d);
  const [stateA, , verifierA] = a.cookie.split('.');
  const [, nonceB] = b.cookie.split('.');
  d.cookies.set(OIDC_COOKIE, `${stateA}.${nonceB}.${verifierA}`);
  const cb = await atProvider(a.url, 'user');
  const r = await d.request(cb);
  assert.equal(r.status, 401, 'nonce of another flow');
  assert.ok(!d.cookies.has('__Host-kakitome-session'));
  const last = (await fx.store.auditLog({ limit: 5 })).find((e) => e.action === 'console.sign-in.refused');
  assert.match(last!.detail!, /the answer was refused/);
  void second;
});

test('an unverified e-mail, an address without an account, and a malformed cookie are refused; a person with a passkey proves it next', async () => {
  const u = await fx.client('anonymous');
  const unverified = await start(u);
  const r1 = await u.request(await atProvider(unverified.url, 'unverified'));
  assert.equal(r1.status, 401);
  assert.ok(!u.cookies.has('__Host-kakitome-session'));
  assert.match((await fx.store.auditLog({ limit: 5 })).find((e) => e.action === 'console.sign-in.refused')!.detail!, /has not verified officer@example\.co\.jp/);

  const s = await fx.client('anonymous');
  const stranger = await start(s);
  const r2 = await s.request(await atProvider(stranger.url, 'stranger'));
  assert.equal(r2.status, 403);
  assert.ok((await r2.text()).includes(en.oidc.noAccount('stranger@example.co.jp')));
  assert.ok(!s.cookies.has('__Host-kakitome-session'));
  assert.equal(await fx.server.console.people.findPersonByEmail('stranger@example.co.jp'), undefined, 'nobody is created');

  const m = await fx.client('anonymous');
  const flow = await start(m);
  const cb = await atProvider(flow.url, 'user');
  m.cookies.set(OIDC_COOKIE, 'x.y.z');
  assert.equal((await m.request(cb)).status, 401);

  // Helpdesk (the provider spells the address in capitals) has a passkey: the passkey step follows.
  const helpdeskId = (await fx.server.console.people.findPersonByEmail(ROLE_PEOPLE.helpdesk!.email))!.id;
  await new PasskeyDirectory(fx.store).add({ personId: helpdeskId, email: ROLE_PEOPLE.helpdesk!.email, id: randomBytes(16).toString('base64url'), publicKey: randomBytes(77), signCount: 0, name: 'key' });
  const h = await fx.client('anonymous');
  const hf = await start(h);
  const r3 = await h.request(await atProvider(hf.url, 'helpdesk'));
  assert.equal(r3.status, 303);
  assert.match(r3.headers.get('location')!, /^\/sign-in\/passkey/);
  assert.ok(!h.cookies.has('__Host-kakitome-session') && h.cookies.has('__Host-kakitome-pending'));
});

test('a provider whose discovery names another issuer is refused; the configuration is checked before start', async () => {
  // The same provider reached as localhost: its metadata says 127.0.0.1.
  const wrong = new OidcSignIn({ issuer: idp.issuer.replace('127.0.0.1', 'localhost'), clientId: idp.clientId, clientSecret: idp.clientSecret });
  await assert.rejects(wrong.start(`${origin}/sign-in/oidc/callback`), (e: unknown) => e instanceof OidcRefusal && /discovery failed/.test(e.message));
  const secret = async () => 'from a spec';
  const refused = async (o: Record<string, string>) => assert.rejects(resolveOidcConfig(o, secret, {}), (e: unknown) => isKakitomeError(e, 'INVALID_ARGUMENT'));
  await refused({ oidcIssuer: 'http://login.example.co.jp', oidcClientId: 'c', oidcClientSecret: 'env:X' });
  await refused({ oidcIssuer: 'https://login.example.co.jp', oidcClientId: 'c' });
  await refused({ oidcIssuer: 'https://login.example.co.jp', oidcClientId: 'c', oidcClientSecret: 'pass:hunter2' });
  await refused({ oidcIssuer: 'https://user:pw@login.example.co.jp', oidcClientId: 'c', oidcClientSecret: 'env:X' });
  assert.deepEqual(await resolveOidcConfig({ oidcIssuer: 'https://login.example.co.jp', oidcClientId: 'c', oidcClientSecret: 'env:X' }, secret, {}), { issuer: 'https://login.example.co.jp', clientId: 'c', clientSecret: 'from a spec' });
  // Without single sign-on configured, the routes do not exist.
  const plain = await startAdminFixture();
  try {
    const c = await plain.client('anonymous');
    assert.equal((await c.request('/sign-in/oidc')).status, 404);
    assert.ok(!(await (await c.request('/sign-in')).text()).includes('/sign-in/oidc'));
  } finally {
    await plain.close();
  }
});

/** Single sign-on as `account` in a new browser: the console's answer to the callback. */
async function signInAs(account: string, jar?: ProviderJar): Promise<{ c: ConsoleClient; r: Response }> {
  const c = await fx.client('anonymous');
  const { url } = await start(c);
  return { c, r: await c.request(await atProvider(url, account, jar)) };
}

test('the provider\'s sub is pinned at the first sign-in: the same address from another account, or that account with another address, is refused until an administrator removes the pin', async () => {
  // The first test signed the user in as the provider's account "user": pinned.
  const first = await signInAs('user');
  assert.equal(first.r.status, 303);
  const userId = (await fx.server.console.people.findPersonByEmail(ROLE_PEOPLE.user!.email))!.id;
  const pins = await fx.store.engine.all('SELECT issuer, subject FROM console_oidc_subjects WHERE person_id = ?', [userId]);
  assert.deepEqual(pins.map((p) => `${String(p.issuer)} ${String(p.subject)}`), [`${idp.issuer} user`]);

  // A new account at the provider with the user's (verified) address: refused, in words, audited, no session.
  const before = await refusals();
  const again = await signInAs('user-again');
  assert.equal(again.r.status, 403);
  const escaped = (text: string) => text.replaceAll("'", '&#39;');
  assert.ok((await again.r.text()).includes(escaped(en.oidc.otherAccount(ROLE_PEOPLE.user!.email))));
  assert.ok(!again.c.cookies.has('__Host-kakitome-session'));
  assert.equal(await refusals(), before + 1);
  const refusal = (await fx.store.auditLog({ limit: 5 })).find((e) => e.action === 'console.sign-in.refused')!;
  assert.equal(refusal.object, ROLE_PEOPLE.user!.email);
  assert.match(refusal.detail!, new RegExp(`^oidc ${idp.issuer} user-again: signs in with another account of the provider since `));
  // In Japanese too.
  const jaBrowser = await fx.client('anonymous');
  jaBrowser.headers['accept-language'] = 'ja';
  const { url } = await start(jaBrowser);
  assert.ok((await (await jaBrowser.request(await atProvider(url, 'user-again'))).text()).includes(escaped(ja.oidc.otherAccount(ROLE_PEOPLE.user!.email))));

  // The pinned account now carries the auditor's address (changed at the provider): it signs in nobody else.
  const own = accounts.user!.email;
  accounts.user!.email = ROLE_PEOPLE.auditor!.email;
  const moved = await signInAs('user');
  accounts.user!.email = own;
  assert.equal(moved.r.status, 403);
  assert.ok(!moved.c.cookies.has('__Host-kakitome-session'));
  assert.match((await fx.store.auditLog({ limit: 5 })).find((e) => e.action === 'console.sign-in.refused')!.detail!, /pinned to another person$/);
  // The auditor's own account is pinned at their first sign-in, as anyone's.
  assert.equal((await signInAs('auditor')).r.status, 303);

  // An administrator sees the link on the person's page and removes it (a registration officer may not); the person's sessions end.
  const admin = await fx.client('admin');
  const personPage = await (await admin.request(`/admin/people/${userId}`)).text();
  assert.ok(personPage.includes('data-oidc-links="1"') && personPage.includes(`/admin/people/${userId}/oidc/forget`));
  const officer = await fx.client('officer');
  const officerView = await officer.request(`/admin/people/${userId}`);
  assert.equal(officerView.status, 200);
  assert.ok(!(await officerView.text()).includes('/oidc/forget'));
  assert.equal((await officer.request(`/admin/people/${userId}/oidc/forget`, { form: { confirm: 'yes' } })).status, 403);
  assert.equal((await admin.request(`/admin/people/${userId}/oidc/forget`, { form: {} })).status, 400);
  assert.equal((await first.c.request('/me')).status, 200);
  const forgot = await admin.request(`/admin/people/${userId}/oidc/forget`, { form: { confirm: 'yes' } });
  assert.equal(forgot.status, 303);
  assert.notEqual((await first.c.request('/me')).status, 200, 'the person\'s sessions ended');
  assert.equal((await fx.store.auditLog({ limit: 10 })).find((e) => e.action === 'console.oidc.unpin')!.object, ROLE_PEOPLE.user!.email);
  // The new account now signs in, and is the one pinned.
  assert.equal((await signInAs('user-again')).r.status, 303);
  assert.equal((await signInAs('user')).r.status, 403);
});

test('signing out of a single sign-on session signs out at the provider and comes back; a password session signs out here only', async () => {
  const jar: ProviderJar = new Map();
  const logins = idp.logins;
  const { c, r } = await signInAs('auditor', jar);
  assert.equal(r.status, 303);
  assert.equal(idp.logins, logins + 1);
  const out = await c.request('/sign-out', { method: 'POST' });
  // A page whose link console.js follows, not a redirect: a form's redirect to another origin breaks form-action 'self' (console-browser.test.ts signs out in chromium).
  assert.equal(out.status, 200);
  const html = await out.text();
  assert.ok(html.includes(en.oidc.signedOutHere), html);
  const location = new URL(/<a [^>]*href="([^"]+)"[^>]*data-continue>/.exec(html)![1]!.replaceAll('&amp;', '&'));
  assert.ok(location.href.startsWith(`${idp.issuer}/`), location.href);
  assert.equal(location.searchParams.get('client_id'), idp.clientId);
  assert.equal(location.searchParams.get('post_logout_redirect_uri'), `${origin}/sign-in?signed-out`);
  assert.ok(!c.cookies.has('__Host-kakitome-session'), 'the session here is over at once');
  assert.equal((await fx.store.auditLog({ limit: 5 })).find((e) => e.action === 'console.sign-out')!.detail, `and at ${idp.issuer}`);
  // The provider ends its session and sends the browser back to the console.
  const back = await idp.signOut(location.href, jar);
  assert.equal(back.href, `${origin}/sign-in?signed-out`);
  // The provider's session is gone: the next single sign-on in that browser asks for the login again.
  assert.equal((await signInAs('auditor', jar)).r.status, 303);
  assert.equal(idp.logins, logins + 2);

  // A password session: signed out here, back to the sign-in page.
  const p = await fx.client('officer');
  const local = await p.request('/sign-out', { method: 'POST' });
  assert.equal(local.headers.get('location'), '/sign-in?signed-out');

  // A provider that announces no end_session_endpoint: nowhere to send the browser, so sign-out stays local.
  const plain = await startOidcProvider({}, { logout: false });
  try {
    plain.attach(`${origin}/sign-in/oidc/callback`);
    assert.equal(await new OidcSignIn({ issuer: plain.issuer, clientId: plain.clientId, clientSecret: plain.clientSecret }).endSessionUrl(`${origin}/sign-in?signed-out`), undefined);
  } finally {
    await plain.close();
  }
});
