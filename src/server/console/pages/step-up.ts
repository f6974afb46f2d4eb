/**
 * The step-up page (/confirm?next=<page>): a signed-in person proves their
 * presence again (step-up.ts says when and why) with the factor they have, then
 * goes back to `next` (a console path only: render.ts safeNext).
 *
 * - A person with a passkey confirms with it, user verification required
 *   (POST /confirm/passkey/options, then /confirm/passkey; passkey.js is the only
 *   script, as at sign-in): their sign-in asks for the passkey after the password,
 *   so the password alone does not confirm them.
 * - Else the password (POST /confirm), and, when single sign-on is configured and
 *   the person has signed in by it before (their provider subject is pinned), a new
 *   round trip to the provider (GET /confirm/oidc) with prompt=login and max_age=0,
 *   answered at the usual callback (pages/oidc.ts, `confirmByOidc` here): the ID
 *   token's auth_time must be recent and its subject the one pinned to this person.
 *
 * Every attempt (a password, a passkey's assertion, a provider's answer) is
 * rate-limited per person, a password also as a sign-in to that account; asking
 * for a challenge or starting a provider's flow is limited per client address as
 * at sign-in. Failures are audited as `console.step-up.refused`.
 */
import type { Context } from 'hono';
import { PasskeyDirectory } from '../../../store/console-passkeys.ts';
import { listOidcSubjects } from '../../../store/oidc-subjects.ts';
import type { Person } from '../../../store/people-directory.ts';
import { ProblemError } from '../../problem.ts';
import { FORM_MAX_BYTES, type ConsoleContext, type ConsoleHandler, type ConsoleView } from '../console-context.ts';
import { OIDC_CALLBACK_PATH, type OidcIdentity } from '../oidc-sign-in.ts';
import { finishSignIn, MAX_CREDENTIAL_JSON, relyingPartyFor, signInOptions } from '../passkey-ceremony.ts';
import { seeOtherWithCookies } from '../pending-sign-in.ts';
import { takeRate } from '../rate-limit.ts';
import { readForm, textField } from '../read-form.ts';
import { h, notice, page, safeNext, seeOther, type Html } from '../render.ts';
import { auditStepUpRefused, freshProofUntil, isRecentAuthTime, recordStepUp } from '../step-up.ts';

interface Methods {
  passkey: boolean;
  password: boolean;
  oidc: boolean;
}

/** The ways this person can confirm here: a passkey if they have one (and only that), else their password and single sign-on. */
async function methodsOf(cx: ConsoleContext, person: Person): Promise<Methods> {
  const passkey = (await new PasskeyDirectory(cx.service.store).count(person.id)) > 0;
  const pinned = cx.oidc && cx.oidcIssuer ? (await listOidcSubjects(cx.service.store, person.id)).some((s) => s.issuer === cx.oidcIssuer) : false;
  return { passkey, password: !passkey && person.hasPassword, oidc: !passkey && pinned };
}

async function takeAttempt(cx: ConsoleContext, v: ConsoleView): Promise<void> {
  await takeRate(cx, 'step-up', v.person!.id, cx.rates.stepUpPerPerson);
}

