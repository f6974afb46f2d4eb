/**
 * Passkeys: a signed-in person lists, adds and removes theirs on "Sign-in and
 * passkeys" (/me/security), and a person who has one proves it at sign-in after
 * the password (/sign-in/passkey). Adding and removing ask for the password again,
 * so a session left open (or stolen) can neither add the thief's passkey nor
 * remove the owner's. The browser side is /assets/passkey.js (no inline script):
 * it asks the server for the ceremony's options, lets the browser talk to the
 * authenticator, and posts the answer in the page's own form.
 */
import type { Context } from 'hono';
import { PasskeyDirectory, type Passkey } from '../../../store/console-passkeys.ts';
import type { Person } from '../../../store/people-directory.ts';
import { ProblemError } from '../../problem.ts';
import { actingFor, FORM_MAX_BYTES, type ConsoleContext, type ConsoleHandler, type ConsoleView } from '../console-context.ts';
import { finishRegistration, finishSignIn, MAX_CREDENTIAL_JSON, registrationOptions, relyingPartyFor, signInOptions, type RelyingParty } from '../passkey-ceremony.ts';
import { clearPendingCookie, pendingPerson, pendingSignIn, readPendingSecret, seeOtherWithCookies } from '../pending-sign-in.ts';
import { takeRate } from '../rate-limit.ts';
import { readForm, textField } from '../read-form.ts';
import { formatDateTime, h, notice, page, safeNext, seeOther, type Html } from '../render.ts';
import { landingFor, startSession } from './sign-in.ts';

function relyingParty(c: Context, cx: ConsoleContext, v: ConsoleView): RelyingParty | undefined {
  return relyingPartyFor(cx, c.req.header('host'), v.organisation);
}

function json(value: unknown): Response {
  return new Response(JSON.stringify(value), { headers: { 'content-type': 'application/json; charset=utf-8' } });
}

/** The data attributes passkey.js reads: where to ask for options, and what to say. */
function scriptTexts(v: ConsoleView, mode: 'register' | 'sign-in', options: string): Html {
  const t = v.t.passkeys;
  return h`data-passkey="${mode}" data-options="${options}" data-msg-working="${t.working}" data-msg-failed="${t.failed}" data-msg-unsupported="${t.unsupported}" data-msg-password="${t.wrongPassword}" data-msg-expired="${t.expired}" data-msg-rate="${v.t.errors.rateLimited(60)}"`;
}

const SCRIPT = h`<script src="/assets/passkey.js" defer></script>`;

// ---- Sign-in and passkeys (/me/security) ----

function passkeyRow(v: ConsoleView, p: Passkey, i: number): Html {
  const t = v.t.passkeys;
  return h`<tr><td>${p.name}</td><td>${formatDateTime(v, p.createdAt)}</td><td>${p.lastUsedAt ? formatDateTime(v, p.lastUsedAt) : t.never}</td>
<td><form class="actions" method="post" action="/me/passkeys/${encodeURIComponent(p.id)}/remove">
<label for="remove-password-${i}" class="visually-hidden">${t.removePassword(p.name)}</label><input id="remove-password-${i}" name="password" type="password" autocomplete="current-password" required placeholder="${t.password}">
<button type="submit" class="secondary" aria-label="${t.removeLabel(p.name)}">${t.remove}</button></form></td></tr>`;
}

