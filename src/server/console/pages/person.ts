/**
 * One person, for the people pages' readers (administrators, registration
 * officers, helpdesk): their account and the mailbox certificates the CA issued
 * for them. Registration officers and administrators also act here, by the CA's
 * own functions (as `kakitome ca issue`, `ca renew`, `ca revoke`):
 *
 * - issue a certificate for them: the key is made on the server and sealed in the
 *   store, and never leaves it from here (the gateway signs and decrypts with it;
 *   the person gets a key for their own devices, once, on "My certificate"). No
 *   administrator ever holds someone else's private key or its password;
 * - renew one of their certificates (a new key; the old one stays for old mail);
 * - the leaver flow (ca/offboard-person.ts): sign-in disabled, their sessions
 *   ended, their certificates revoked with a BR reason, their keys kept.
 *
 * Rules enforced here: only an administrator acts on a person who holds a role
 * (a registration officer could otherwise lock out an administrator); nobody runs
 * the leaver flow on themselves; the last administrator cannot leave
 * (offboardPerson).
 */
import { issueMailboxCertificate, type MailboxKeyType } from '../../../ca/issue-mailbox-certificate.ts';
import { listMailboxCertificates } from '../../../ca/list-mailbox-certificates.ts';
import { offboardPerson } from '../../../ca/offboard-person.ts';
import { renewMailboxCertificate } from '../../../ca/renew-mailbox-certificate.ts';
import { isKakitomeError } from '../../../errors.ts';
import type { Person } from '../../../store/people-directory.ts';
import type { CertificateRecord } from '../../../store/store.ts';
import { ProblemError } from '../../problem.ts';
import { actingFor, FORM_MAX_BYTES, type ConsoleContext, type ConsoleHandler, type ConsoleView } from '../console-context.ts';
import { takeRate } from '../rate-limit.ts';
import { readForm, textField } from '../read-form.ts';
import { formatDate, h, notice, page, seeOther, type Html } from '../render.ts';
import { certificateState } from './my-certificate.ts';
import { passkeysCard } from './person-passkeys.ts';
import { oidcLinkCard } from './person-oidc.ts';
import { recoveryRequestCard } from './key-recovery.ts';
import { findPersonOr404, isRegistrar, mayActOn, refuseUnlessMayActOn } from './act-on-person.ts';

/** Reasons offered when a person leaves (S/MIME BR 7.2.2; "superseded" means a replacement, not a leaver). */
export const LEAVER_REASONS = ['affiliationChanged', 'cessationOfOperation', 'keyCompromise', 'unspecified'] as const;
type LeaverReason = (typeof LEAVER_REASONS)[number];
export const KEY_TYPES: readonly MailboxKeyType[] = ['rsa2048', 'rsa3072', 'p256', 'p384'];
/** Certificates an administrator or officer may issue or renew a minute (each makes a key on the server). */
export const ADMIN_ISSUE_PER_MINUTE = 30;

function certificateRow(v: ConsoleView, rec: CertificateRecord, now: Date, act: boolean): Html {
  const t = v.t.person;
  const s = certificateState(v, rec, now);
  const renewable = act && !rec.revokedAt;
  return h`<tr data-certificate="${rec.certificate.fingerprint256}"><td><span class="status ${s.tone}">${s.text}</span></td><td>${formatDate(v, rec.certificate.notAfter)}</td>
<td>${isRegistrar(v) ? h`<a href="/admin/certificates/${rec.id}">${rec.certificate.serialHex}</a>` : rec.certificate.serialHex}</td><td>${rec.hasPrivateKey ? t.keyKept : t.keyElsewhere}</td>
<td>${renewable ? h`<form method="post" action="/admin/certificates/${rec.id}/renew"><button class="secondary" type="submit">${t.renew}</button></form>` : ''}</td></tr>`;
}

function issueForm(v: ConsoleView, p: Person): Html {
  const t = v.t.person;
  return h`<form class="card stack" method="post" action="/admin/people/${p.id}/certificate">
<h2>${t.issue}</h2><p>${t.issueLead}</p>
<div><label for="key-type">${t.keyType}</label><select id="key-type" name="key-type">${KEY_TYPES.map((k) => h`<option value="${k}">${k}</option>`)}</select></div>
<div class="actions"><button type="submit">${t.issueSubmit}</button></div></form>`;
}

function leaverForm(v: ConsoleView, p: Person): Html {
  const t = v.t.person;
  return h`<form class="card stack" method="post" action="/admin/people/${p.id}/leave">
<h2>${t.leave}</h2><p>${t.leaveLead}</p>
<div><label for="leave-reason">${v.t.certificates.reason}</label><select id="leave-reason" name="reason">${LEAVER_REASONS.map((r) => h`<option value="${r}">${v.t.certificates.reasons[r]}</option>`)}</select></div>
<label class="choice"><input type="checkbox" name="confirm" value="yes" required><span>${t.leaveConfirm(p.email)}</span></label>
<div class="actions"><button class="danger" type="submit">${t.leaveSubmit}</button></div></form>`;
}

