/**
 * An invitation link (made by an administrator, registration officer or helpdesk
 * for a person): the person chooses a password and is signed in. The link works
 * once and ends every other session of the person (a password reset by helpdesk
 * locks out whoever knew the old one).
 */
import type { Person } from '../../../store/people-directory.ts';
import { FORM_MAX_BYTES, type ConsoleContext, type ConsoleHandler, type ConsoleView } from '../console-context.ts';
import { afterFirstStep } from '../pending-sign-in.ts';
import { takeRate } from '../rate-limit.ts';
import { readForm, textField } from '../read-form.ts';
import { h, notice, page, seeOther, type Html } from '../render.ts';
import { passwordProblem } from './password-rules.ts';
import { landingFor, startSession } from './sign-in.ts';

async function invitedPerson(cx: ConsoleContext, token: string): Promise<Person | undefined> {
  const link = await cx.sessions.checkLink(token, 'invitation');
  const person = link?.personId ? await cx.people.findPerson(link.personId) : undefined;
  return person && !person.disabledAt ? person : undefined;
}

function form(v: ConsoleView, token: string, person: Person, message?: Html): Html {
  const t = v.t.setup;
  return h`
<p class="lead">${v.t.welcome.lead(person.email)}</p>
${message ?? ''}
<form class="card stack" method="post" action="/welcome/${token}">
<input type="hidden" name="email" value="${person.email}" autocomplete="username">
<div><label for="password">${t.password}</label><input id="password" name="password" type="password" required minlength="8" autocomplete="new-password" aria-describedby="password-hint"><p class="hint" id="password-hint">${t.passwordHint}</p></div>
<div><label for="password2">${t.passwordAgain}</label><input id="password2" name="password2" type="password" required minlength="8" autocomplete="new-password"></div>
<div class="actions"><button type="submit">${v.t.welcome.submit}</button></div>
</form>`;
}

function invalid(v: ConsoleView): Response {
  return page(v, { title: v.t.welcome.title, status: 404, body: notice('warn', v.t.welcome.invalidLink) });
}

export const welcomePage: ConsoleHandler = async (c, cx, v) => {
  const token = c.req.param('token') ?? '';
  const person = await invitedPerson(cx, token);
  if (!person) return invalid(v);
  return page(v, { title: v.t.welcome.title, body: form(v, token, person) });
};

export const welcomeSubmit: ConsoleHandler = async (c, cx, v) => {
  const token = c.req.param('token') ?? '';
  await takeRate(cx, 'link', v.client, cx.rates.linkPerAddress);
  const person = await invitedPerson(cx, token);
  if (!person) return invalid(v);
  const f = await readForm(c, FORM_MAX_BYTES);
  const password = textField(f, 'password', 4096, false);
  const again = (message: string) => page(v, { title: v.t.welcome.title, status: 400, body: form(v, token, person, notice('bad', message)) });
  const problem = passwordProblem(v, password, textField(f, 'password2', 4096, false));
  if (problem) return again(problem);
  if (!(await cx.sessions.consumeLink(token, 'invitation'))) return invalid(v);
  await cx.people.setPassword(person.id, password);
  await cx.sessions.endAllFor(person.id);
  // The link replaces the password, not the passkeys: a person who has one proves it before being signed in.
  const second = await afterFirstStep(cx, person, '/');
  if (second) return second;
  const cookie = await startSession(cx, person, v.sessionSecret);
  return seeOther(landingFor(person), { 'set-cookie': cookie });
};
