/**
 * Step-up re-authentication for a person who signs in by single sign-on only (no
 * password), against the real OpenID provider of the tests (oidc-provider-peer.ts):
 * the console asks the provider to sign the person in again (prompt=login,
 * max_age=0) even though the provider still holds a session for this browser;
 * an answer whose auth_time is old, or that names another account of the
 * provider, proves nothing; a fresh one lets the action through.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { OIDC_COOKIE } from '../../src/server/console/oidc-sign-in.ts';
import { OIDC_FRESH_MS } from '../../src/server/console/step-up.ts';
import { en } from '../../src/server/console/messages/en.ts';
import { startAdminFixture, ROLE_PEOPLE, type AdminFixture } from './admin-fixture.ts';
import { startOidcProvider, type OidcPeer, type ProviderJar } from './oidc-provider-peer.ts';
import type { ConsoleClient } from './console-client.ts';

const SSO_ONLY = 'sso-only@example.co.jp';
let fx: AdminFixture;
let idp: OidcPeer;
let origin = '';

before(async () => {
  idp = await startOidcProvider({
    sso: { email: SSO_ONLY, email_verified: true },
    user: { email: ROLE_PEOPLE.user!.email, email_verified: true },
  });
  fx = await startAdminFixture({ oidc: { issuer: idp.issuer, clientId: idp.clientId, clientSecret: idp.clientSecret } });
  origin = fx.server.console.origin.baseUrl;
  idp.attach(`${origin}/sign-in/oidc/callback`, `${origin}/sign-in?signed-out`);
  await fx.server.console.people.addPerson({ email: SSO_ONLY, roles: [] });
});
after(async () => {
  await fx?.close();
  await idp?.close();
});

/** Later than a single sign-on's auth_time may be (step-up.ts OIDC_FRESH_MS). */
const LATE_MS = OIDC_FRESH_MS + 1000;

/**
 * Every proof made so far runs out, as after the window. Not by the fixture's
 * clock: the provider keeps the real time, and a fresh auth_time must stay fresh.
 */
async function proofsRunOut(): Promise<void> {
  await fx.store.engine.run("UPDATE console_tokens SET expires_at = created_at WHERE purpose = 'step-up'");
}

/** The console's callback path after the provider's pages at `url`, answered as `account`. */
async function atProvider(url: string, account: string, jar: ProviderJar): Promise<string> {
  const back = await idp.signIn(url, account, jar);
  assert.equal(back.origin, new URL(origin).origin);
  return back.pathname + back.search;
}

async function signInBySso(jar: ProviderJar): Promise<ConsoleClient> {
  const c = await fx.client('anonymous');
  const r = await c.request('/sign-in/oidc');
  const done = await c.request(await atProvider(r.headers.get('location')!, 'sso', jar));
  assert.equal(done.status, 303);
  assert.ok(c.cookies.has('__Host-kakitome-session'));
  return c;
}

/** Starts a step-up flow from the confirmation page: the provider's authorization URL. */
async function startStepUp(c: ConsoleClient, next: string): Promise<URL> {
  const r = await c.request(`/confirm/oidc?next=${encodeURIComponent(next)}`);
  assert.equal(r.status, 303, await r.clone().text());
  const url = new URL(r.headers.get('location')!);
  assert.ok(url.href.startsWith(`${idp.issuer}/`));
  return url;
}