function confirmForms(c: Context, cx: ConsoleContext, v: ConsoleView, m: Methods, next: string): Html {
  const t = v.t.stepUp;
  const cancel = h`<a class="button secondary" href="${next}">${t.cancel}</a>`;
  const forms: Html[] = [];
  if (m.passkey) {
    const rp = relyingPartyFor(cx, c.req.header('host'), v.organisation);
    forms.push(rp
      ? h`<form class="card stack" method="post" action="/confirm/passkey" data-passkey="sign-in" data-options="/confirm/passkey/options" data-msg-working="${v.t.passkeys.working}" data-msg-failed="${t.passkeyFailed}" data-msg-unsupported="${v.t.passkeys.unsupported}" data-msg-password="${t.passkeyFailed}" data-msg-expired="${t.passkeyExpired}" data-msg-rate="${v.t.errors.rateLimited(60)}">
<p>${t.passkeyLead}</p>
<input type="hidden" name="next" value="${next}">
<input type="hidden" name="credential" value="">
<p class="hint" data-passkey-status role="status" aria-live="polite"></p>
<div class="actions"><button type="submit">${t.passkeySubmit}</button>${cancel}</div>
</form><script src="/assets/passkey.js" defer></script>`
      : notice('warn', v.t.passkeys.notHere(cx.origin.baseUrl.replace('//127.0.0.1:', '//localhost:'))));
  }
  if (m.password) {
    forms.push(h`<form class="card stack" method="post" action="/confirm">
<input type="hidden" name="next" value="${next}">
<div><label for="step-up-password">${t.password}</label><input id="step-up-password" name="password" type="password" autocomplete="current-password" required></div>
<div class="actions"><button type="submit">${t.submit}</button>${cancel}</div>
</form>`);
  }
  if (m.oidc) forms.push(h`<div class="card stack"><p>${t.oidcLead}</p><div class="actions"><a class="button secondary" href="/confirm/oidc?next=${encodeURIComponent(next)}">${t.oidcButton}</a></div></div>`);
  if (!forms.length) forms.push(notice('warn', t.noMethod));
  return h`${forms}`;
}

async function confirmPage(c: Context, cx: ConsoleContext, v: ConsoleView, next: string, o: { message?: Html; status?: number } = {}): Promise<Response> {
  const t = v.t.stepUp;
  const m = await methodsOf(cx, v.person!);
  const body = h`${o.message ?? ''}<p class="lead">${t.lead(Math.round(cx.stepUpWindowMs / 60_000))}</p><p>${t.again}</p>${confirmForms(c, cx, v, m, next)}`;
  return page(v, { title: t.title, body, ...(o.status ? { status: o.status } : {}) });
}

/** GET /confirm?next=: the forms; straight back when this session already holds a fresh proof. */
export const stepUpPage: ConsoleHandler = async (c, cx, v) => {
  const next = safeNext(c.req.query('next'));
  if (await freshProofUntil(cx, v)) return seeOther(next);
  return confirmPage(c, cx, v, next);
};

/** POST /confirm: the password (people without a passkey). */
export const stepUpPassword: ConsoleHandler = async (c, cx, v) => {
  const person = v.person!;
  const form = await readForm(c, FORM_MAX_BYTES);
  const next = safeNext(textField(form, 'next', 600));
  const password = textField(form, 'password', 4096, false);
  await takeAttempt(cx, v);
  await takeRate(cx, 'sign-in-account', person.email.toLowerCase(), cx.rates.signInPerAccount);
  const m = await methodsOf(cx, person);
  const ok = m.password && (await cx.people.checkPassword(person.email, password))?.id === person.id;
  if (!ok) {
    await auditStepUpRefused(cx, person, m.password ? 'password' : 'password: not a way this person confirms (a passkey is asked)');
    return confirmPage(c, cx, v, next, { status: 401, message: notice('bad', v.t.stepUp.wrongPassword) });
  }
  await recordStepUp(cx, v.sessionSecret!, person, 'password');
  return seeOther(next);
};

function json(value: unknown): Response {
  return new Response(JSON.stringify(value), { headers: { 'content-type': 'application/json; charset=utf-8' } });
}

/** POST /confirm/passkey/options: a challenge for this person's passkeys, user verification required. */
export const stepUpPasskeyOptions: ConsoleHandler = async (c, cx, v) => {
  // The attempt is the assertion (stepUpPasskey); asking for a challenge is limited as a sign-in's is.
  await takeRate(cx, 'sign-in', v.client, cx.rates.signInPerAddress);
  const rp = relyingPartyFor(cx, c.req.header('host'), v.organisation);
  if (!rp) throw new ProblemError(400, 'INVALID_ARGUMENT', 'Passkeys need the console opened by a host name.');
  if (!(await methodsOf(cx, v.person!)).passkey) throw new ProblemError(400, 'INVALID_ARGUMENT', 'This person has no passkey.');
  return json(await signInOptions(cx, rp, v.person!, { stepUp: true }));
};