async function personPage(cx: ConsoleContext, v: ConsoleView, p: Person, message?: Html, status = 200): Promise<Response> {
  const t = v.t.person;
  const pt = v.t.people;
  const now = cx.service.store.now();
  const [certs, owned] = await Promise.all([listMailboxCertificates(cx.service.store, p.email), cx.organisation.ownsMailbox(p.email)]);
  const act = mayActOn(v, p);
  const state = p.disabledAt ? pt.disabled : p.hasPassword ? pt.active : pt.invited;
  const body = h`${message ?? ''}
<div class="card"><dl class="facts">
<dt>${pt.email}</dt><dd>${p.email}</dd>
<dt>${pt.name}</dt><dd>${p.displayName}</dd>
<dt>${pt.roles}</dt><dd>${p.roles.length ? p.roles.map((r) => pt.roleNames[r]).join(', ') : pt.user}</dd>
<dt>${pt.status}</dt><dd data-person-status>${state}${p.disabledAt ? h` (${formatDate(v, p.disabledAt)})` : ''}</dd>
</dl></div>
<h2>${t.certificates}</h2>
${certs.length ? h`<div class="table-wrap"><table><thead><tr><th scope="col">${pt.status}</th><th scope="col">${v.t.certificates.validUntil}</th><th scope="col">${v.t.certificates.serial}</th><th scope="col">${t.key}</th><th scope="col"><span class="visually-hidden">${t.renew}</span></th></tr></thead>
<tbody>${certs.map((r) => certificateRow(v, r, now, act))}</tbody></table></div>` : notice('info', t.noCertificates)}
${act && !p.disabledAt && owned ? issueForm(v, p) : ''}
${act && !owned ? notice('info', v.t.me.notInDomains(p.email, (await cx.organisation.domains()).join(', '))) : ''}
${await passkeysCard(cx, v, p)}
${await oidcLinkCard(cx, v, p)}
${act && p.id !== v.person!.id ? recoveryRequestCard(v, p) : ''}
${act && !p.disabledAt && p.id !== v.person!.id ? leaverForm(v, p) : ''}
<p><a href="/admin/people">${t.back}</a></p>`;
  return page(v, { title: t.title(p.displayName), body, status });
}

export const personDetail: ConsoleHandler = async (c, cx, v) => {
  const p = await findPersonOr404(cx, c.req.param('id') ?? '');
  const done = c.req.query('done');
  const message = done === 'issued' ? v.t.person.issued : done === 'passkeys-removed' ? v.t.personPasskeys.removed(p.email) : done === 'oidc-forgotten' ? v.t.personOidc.removed(p.email) : undefined;
  return personPage(cx, v, p, message ? notice('good', message) : undefined);
};

export const issueForPerson: ConsoleHandler = async (c, cx, v) => {
  const p = await findPersonOr404(cx, c.req.param('id') ?? '');
  refuseUnlessMayActOn(v, p);
  const form = await readForm(c, FORM_MAX_BYTES);
  const keyType = textField(form, 'key-type', 20) || 'rsa2048';
  if (!(KEY_TYPES as readonly string[]).includes(keyType)) return personPage(cx, v, p, notice('bad', v.t.errors.badForm), 400);
  if (p.disabledAt) return personPage(cx, v, p, notice('bad', v.t.person.disabledNoIssue), 409);
  if (!(await cx.organisation.ownsMailbox(p.email))) return personPage(cx, v, p, notice('bad', v.t.me.notInDomains(p.email, (await cx.organisation.domains()).join(', '))), 400);
  await takeRate(cx, 'admin-issue', v.person!.id, ADMIN_ISSUE_PER_MINUTE);
  try {
    await issueMailboxCertificate(actingFor(cx, v).store, { email: p.email, keyType: keyType as MailboxKeyType });
  } catch (e) {
    if (isKakitomeError(e, 'INVALID_ARGUMENT')) return personPage(cx, v, p, notice('bad', e.message), 400);
    throw e;
  }
  return seeOther(`/admin/people/${p.id}?done=issued`);
};

export const renewCertificate: ConsoleHandler = async (c, cx, v) => {
  const id = c.req.param('id') ?? '';
  const rec = id.length <= 100 ? await cx.service.store.findCertificateById(id) : undefined;
  if (!rec) throw new ProblemError(404, 'NOT_FOUND', 'No such certificate.');
  const owner = rec.emails[0] ? await cx.people.findPersonByEmail(rec.emails[0]) : undefined;
  if (owner) refuseUnlessMayActOn(v, owner);
  if (rec.revokedAt) throw new ProblemError(409, 'CONFLICT', 'A revoked certificate is not renewed: issue a new one.');
  await takeRate(cx, 'admin-issue', v.person!.id, ADMIN_ISSUE_PER_MINUTE);
  let renewedId: string;
  try {
    const out = await renewMailboxCertificate(actingFor(cx, v).store, rec.certificate.fingerprint256);
    renewedId = (await cx.service.store.findCertificateByFingerprint(out.certificate.fingerprint256))!.id;
  } catch (e) {
    if (isKakitomeError(e, 'INVALID_ARGUMENT') || isKakitomeError(e, 'UNSUPPORTED_ALG')) throw new ProblemError(400, 'INVALID_ARGUMENT', e.message);
    throw e;
  }
  return seeOther(`/admin/certificates/${renewedId}`);
};

export const personLeaves: ConsoleHandler = async (c, cx, v) => {
  const p = await findPersonOr404(cx, c.req.param('id') ?? '');
  refuseUnlessMayActOn(v, p);
  if (p.id === v.person!.id) throw new ProblemError(403, 'FORBIDDEN', 'Nobody runs the leaver flow on themselves.');
  const form = await readForm(c, FORM_MAX_BYTES);
  const reason = textField(form, 'reason', 40);
  if (!(LEAVER_REASONS as readonly string[]).includes(reason) || textField(form, 'confirm', 10) !== 'yes') return personPage(cx, v, p, notice('bad', v.t.certificates.badReason), 400);
  let out;
  try {
    out = await offboardPerson(actingFor(cx, v).store, p.id, reason as LeaverReason);
  } catch (e) {
    if (isKakitomeError(e, 'INVALID_ARGUMENT')) return personPage(cx, v, p, notice('bad', e.message), 400);
    throw e;
  }
  await cx.sessions.endAllFor(p.id);
  return personPage(cx, v, out.person, notice('good', v.t.person.left(p.email, out.revoked.length, out.keysKept)));
};
