/**
 * Key recovery with two-person approval (store/key-recoveries.ts holds the
 * rules): on a person's page an administrator or registration officer asks for
 * the person's decryption keys, with a reason and who receives them (themselves
 * or the person); on "Key recovery" (/admin/recoveries) a second, different
 * administrator approves or refuses; the recipient then receives the keys once,
 * on "Recovered keys" (/me/recovered), as one PKCS#12 file under a password shown
 * once (the same hand-over as "keys for my old mail"). Every step is audited.
 */
import { KakitomeError, isKakitomeError } from '../../../errors.ts';
import { MAX_PKCS12_IDENTITIES } from '../../../keys/export-pkcs12.ts';
import { KeyRecoveries, type KeyRecovery, type RecoveryActor, type RecoveryRecipient } from '../../../store/key-recoveries.ts';
import type { Person } from '../../../store/people-directory.ts';
import { actingFor, FORM_MAX_BYTES, type ConsoleContext, type ConsoleHandler, type ConsoleView } from '../console-context.ts';
import { handoverCard, handOverKeys } from '../hand-over-identity.ts';
import { takeRate } from '../rate-limit.ts';
import { readForm, textField } from '../read-form.ts';
import { formatDateTime, h, notice, page, seeOther, type Html } from '../render.ts';
import { findPersonOr404, refuseUnlessMayActOn } from './act-on-person.ts';
import { decryptionKeyHistory } from './my-keys.ts';
import { mailRecoveryReady, mailRecoveryRequested, type Unmailed } from '../recovery-mail.ts';
import { profileChoice, readProfile } from './my-renewal.ts';

/** Recovery requests and steps a minute per staff member. */
export const RECOVERY_STEPS_PER_MINUTE = 20;

const actor = (v: ConsoleView): RecoveryActor => ({ id: v.person!.id, email: v.person!.email, roles: v.person!.roles });

/** The request form on a person's page (the caller shows it only to whom may act on them, never on themselves). */
export function recoveryRequestCard(v: ConsoleView, p: Person): Html {
  const t = v.t.recovery;
  return h`<form class="card stack" method="post" action="/admin/people/${p.id}/recovery">
<h2>${t.request}</h2><p>${t.requestLead}</p>
<div><label for="recovery-reason">${t.reason}</label><textarea id="recovery-reason" name="reason" required maxlength="500"></textarea></div>
<div><label for="recovery-recipient">${t.recipient}</label><select id="recovery-recipient" name="recipient">
<option value="requester">${t.toRequester}</option><option value="person">${t.toPerson(p.email)}</option></select></div>
<div class="actions"><button type="submit">${t.requestSubmit}</button></div></form>`;
}

/** A refusal of the store, in the reader's words, with its status. */
function refusal(v: ConsoleView, e: unknown): { status: number; text: string } | undefined {
  const t = v.t.recovery;
  if (isKakitomeError(e, 'FORBIDDEN')) return { status: 403, text: t.notYours };
  if (isKakitomeError(e, 'CONFLICT')) return { status: 409, text: t.notOpen };
  if (isKakitomeError(e, 'NOT_FOUND')) return { status: 404, text: v.t.errors.notFound };
  if (isKakitomeError(e, 'LIMIT') || isKakitomeError(e, 'INVALID_ARGUMENT')) return { status: 400, text: t.badRequest };
  return undefined;
}

/**
 * Runs a step; then, when it is done, its mail (`tell`, recovery-mail.ts): a mail
 * that could not be sent is said on the page, the step stands.
 */