/** POST /confirm/passkey: the assertion. */
export const stepUpPasskey: ConsoleHandler = async (c, cx, v) => {
  const person = v.person!;
  const form = await readForm(c, FORM_MAX_BYTES);
  const next = safeNext(textField(form, 'next', 600));
  const credential = textField(form, 'credential', MAX_CREDENTIAL_JSON, false);
  await takeAttempt(cx, v);
  const rp = relyingPartyFor(cx, c.req.header('host'), v.organisation);
  if (!rp || !(await finishSignIn(cx, rp, person, credential, { stepUp: true }))) {
    await auditStepUpRefused(cx, person, 'passkey');
    return confirmPage(c, cx, v, next, { status: 401, message: notice('bad', credential ? v.t.stepUp.passkeyFailed : v.t.passkeys.unsupported) });
  }
  await recordStepUp(cx, v.sessionSecret!, person, 'passkey');
  return seeOther(next);
};

/** GET /confirm/oidc?next=: to the provider, asking it to sign the person in again. */
export const stepUpOidcStart: ConsoleHandler = async (c, cx, v) => {
  if (!cx.oidc) throw new ProblemError(404, 'NOT_FOUND', 'Single sign-on is not configured.');
  const next = safeNext(c.req.query('next'));
  // The attempt is the provider's answer (confirmByOidc); starting one is limited as a sign-in's start is.
  await takeRate(cx, 'sign-in', v.client, cx.rates.signInPerAddress);
  if (!(await methodsOf(cx, v.person!)).oidc) return confirmPage(c, cx, v, next, { status: 400, message: notice('bad', v.t.stepUp.oidcFailed) });
  try {
    const { location, cookie } = await cx.oidc.start(`${cx.origin.baseUrl}${OIDC_CALLBACK_PATH}`, { next });
    return seeOtherWithCookies(location, [cookie]);
  } catch (e) {
    cx.service.log({ time: new Date().toISOString(), level: 'warn', msg: 'single sign-on unavailable (step-up)', reason: (e as Error).message });
    return confirmPage(c, cx, v, next, { status: 502, message: notice('bad', v.t.oidc.unavailable) });
  }
};

/**
 * The provider's answer to a step-up flow (called by the callback, pages/oidc.ts,
 * once openid-client has validated it): a proof for this session when the subject
 * is the one pinned to the signed-in person and auth_time is recent.
 */
export async function confirmByOidc(c: Context, cx: ConsoleContext, v: ConsoleView, identity: OidcIdentity & { stepUpNext: string }): Promise<Response> {
  const next = safeNext(identity.stepUpNext);
  if (!v.person || !v.sessionSecret) return seeOther(`/sign-in?next=${encodeURIComponent(next)}`);
  const person = v.person;
  await takeAttempt(cx, v);
  const pinned = (await listOidcSubjects(cx.service.store, person.id)).some((s) => s.issuer === cx.oidcIssuer && s.subject === identity.subject);
  if (!pinned) {
    await auditStepUpRefused(cx, person, `oidc ${cx.oidcIssuer} ${identity.subject}: not the subject pinned to this person`);
    return confirmPage(c, cx, v, next, { status: 403, message: notice('bad', v.t.stepUp.oidcOtherAccount) });
  }
  if (!isRecentAuthTime(identity.authTime, cx.service.store.now())) {
    const when = identity.authTime === undefined ? 'no auth_time' : `auth_time ${new Date(identity.authTime * 1000).toISOString()}`;
    await auditStepUpRefused(cx, person, `oidc ${cx.oidcIssuer} ${identity.subject}: ${when}, not a sign-in made just now`);
    return confirmPage(c, cx, v, next, { status: 401, message: notice('bad', v.t.stepUp.oidcFailed) });
  }
  await recordStepUp(cx, v.sessionSecret, person, 'oidc', `oidc ${cx.oidcIssuer} ${identity.subject}`);
  return seeOther(next);
}
