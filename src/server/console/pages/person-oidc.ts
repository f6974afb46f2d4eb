/**
 * A person's single sign-on link (store/oidc-subjects.ts): the provider account
 * (`sub`) their first single sign-on pinned, shown on their page to
 * administrators, who remove it when the account at the provider really changed
 * (re-created, merged): the person's next single sign-on pins the new account.
 * Administrators only (route table), with a confirmation box; the person's
 * sessions end at once; audited as `console.oidc.unpin` under the administrator's name.
 */
import { forgetOidcSubjects, listOidcSubjects } from '../../../store/oidc-subjects.ts';
import type { Person } from '../../../store/people-directory.ts';
import { ProblemError } from '../../problem.ts';
import { actingFor, FORM_MAX_BYTES, type ConsoleContext, type ConsoleHandler, type ConsoleView } from '../console-context.ts';
import { readForm, textField } from '../read-form.ts';
import { findPersonOr404 } from './act-on-person.ts';
import { formatDate, h, seeOther, type Html } from '../render.ts';

/** The card on a person's page, for an administrator when single sign-on is configured or a link exists. */
export async function oidcLinkCard(cx: ConsoleContext, v: ConsoleView, p: Person): Promise<Html> {
  if (!v.person!.roles.includes('administrator')) return h``;
  const links = await listOidcSubjects(cx.service.store, p.id);
  if (!cx.oidc && links.length === 0) return h``;
  const t = v.t.personOidc;
  return h`<div class="card stack" data-oidc-links="${links.length}"><h2>${t.title}</h2>
${links.length ? h`<ul>${links.map((l) => h`<li>${t.linked(l.issuer, formatDate(v, l.linkedAt))} <code>${l.subject}</code></li>`)}</ul>
<form class="stack" method="post" action="/admin/people/${p.id}/oidc/forget"><p>${t.lead}</p>
<label class="choice"><input type="checkbox" name="confirm" value="yes" required><span>${t.confirm(p.email)}</span></label>
<div class="actions"><button class="danger" type="submit">${t.submit}</button></div></form>` : h`<p>${t.none}</p>`}</div>`;
}

export const forgetPersonOidc: ConsoleHandler = async (c, cx, v) => {
  const p = await findPersonOr404(cx, c.req.param('id') ?? '');
  const form = await readForm(c, FORM_MAX_BYTES);
  if (textField(form, 'confirm', 10) !== 'yes') throw new ProblemError(400, 'INVALID_ARGUMENT', 'Tick the confirmation box to remove the single sign-on link.');
  await forgetOidcSubjects(actingFor(cx, v).store, p);
  await cx.sessions.endAllFor(p.id);
  return seeOther(`/admin/people/${p.id}?done=oidc-forgotten`);
};