test('an SSO-only person confirms by a fresh sign-in at the provider; an old auth_time or another account proves nothing', async () => {
  const jar: ProviderJar = new Map();
  const c = await signInBySso(jar);
  await proofsRunOut();
  const refused = await c.request('/me/keys', { form: {} });
  assert.equal(refused.headers.get('location'), '/confirm?next=%2Fme');
  const page = await (await c.request('/confirm?next=%2Fme')).text();
  assert.ok(page.includes('href="/confirm/oidc?next=%2Fme"') && page.includes(en.stepUp.oidcButton), page);
  assert.ok(!page.includes('id="step-up-password"'), 'no password: no password form');

  // The flow asks the provider for a new login whatever session it holds.
  const url = await startStepUp(c, '/me');
  assert.equal(url.searchParams.get('prompt'), 'login');
  assert.equal(url.searchParams.get('max_age'), '0');
  assert.equal(c.cookies.get(OIDC_COOKIE)!.split('.').length, 4);
  const logins = idp.logins;
  const callback = await atProvider(url.href, 'sso', jar);
  assert.equal(idp.logins, logins + 1, 'the provider asked for the login again although it had a session');
  // The answer arrives late (as if the provider had answered from an old sign-in): auth_time is not recent.
  fx.advance(LATE_MS);
  const late = await c.request(callback);
  fx.advance(-LATE_MS);
  assert.equal(late.status, 401);
  assert.ok((await late.text()).includes(en.stepUp.oidcFailed));
  assert.ok(!c.cookies.has(OIDC_COOKIE), 'the flow cookie is used once');
  assert.equal((await c.request('/me/keys', { form: {} })).headers.get('location'), '/confirm?next=%2Fme');
  const log = await fx.store.auditLog({ object: SSO_ONLY, limit: 100 });
  assert.ok(log.some((e) => e.action === 'console.step-up.refused' && /auth_time .* not a sign-in made just now/.test(e.detail ?? '')), JSON.stringify(log));

  // Another account of the provider (the user's) answering the step-up of this session: refused.
  const other = await atProvider((await startStepUp(c, '/me')).href, 'user', new Map());
  const wrong = await c.request(other);
  assert.equal(wrong.status, 403);
  assert.ok((await wrong.text()).includes(en.stepUp.oidcOtherAccount));
  assert.equal((await c.request('/me/keys', { form: {} })).headers.get('location'), '/confirm?next=%2Fme');

  // A fresh sign-in at the provider as the same account: confirmed, back to the page, the action goes through.
  const fresh = await c.request(await atProvider((await startStepUp(c, '/me')).href, 'sso', jar));
  assert.equal(fresh.status, 303, await fresh.clone().text());
  assert.equal(fresh.headers.get('location'), '/me');
  const through = await c.request('/me/keys', { form: {} });
  assert.notEqual(through.headers.get('location'), '/confirm?next=%2Fme');
  assert.equal(through.status, 404, 'past the step-up: the person has no old keys');
  const proof = (await fx.store.auditLog({ object: SSO_ONLY, limit: 100 })).find((e) => e.action === 'console.step-up');
  assert.match(proof!.detail!, new RegExp(`^oidc ${idp.issuer} sso, until `));
});

test('a step-up answer without a session, or in another session, signs nobody in and proves nothing for that session', async () => {
  const jar: ProviderJar = new Map();
  const c = await signInBySso(jar);
  const callback = await atProvider((await startStepUp(c, '/me')).href, 'sso', jar);
  // Another browser with its own session, given the flow cookie and the answer: the subject is not its person's.
  const user = await fx.client('user');
  user.cookies.set(OIDC_COOKIE, c.cookies.get(OIDC_COOKIE)!);
  await proofsRunOut();
  const r = await user.request(callback);
  assert.equal(r.status, 403);
  assert.equal((await user.request('/me/keys', { form: {} })).headers.get('location'), '/confirm?next=%2Fme');
  // Without any session: to the sign-in page, no session made.
  const anonymous = await fx.client('anonymous');
  const again = await atProvider((await startStepUp(c, '/me')).href, 'sso', jar);
  anonymous.cookies.set(OIDC_COOKIE, c.cookies.get(OIDC_COOKIE)!);
  const none = await anonymous.request(again);
  assert.equal(none.headers.get('location'), '/sign-in?next=%2Fme');
  assert.ok(!anonymous.cookies.has('__Host-kakitome-session'));
});
