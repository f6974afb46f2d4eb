/**
 * Sign-in by an e-mailed one-time link (when serve has --mail-relay and
 * --mail-from). The sign-in page asks for an address; the answer is the same page
 * whether the address has an account or not, and comes before anything is looked
 * up: the lookup, the link and the mail happen after the answer, so neither the
 * words nor the time tell who has an account. The link is 256 random bits, kept
 * as its SHA-256 bound to the person ('mail-sign-in', 15 minutes; a newer link
 * replaces it), never logged (the request log names the route pattern, not the
 * path). Opening it shows a button: mail scanners that fetch links use up
 * nothing; the POST does, once. A person with a passkey proves it next, as after
 * a password.
 */
import { isMailboxAddressInAnyForm } from '../../../x509/mailbox-address.ts';
import { normalizeAddress } from '../../../store/store.ts';
import type { Person } from '../../../store/people-directory.ts';
import { FORM_MAX_BYTES, type ConsoleContext, type ConsoleHandler, type ConsoleView } from '../console-context.ts';
import { sendConsoleMail } from '../console-mail.ts';
import { LANGUAGES } from '../messages/choose-language.ts';
import { afterFirstStep } from '../pending-sign-in.ts';
import { takeRate } from '../rate-limit.ts';
import { readForm, textField } from '../read-form.ts';
import { h, notice, page, seeOther, type Html } from '../render.ts';
import { landingFor, startSession } from './sign-in.ts';

export const MAIL_LINK_TTL_MS = 15 * 60_000;
/** Links asked for one address per minute (whoever asks). */
const LINKS_PER_ADDRESS = 3;

/** The form under the password form on the sign-in page, when the console can send mail. */
export function mailLinkForm(cx: ConsoleContext, v: ConsoleView): Html | '' {
  if (!cx.mail) return '';
  const t = v.t.mailLink;
  return h`<form class="card stack" method="post" action="/sign-in/link">
<h2>${t.heading}</h2>
<p>${t.lead}</p>
<div><label for="link-email">${v.t.signIn.email}</label><input id="link-email" name="email" type="email" autocomplete="username" required></div>
<div class="actions"><button type="submit" class="secondary">${t.submit}</button></div>
</form>`;
}

/** Issues a link for `person` and mails it in their language; the link itself goes nowhere else. */
async function mailSignInLink(cx: ConsoleContext, person: Person, fallback: ConsoleView['lang'], organisation: string): Promise<void> {
  const { secret } = await cx.sessions.issueLink('mail-sign-in', MAIL_LINK_TTL_MS, person.id);
  const t = LANGUAGES[person.language ?? fallback].mailLink;
  await sendConsoleMail(cx.mail!, { to: person.email, fromName: organisation, subject: t.subject(organisation), text: t.body(`${cx.origin.baseUrl}/sign-in/link/${secret}`, MAIL_LINK_TTL_MS / 60_000) });
}

export const requestMailLink: ConsoleHandler = async (c, cx, v) => {
  const t = v.t.mailLink;
  if (!cx.mail) return page(v, { title: t.heading, status: 404, body: notice('warn', t.unavailable) });
  const form = await readForm(c, FORM_MAX_BYTES);
  const email = textField(form, 'email', 320);
  await takeRate(cx, 'link', v.client, cx.rates.linkPerAddress);
  if (!isMailboxAddressInAnyForm(email)) return page(v, { title: t.heading, status: 400, body: notice('bad', t.notAnAddress) });
  await takeRate(cx, 'mail-link', normalizeAddress(email), LINKS_PER_ADDRESS);
  const lang = v.lang;
  const organisation = v.organisation;
  // After the answer: the time taken tells nothing. Failures are logged without the address's link.
  setImmediate(() => {
    void (async () => {
      const person = await cx.people.findPersonByEmail(email);
      if (!person || person.disabledAt) return;
      await mailSignInLink(cx, person, lang, organisation);
      await cx.service.store.actingAs('console').audit('console.sign-in-link.sent', person.email);
    })().catch((e: unknown) => cx.service.log({ time: new Date().toISOString(), level: 'error', msg: 'sign-in link not sent', error: e instanceof Error ? e.message : String(e) }));
  });
  return page(v, { title: t.heading, body: h`${notice('info', t.sent(email, MAIL_LINK_TTL_MS / 60_000))}<p><a href="/sign-in">${v.t.nav.signIn}</a></p>` });
};

async function linkedPerson(cx: ConsoleContext, token: string): Promise<Person | undefined> {
  const link = await cx.sessions.checkLink(token, 'mail-sign-in');
  const person = link?.personId ? await cx.people.findPerson(link.personId) : undefined;
  return person && !person.disabledAt ? person : undefined;
}

function invalid(v: ConsoleView): Response {
  return page(v, { title: v.t.mailLink.heading, status: 404, body: h`${notice('warn', v.t.mailLink.invalid)}<p><a href="/sign-in">${v.t.nav.signIn}</a></p>` });
}

export const mailLinkPage: ConsoleHandler = async (c, cx, v) => {
  const token = c.req.param('token') ?? '';
  const person = await linkedPerson(cx, token);
  if (!person) return invalid(v);
  const t = v.t.mailLink;
  return page(v, { title: t.heading, body: h`<form class="card stack" method="post" action="/sign-in/link/${token}"><p>${t.confirm(person.email)}</p><div class="actions"><button type="submit">${v.t.signIn.submit}</button></div></form>` });
};

export const mailLinkSubmit: ConsoleHandler = async (c, cx, v) => {
  const token = c.req.param('token') ?? '';
  await takeRate(cx, 'link', v.client, cx.rates.linkPerAddress);
  const person = await linkedPerson(cx, token);
  if (!person || !(await cx.sessions.consumeLink(token, 'mail-sign-in'))) return invalid(v);
  const second = await afterFirstStep(cx, person, '/');
  if (second) return second;
  const cookie = await startSession(cx, person, v.sessionSecret);
  await cx.service.store.actingAs(`console:${person.email}`).audit('console.sign-in', person.email, 'mail link');
  return seeOther(landingFor(person), { 'set-cookie': cookie });
};

/** Mails an invitation link; false when the console has no mail relay or the relay refused it (the caller shows the link instead). */
export async function mailInvitation(cx: ConsoleContext, person: Person, link: string, fallback: ConsoleView['lang'], organisation: string, days: number): Promise<boolean> {
  if (!cx.mail) return false;
  const t = LANGUAGES[person.language ?? fallback].mailLink;
  try {
    await sendConsoleMail(cx.mail, { to: person.email, fromName: organisation, subject: t.inviteSubject(organisation), text: t.inviteBody(organisation, link, days) });
    return true;
  } catch (e) {
    cx.service.log({ time: new Date().toISOString(), level: 'error', msg: 'invitation not mailed', error: e instanceof Error ? e.message : String(e) });
    return false;
  }
}
