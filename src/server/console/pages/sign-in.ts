/**
 * The start page, signing in and out, and the language switch. Signing in makes a
 * new session every time (rotation) and ends the one the browser had; a failed
 * sign-in says the same whatever was wrong, after the same work
 * (PeopleDirectory.checkPassword), and is rate-limited per client and per account.
 */
import type { Person } from '../../../store/people-directory.ts';
import { hasStaffRole } from '../access.ts';
import { FORM_MAX_BYTES, type ConsoleContext, type ConsoleHandler, type ConsoleView } from '../console-context.ts';
import { clearSessionCookie, languageCookie, readSessionCookie, sessionCookie } from '../cookies.ts';
import { isLanguage } from '../messages/choose-language.ts';
import { afterFirstStep } from '../pending-sign-in.ts';
import { oidcLink } from './oidc.ts';
import { mailLinkForm } from './mail-link.ts';
import { takeRate } from '../rate-limit.ts';
import { recordStepUp } from '../step-up.ts';
import { readForm, textField } from '../read-form.ts';
import { isMailboxAddressInAnyForm } from '../../../x509/mailbox-address.ts';
import { normalizeAddress } from '../../../store/store.ts';
import { h, notice, page, safeNext, seeOther, type Html } from '../render.ts';

/**
 * Starts a session for `person` (ending the browser's previous one); returns its
 * Set-Cookie value. `oidcIssuer`: the provider whose single sign-on made it
 * (sign-out then signs out there too). `proven`: the sign-in just completed is a
 * step-up proof for the new session (step-up.ts); false for a single sign-on the
 * provider may have answered from an old session of its own.
 */
export async function startSession(cx: ConsoleContext, person: Person, previousSecret: string | undefined, oidcIssuer?: string, proven = true): Promise<string> {
  await cx.sessions.end(previousSecret);
  const { secret } = await cx.sessions.start(person, oidcIssuer ? { oidcIssuer } : {});
  if (proven) await recordStepUp(cx, secret, person, 'sign-in');
  return sessionCookie(secret);
}

/** Where a person lands after signing in, unless they were on their way somewhere. */
export function landingFor(person: Person): string {
  return hasStaffRole(person) ? '/admin' : '/me';
}

export const home: ConsoleHandler = async (_c, cx, v) => {
  if (v.person) return seeOther(landingFor(v.person));
  const t = v.t.home;
  const setUp = (await cx.people.countAdministrators()) > 0;
  const body = h`
${setUp ? '' : notice('info', t.notSetUp)}
<div class="card stack">
<p class="lead">${t.lead}</p>
<p>${t.signedOut}</p>
<div class="actions"><a class="button" href="/sign-in">${v.t.nav.signIn}</a><a class="button secondary" href="/check">${t.checkLink}</a></div>
</div>`;
  return page(v, { title: t.title, body });
};

function signInForm(v: ConsoleView, o: { email?: string; next?: string; message?: Html; more?: Html | '' } = {}): Html {
  const t = v.t.signIn;
  return h`
${o.message ?? ''}
<form class="card stack" method="post" action="/sign-in">
<input type="hidden" name="next" value="${safeNext(o.next)}">
<div><label for="email">${t.email}</label><input id="email" name="email" type="email" autocomplete="username" required value="${o.email ?? ''}"></div>
<div><label for="password">${t.password}</label><input id="password" name="password" type="password" autocomplete="current-password" required></div>
<div class="actions"><button type="submit">${t.submit}</button></div>
</form>
${o.more ?? ''}
<p class="hint">${t.otherWays}</p>`;
}

export const signInPage: ConsoleHandler = async (c, cx, v) => {
  if (v.person) return seeOther(landingFor(v.person));
  const signedOut = c.req.query('signed-out') !== undefined;
  return page(v, { title: v.t.signIn.title, body: signInForm(v, { next: c.req.query('next') ?? '/', more: h`${oidcLink(cx, v)}${mailLinkForm(cx, v)}`, ...(signedOut ? { message: notice('info', v.t.signIn.signedOut) } : {}) }) });
};