export async function securityPage(c: Context, cx: ConsoleContext, v: ConsoleView, o: { message?: Html; status?: number } = {}): Promise<Response> {
  const t = v.t.passkeys;
  const person = v.person!;
  const list = await new PasskeyDirectory(cx.service.store).list(person.id);
  const rp = relyingParty(c, cx, v);
  const addForm = rp
    ? h`<form class="card stack" method="post" action="/me/passkeys" ${scriptTexts(v, 'register', '/me/passkeys/options')}>
<h2>${t.add}</h2>
<p>${t.addLead}</p>
<div><label for="passkey-name">${t.name}</label><input id="passkey-name" name="name" required maxlength="60" autocomplete="off" value="${t.defaultName}"></div>
<div><label for="passkey-password">${t.password}</label><input id="passkey-password" name="password" type="password" required autocomplete="current-password"></div>
<input type="hidden" name="credential" value="">
<p class="hint" data-passkey-status role="status" aria-live="polite"></p>
<div class="actions"><button type="submit">${t.addSubmit}</button></div>
</form>${SCRIPT}`
    : notice('warn', t.notHere(cx.origin.baseUrl.replace('//127.0.0.1:', '//localhost:')));
  const table = list.length
    ? h`<table><caption>${t.yours}</caption><thead><tr><th scope="col">${t.name}</th><th scope="col">${t.addedAt}</th><th scope="col">${t.lastUsed}</th><th scope="col">${t.remove}</th></tr></thead>
<tbody>${list.map((p, i) => passkeyRow(v, p, i))}</tbody></table>`
    : h`<p>${t.none}</p>`;
  const body = h`
${o.message ?? ''}
<p class="lead">${t.lead}</p>
<div class="card stack">${table}</div>
${addForm}`;
  return page(v, { title: t.title, body, ...(o.status ? { status: o.status } : {}) });
}

export const mySecurity: ConsoleHandler = async (c, cx, v) => {
  const t = v.t.passkeys;
  const message = c.req.query('added') !== undefined ? notice('good', t.added) : c.req.query('removed') !== undefined ? notice('good', t.removed) : undefined;
  return securityPage(c, cx, v, message ? { message } : {});
};

/** The password again, for adding or removing a passkey (rate-limited per person as a sign-in). */
async function passwordConfirmed(cx: ConsoleContext, person: Person, password: string): Promise<boolean> {
  await takeRate(cx, 'sign-in-account', person.email, cx.rates.signInPerAccount);
  return (await cx.people.checkPassword(person.email, password))?.id === person.id;
}

export const passkeyRegistrationOptions: ConsoleHandler = async (c, cx, v) => {
  const form = await readForm(c, FORM_MAX_BYTES);
  const rp = relyingParty(c, cx, v);
  if (!rp) throw new ProblemError(400, 'INVALID_ARGUMENT', 'Passkeys need the console opened by a host name.');
  if (!(await passwordConfirmed(cx, v.person!, textField(form, 'password', 4096, false)))) throw new ProblemError(401, 'UNAUTHENTICATED', 'The password is wrong.');
  return json(await registrationOptions(cx, rp, v.person!));
};

export const addPasskey: ConsoleHandler = async (c, cx, v) => {
  const t = v.t.passkeys;
  const form = await readForm(c, FORM_MAX_BYTES);
  const credential = textField(form, 'credential', MAX_CREDENTIAL_JSON, false);
  const name = textField(form, 'name', 200);
  const rp = relyingParty(c, cx, v);
  if (!rp) return securityPage(c, cx, v, { status: 400, message: notice('bad', t.refused) });
  let added;
  try {
    added = await finishRegistration(cx, actingFor(cx, v).store, rp, v.person!, credential, name || t.defaultName);
  } catch {
    // A name the directory refuses, or the limit of passkeys reached.
    return securityPage(c, cx, v, { status: 400, message: notice('bad', t.badName) });
  }
  if (!added) return securityPage(c, cx, v, { status: 400, message: notice('bad', credential ? t.refused : t.unsupported) });
  return seeOther('/me/security?added');
};

export const removePasskey: ConsoleHandler = async (c, cx, v) => {
  const t = v.t.passkeys;
  const form = await readForm(c, FORM_MAX_BYTES);
  if (!(await passwordConfirmed(cx, v.person!, textField(form, 'password', 4096, false)))) return securityPage(c, cx, v, { status: 401, message: notice('bad', t.wrongPassword) });
  const removed = await new PasskeyDirectory(actingFor(cx, v).store).remove(v.person!.id, v.person!.email, c.req.param('id') ?? '');
  if (!removed) throw new ProblemError(404, 'NOT_FOUND', 'No such passkey.');
  return seeOther('/me/security?removed');
};

