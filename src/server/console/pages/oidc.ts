/**
 * Single sign-on (oidc-sign-in.ts does the protocol): "Sign in with your company
 * account" on the sign-in page sends the browser to the provider; its answer comes
 * back to /sign-in/oidc/callback, where a verified e-mail signs in the person
 * who has an account with that address (enabled; with a passkey, the passkey
 * step follows, as after a password). The provider's `sub` is pinned to the person
 * at the first sign-in (store/oidc-subjects.ts): the same address with another
 * `sub`, or that `sub` with another person's address, is refused with its own
 * page (an administrator removes the pin on the person's page). Anything else is
 * refused with one page and a log line saying why (never a code, a token or the
 * secret). Audited as `console.sign-in` (detail `oidc <issuer> <sub>`),
 * `console.oidc.pin`, or `console.sign-in.refused`. The same callback answers a
 * step-up flow (its flow cookie names the page to come back to): that one signs
 * nobody in, it confirms the person signed in here (pages/step-up.ts).
 */
import { actingFor, type ConsoleContext, type ConsoleHandler, type ConsoleView } from '../console-context.ts';
import { clearOidcCookie, OIDC_CALLBACK_PATH as CALLBACK, OidcRefusal, readOidcCookie } from '../oidc-sign-in.ts';
import { isRecentAuthTime } from '../step-up.ts';
import { confirmByOidc } from './step-up.ts';
import { afterFirstStep, seeOtherWithCookies } from '../pending-sign-in.ts';
import { takeRate } from '../rate-limit.ts';
import { h, notice, page, type Html } from '../render.ts';
import { landingFor, startSession } from './sign-in.ts';
import { ProblemError } from '../../problem.ts';
import { pinOidcSubject } from '../../../store/oidc-subjects.ts';

/** The link on the sign-in page, when single sign-on is configured. */
export function oidcLink(cx: ConsoleContext, v: ConsoleView): Html | '' {
  return cx.oidc ? h`<div class="card stack"><p>${v.t.oidc.lead}</p><div class="actions"><a class="button secondary" href="/sign-in/oidc" data-oidc>${v.t.oidc.button}</a></div></div>` : '';
}

function refused(v: ConsoleView, text: string, status = 401): Response {
  const r = page(v, { title: v.t.signIn.title, status, body: h`${notice('bad', text)}<p><a href="/sign-in">${v.t.oidc.again}</a></p>` });
  r.headers.append('set-cookie', clearOidcCookie());
  return r;
}

export const oidcStart: ConsoleHandler = async (_c, cx, v) => {
  if (!cx.oidc) throw new ProblemError(404, 'NOT_FOUND', 'Single sign-on is not configured.');
  await takeRate(cx, 'sign-in', v.client, cx.rates.signInPerAddress);
  try {
    const { location, cookie } = await cx.oidc.start(`${cx.origin.baseUrl}${CALLBACK}`);
    return seeOtherWithCookies(location, [cookie]);
  } catch (e) {
    if (!(e instanceof OidcRefusal)) throw e;
    cx.service.log({ time: new Date().toISOString(), level: 'warn', msg: 'single sign-on unavailable', reason: e.message });
    return refused(v, v.t.oidc.unavailable, 502);
  }
};

export const oidcCallback: ConsoleHandler = async (c, cx, v) => {
  if (!cx.oidc) throw new ProblemError(404, 'NOT_FOUND', 'Single sign-on is not configured.');
  await takeRate(cx, 'sign-in', v.client, cx.rates.signInPerAddress);
  const query = new URL(c.req.url).search;
  if (query.length > 4096) return refused(v, v.t.oidc.failed, 400);
  let identity;
  try {
    identity = await cx.oidc.finish(new URL(`${cx.origin.baseUrl}${CALLBACK}${query}`), readOidcCookie(c));
  } catch (e) {
    if (!(e instanceof OidcRefusal)) throw e;
    cx.service.log({ time: new Date().toISOString(), level: 'warn', msg: 'single sign-on refused', reason: e.message });
    await cx.service.store.actingAs('console').audit('console.sign-in.refused', 'oidc', e.message.slice(0, 300));
    return refused(v, v.t.oidc.failed);
  }
  // A step-up flow (pages/step-up.ts) re-authenticates the person signed in here; it signs nobody in.
  if (identity.stepUpNext !== undefined) {
    const confirmed = await confirmByOidc(c, cx, v, { ...identity, stepUpNext: identity.stepUpNext });
    confirmed.headers.append('set-cookie', clearOidcCookie());
    return confirmed;
  }
  const person = await cx.people.findPersonByEmail(identity.email);
  if (!person || person.disabledAt) {
    await cx.service.store.actingAs('console').audit('console.sign-in.refused', identity.email.slice(0, 320), `oidc ${cx.oidcIssuer} ${identity.subject}: no enabled account`);
    return refused(v, v.t.oidc.noAccount(identity.email), 403);
  }
  const pin = await pinOidcSubject(cx.service.store.actingAs('console'), cx.oidcIssuer!, identity.subject, person);
  if (pin.kind === 'other-subject' || pin.kind === 'subject-of-another') {
    const why = pin.kind === 'other-subject' ? `signs in with another account of the provider since ${pin.linkedAt.toISOString()}` : 'this account of the provider is pinned to another person';
    cx.service.log({ time: new Date().toISOString(), level: 'warn', msg: 'single sign-on refused', reason: `oidc subject mismatch: ${why}` });
    await cx.service.store.actingAs('console').audit('console.sign-in.refused', person.email, `oidc ${cx.oidcIssuer} ${identity.subject}: ${why}`);
    return refused(v, v.t.oidc.otherAccount(person.email), 403);
  }
  const second = await afterFirstStep(cx, person, '/', cx.oidcIssuer);
  if (second) {
    second.headers.append('set-cookie', clearOidcCookie());
    return second;
  }
  // The sign-in is a step-up proof only if the provider says the person signed in there just now.
  const session = await startSession(cx, person, v.sessionSecret, cx.oidcIssuer, isRecentAuthTime(identity.authTime, cx.service.store.now()));
  await actingFor(cx, { ...v, person }).store.audit('console.sign-in', person.email, `oidc ${cx.oidcIssuer} ${identity.subject}`);
  return seeOtherWithCookies(landingFor(person), [session, clearOidcCookie()]);
};