export const signInSubmit: ConsoleHandler = async (c, cx, v) => {
  const form = await readForm(c, FORM_MAX_BYTES);
  const email = textField(form, 'email', 320);
  const password = textField(form, 'password', 4096, false);
  const next = textField(form, 'next', 600);
  await takeRate(cx, 'sign-in', v.client, cx.rates.signInPerAddress);
  // Keyed by the address as the store files it: every written form of one account (case, a final dot,
  // full-width or Unicode domain labels) draws on one budget.
  await takeRate(cx, 'sign-in-account', normalizeAddress(email), cx.rates.signInPerAccount);
  const person = await cx.people.checkPassword(email, password);
  if (!person) {
    // What is not an address is kept out of the log: it is often the password, typed in the wrong field.
    const address = isMailboxAddressInAnyForm(email);
    await cx.service.store.actingAs('console').audit('console.sign-in.refused', address ? email : undefined, address ? undefined : 'not an address');
    return page(v, { title: v.t.signIn.title, status: 401, body: signInForm(v, { email, next, more: h`${oidcLink(cx, v)}${mailLinkForm(cx, v)}`, message: notice('bad', v.t.signIn.failed) }) });
  }
  // A person with a passkey is not signed in yet: the passkey is the second step.
  const second = await afterFirstStep(cx, person, next);
  if (second) return second;
  const cookie = await startSession(cx, person, v.sessionSecret);
  await cx.service.store.actingAs(`console:${person.email}`).audit('console.sign-in', person.email);
  return seeOther(next && next !== '/' ? safeNext(next) : landingFor(person), { 'set-cookie': cookie });
};

/**
 * Ends the session here; a session made by single sign-on is then also ended at
 * the provider when it announces an end_session_endpoint (OpenID Connect
 * RP-Initiated Logout 1.0): the browser goes there, and the provider sends it back
 * to /sign-in?signed-out (the post_logout_redirect_uri registered with it).
 * Otherwise, or if the provider cannot be asked, the sign-out is local.
 *
 * The way to the provider is a page with a link that console.js follows at once,
 * not a redirect: the sign-out is a form, and the Content-Security-Policy's
 * `form-action 'self'` also covers where a form's answer redirects, so browsers
 * refused a 303 to the provider (found in the browser test; a plain HTTP client
 * follows it). Without the script, the person follows the link.
 */
export const signOut: ConsoleHandler = async (_c, cx, v) => {
  const ended = await cx.sessions.end(v.sessionSecret);
  const signedOut = `${cx.origin.baseUrl}/sign-in?signed-out`;
  const atProvider = ended?.oidcIssuer && cx.oidc && ended.oidcIssuer === cx.oidcIssuer ? await cx.oidc.endSessionUrl(signedOut).catch((e: unknown) => {
    cx.service.log({ time: new Date().toISOString(), level: 'warn', msg: 'single sign-on: sign-out at the provider unavailable', reason: (e as Error).message });
    return undefined;
  }) : undefined;
  if (v.person) await cx.service.store.actingAs(`console:${v.person.email}`).audit('console.sign-out', v.person.email, atProvider ? `and at ${cx.oidcIssuer}` : undefined);
  if (!atProvider) return seeOther('/sign-in?signed-out', { 'set-cookie': clearSessionCookie() });
  const t = v.t.oidc;
  return page({ ...v, person: undefined, sessionSecret: undefined }, {
    title: t.signOutTitle,
    body: h`${notice('good', t.signedOutHere)}<p><a class="button" href="${atProvider}" data-continue>${t.signOutAtProvider}</a></p>`,
    headers: { 'set-cookie': clearSessionCookie() },
  });
};

export const switchLanguage: ConsoleHandler = async (c, cx, v) => {
  const form = await readForm(c, FORM_MAX_BYTES);
  const lang = textField(form, 'lang', 8);
  if (!isLanguage(lang)) return seeOther(safeNext(textField(form, 'next', 600)));
  if (v.person) await cx.people.setLanguage(v.person.id, lang);
  return seeOther(safeNext(textField(form, 'next', 600)), { 'set-cookie': languageCookie(lang) });
};
