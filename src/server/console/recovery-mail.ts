/**
 * Key recovery by mail (console-mail.ts sends): when a recovery is requested, the
 * administrators who may approve it (every enabled administrator but the one who
 * asked and the person whose keys they are) are told; when it is approved, its
 * recipient is told the keys are ready on "Recovered keys". Each mail is in its
 * reader's language (their setting, else the page's), and names the request's
 * facts, never a key or a password.
 *
 * Mail comes after the step is committed and decides nothing: a relay that refuses
 * or cannot be reached loses no request and changes no approval (the recovery
 * waits on /admin/recoveries as without a relay); the failure is logged and
 * the page says who was not told, so the person acting tells them. Console mail is
 * not retried.
 */
import type { KeyRecovery } from '../../store/key-recoveries.ts';
import type { Person } from '../../store/people-directory.ts';
import { sendConsoleMail } from './console-mail.ts';
import type { ConsoleContext, ConsoleView } from './console-context.ts';
import { LANGUAGES } from './messages/choose-language.ts';
import type { Messages } from './messages/en.ts';

/** Who could not be mailed (empty: everyone was, or the console has no mail relay). */
export type Unmailed = string[];

/** A time in mail text: the reader's clock is unknown, so UTC, to the minute. */
const utc = (d: Date) => `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;

async function mailEach(cx: ConsoleContext, v: ConsoleView, people: readonly Person[], compose: (t: Messages['recoveryMail']) => { subject: string; text: string }): Promise<Unmailed> {
  const mail = cx.mail;
  if (!mail || people.length === 0) return [];
  const unmailed: Unmailed = [];
  for (const p of people) {
    try {
      await sendConsoleMail(mail, { to: p.email, fromName: v.organisation, ...compose(LANGUAGES[p.language ?? v.lang].recoveryMail) });
    } catch (e) {
      cx.service.log({ time: new Date().toISOString(), level: 'error', msg: 'key recovery mail not sent', to: p.email, error: e instanceof Error ? e.message : String(e) });
      unmailed.push(p.email);
    }
  }
  return unmailed;
}

/** Tells the administrators who may approve `k` that it waits for them. */
export async function mailRecoveryRequested(cx: ConsoleContext, v: ConsoleView, k: KeyRecovery): Promise<Unmailed> {
  const approvers = (await cx.people.listAdministrators()).filter((p) => p.id !== k.requestedBy && p.id !== k.personId);
  const link = `${cx.origin.baseUrl}/admin/recoveries`;
  const to = k.recipient === 'requester' ? k.requestedByEmail : k.email;
  return mailEach(cx, v, approvers, (t) => ({ subject: t.requestedSubject(v.organisation, k.email), text: t.requestedBody(k.email, k.requestedByEmail, to, k.reason, link, utc(k.expiresAt)) }));
}

/** Tells the recipient of `k` (approved) that the keys wait for them, once. */
export async function mailRecoveryReady(cx: ConsoleContext, v: ConsoleView, k: KeyRecovery): Promise<Unmailed> {
  const recipient = await cx.people.findPerson(k.recipient === 'requester' ? k.requestedBy : k.personId);
  if (!recipient || recipient.disabledAt) return [];
  const link = `${cx.origin.baseUrl}/me/recovered`;
  return mailEach(cx, v, [recipient], (t) => ({ subject: t.readySubject(v.organisation, k.email), text: t.readyBody(k.email, k.approvedByEmail ?? '', link, utc(k.expiresAt)) }));
}