async function stepOrPage(cx: ConsoleContext, v: ConsoleView, step: () => Promise<KeyRecovery>, done: string, tell?: (k: KeyRecovery) => Promise<Unmailed>): Promise<Response> {
  await takeRate(cx, 'key-recovery', v.person!.id, RECOVERY_STEPS_PER_MINUTE);
  let k: KeyRecovery;
  try {
    k = await step();
  } catch (e) {
    const r = refusal(v, e);
    if (!r) throw e;
    return recoveriesPage(cx, v, notice('bad', r.text), r.status);
  }
  const unmailed = tell ? await tell(k) : [];
  if (unmailed.length) return recoveriesPage(cx, v, h`${notice('good', doneText(v, done) ?? '')}${notice('warn', v.t.recovery.unmailed(unmailed.join(', ')))}`);
  return seeOther(`/admin/recoveries?done=${done}`);
}

export const requestRecovery: ConsoleHandler = async (c, cx, v) => {
  const p = await findPersonOr404(cx, c.req.param('id') ?? '');
  refuseUnlessMayActOn(v, p);
  const form = await readForm(c, FORM_MAX_BYTES);
  const recipient = textField(form, 'recipient', 20) as RecoveryRecipient;
  const reason = textField(form, 'reason', 2000);
  return stepOrPage(cx, v, async () => {
    if (!(await decryptionKeyHistory(cx.service.store, p.email)).length) throw new KakitomeError('INVALID_ARGUMENT', 'The store keeps no decryption key for this person.');
    return new KeyRecoveries(actingFor(cx, v).store).request({ actor: actor(v), person: p, reason, recipient });
  }, 'requested', (k) => mailRecoveryRequested(cx, v, k));
};

export const approveRecovery: ConsoleHandler = async (c, cx, v) =>
  stepOrPage(cx, v, () => new KeyRecoveries(actingFor(cx, v).store).approve(c.req.param('id') ?? '', actor(v)), 'approved', (k) => mailRecoveryReady(cx, v, k));

export const refuseRecovery: ConsoleHandler = async (c, cx, v) =>
  stepOrPage(cx, v, () => new KeyRecoveries(actingFor(cx, v).store).refuse(c.req.param('id') ?? '', actor(v)), 'refused');

function stateText(v: ConsoleView, k: KeyRecovery): Html {
  const t = v.t.recovery;
  const tone = k.state === 'approved' ? 'good' : k.state === 'requested' ? 'warn' : 'bad';
  return h`<span class="status ${tone}" data-recovery-state="${k.state}">${t.states[k.state]}</span>`;
}

function actions(v: ConsoleView, k: KeyRecovery): Html {
  const t = v.t.recovery;
  const me = v.person!;
  const admin = me.roles.includes('administrator');
  const out: Html[] = [];
  if (k.state === 'requested' && admin && me.id !== k.requestedBy && me.id !== k.personId) out.push(h`<form method="post" action="/admin/recoveries/${k.id}/approve"><button type="submit">${t.approve}</button></form>`);
  if ((k.state === 'requested' || k.state === 'approved') && (admin || me.id === k.requestedBy)) out.push(h`<form method="post" action="/admin/recoveries/${k.id}/refuse"><button class="secondary" type="submit">${t.refuse}</button></form>`);
  if (k.state === 'approved' && k.recipient === 'requester' && me.id === k.requestedBy) out.push(h`<a class="button" href="/me/recovered">${t.receive}</a>`);
  return h`<div class="actions">${out}</div>`;
}

async function recoveriesPage(cx: ConsoleContext, v: ConsoleView, message?: Html, status = 200): Promise<Response> {
  const t = v.t.recovery;
  const list = await new KeyRecoveries(cx.service.store).list();
  const row = (k: KeyRecovery) => h`<tr data-recovery="${k.id}"><td>${k.email}</td><td>${k.requestedByEmail}<br><span class="hint">${formatDateTime(v, k.requestedAt)}</span></td>
<td>${k.reason}</td><td>${k.recipient === 'requester' ? k.requestedByEmail : k.email}</td><td>${stateText(v, k)}${k.approvedByEmail ? h`<br><span class="hint">${t.approvedBy(k.approvedByEmail)}</span>` : ''}</td>
<td>${k.state === 'requested' || k.state === 'approved' ? formatDateTime(v, k.expiresAt) : ''}</td><td>${actions(v, k)}</td></tr>`;
  const body = h`${message ?? ''}<p class="lead">${t.lead}</p>
${list.length ? h`<div class="table-wrap"><table><thead><tr><th scope="col">${t.person}</th><th scope="col">${t.requestedBy}</th><th scope="col">${t.reason}</th><th scope="col">${t.recipient}</th><th scope="col">${t.state}</th><th scope="col">${t.expires}</th><th scope="col"><span class="visually-hidden">${t.decision}</span></th></tr></thead>
<tbody>${list.map(row)}</tbody></table></div>` : notice('info', t.none)}`;
  return page(v, { title: t.title, body, status });
}