// ---- The second step of sign-in (/sign-in/passkey) ----

function stepForm(v: ConsoleView, next: string, message?: Html): Html {
  const t = v.t.passkeys;
  return h`
${message ?? ''}
<form class="card stack" method="post" action="/sign-in/passkey" ${scriptTexts(v, 'sign-in', '/sign-in/passkey/options')}>
<p>${t.signInLead}</p>
<input type="hidden" name="next" value="${safeNext(next)}">
<input type="hidden" name="credential" value="">
<p class="hint" data-passkey-status role="status" aria-live="polite"></p>
<div class="actions"><button type="submit">${t.signInSubmit}</button><a class="button secondary" href="/sign-in">${t.cancel}</a></div>
</form>${SCRIPT}`;
}

export const passkeyStepPage: ConsoleHandler = async (c, cx, v) => {
  if (v.person) return seeOther(landingFor(v.person));
  if (!(await pendingPerson(cx, readPendingSecret(c)))) return seeOther('/sign-in', { 'set-cookie': clearPendingCookie() });
  return page(v, { title: v.t.passkeys.signInTitle, body: stepForm(v, c.req.query('next') ?? '/') });
};

async function pendingOrRefuse(c: Context, cx: ConsoleContext): Promise<Person> {
  const person = await pendingPerson(cx, readPendingSecret(c));
  if (!person) throw new ProblemError(400, 'INVALID_ARGUMENT', 'No sign-in is waiting for a passkey: sign in again.');
  return person;
}

export const passkeySignInOptions: ConsoleHandler = async (c, cx, v) => {
  await takeRate(cx, 'sign-in', v.client, cx.rates.signInPerAddress);
  const person = await pendingOrRefuse(c, cx);
  const rp = relyingParty(c, cx, v);
  if (!rp) throw new ProblemError(400, 'INVALID_ARGUMENT', 'Passkeys need the console opened by a host name.');
  return json(await signInOptions(cx, rp, person));
};

export const passkeySignInSubmit: ConsoleHandler = async (c, cx, v) => {
  const t = v.t.passkeys;
  const form = await readForm(c, FORM_MAX_BYTES);
  const next = textField(form, 'next', 600);
  const credential = textField(form, 'credential', MAX_CREDENTIAL_JSON, false);
  await takeRate(cx, 'sign-in', v.client, cx.rates.signInPerAddress);
  const secret = readPendingSecret(c);
  const pending = await pendingSignIn(cx, secret);
  if (!pending) return page(v, { title: t.signInTitle, status: 400, body: h`${notice('warn', t.expired)}<p><a href="/sign-in">${v.t.nav.signIn}</a></p>` });
  const { person, oidcIssuer } = pending;
  await takeRate(cx, 'sign-in-account', person.email, cx.rates.signInPerAccount);
  const rp = relyingParty(c, cx, v);
  if (!rp || !(await finishSignIn(cx, rp, person, credential)) || !(await cx.sessions.consumeLink(secret, 'second-factor'))) {
    await cx.service.store.actingAs('console').audit('console.sign-in.refused', person.email, 'passkey');
    return page(v, { title: t.signInTitle, status: 401, body: stepForm(v, next, notice('bad', credential ? t.signInFailed : t.unsupported)) });
  }
  const session = await startSession(cx, person, v.sessionSecret, oidcIssuer);
  await cx.service.store.actingAs(`console:${person.email}`).audit('console.sign-in', person.email, oidcIssuer ? `oidc ${oidcIssuer} and passkey` : 'password and passkey');
  return seeOtherWithCookies(next && next !== '/' ? safeNext(next) : landingFor(person), [session, clearPendingCookie()]);
};