/** The words for a step done (the `done` query), if it names one. */
function doneText(v: ConsoleView, done: string | undefined): string | undefined {
  const t = v.t.recovery;
  return done === 'requested' ? t.requested : done === 'approved' ? t.approved : done === 'refused' ? t.refused : undefined;
}

export const recoveriesView: ConsoleHandler = async (c, cx, v) => {
  const words = doneText(v, c.req.query('done'));
  return recoveriesPage(cx, v, words ? notice('good', words) : undefined);
};

// ---- The recipient's side (/me/recovered): any signed-in person; the store checks they are the recipient ----

export const recoveredView: ConsoleHandler = async (_c, cx, v) => {
  const t = v.t.recovery;
  const waiting = await new KeyRecoveries(cx.service.store).waitingFor(v.person!.id);
  const body = waiting.length
    ? h`<p class="lead">${t.receiveLead}</p>${waiting.map((k) => h`<form class="card stack" method="post" action="/me/recovered/${k.id}">
<p>${t.waiting(k.email, k.requestedByEmail, k.approvedByEmail ?? '')}</p><p class="hint">${t.reason}: ${k.reason}</p>
${profileChoice(v, `recovered-${k.id}`)}
<div class="actions"><button type="submit">${t.receiveSubmit}</button></div></form>`)}`
    : notice('info', t.nothingWaiting);
  return page(v, { title: t.receiveTitle, body });
};

export const receiveRecovered: ConsoleHandler = async (c, cx, v) => {
  const t = v.t.recovery;
  await takeRate(cx, 'key-recovery', v.person!.id, RECOVERY_STEPS_PER_MINUTE);
  const profile = readProfile(await readForm(c, FORM_MAX_BYTES));
  const { store } = actingFor(cx, v);
  const recoveries = new KeyRecoveries(store);
  let k: KeyRecovery;
  try {
    k = await recoveries.claimHandover(c.req.param('id') ?? '', actor(v));
  } catch (e) {
    const r = refusal(v, e);
    if (!r) throw e;
    return page(v, { title: t.receiveTitle, status: r.status, body: h`${notice('bad', r.text)}<p><a href="/me/recovered">${t.receiveTitle}</a></p>` });
  }
  // One PKCS#12 file carries at most MAX_PKCS12_IDENTITIES keys: the newest go, and the page says how many were left.
  const history = await decryptionKeyHistory(store, k.email);
  const keys = history.slice(0, MAX_PKCS12_IDENTITIES);
  if (!keys.length) return page(v, { title: t.receiveTitle, status: 404, body: notice('warn', v.t.mine.oldMailNone) });
  const handed = await handOverKeys(cx, v, store, {
    keys, profile, owner: k.email, fileStem: `${k.email}-recovered`, mobileconfig: false,
    reason: `key recovery ${k.id} for ${k.email}: requested by ${k.requestedByEmail}, approved by ${k.approvedByEmail ?? ''}, handed over once to ${v.person!.email}`,
  });
  const body = h`${notice('good', t.received(keys.length, k.email, history.length))}${handoverCard(v, handed, t.download)}<p><a href="/me">${v.t.me.back}</a></p>`;
  return page(v, { title: t.receiveTitle, body });
};
