/**
 * A person lost every device that holds their passkeys: an administrator removes
 * them all from the person's page (/admin/people/:id), so the person signs in
 * with their password alone again and adds new passkeys on "Sign-in and
 * passkeys". Administrators only (route table), never on themselves (they remove
 * their own on /me/security, with their password), with a confirmation box; the
 * person's sessions end at once (a lost device may hold one), and the removal is
 * audited as `person.passkey.remove-all` under the administrator's name.
 */
import { PasskeyDirectory } from '../../../store/console-passkeys.ts';
import type { Person } from '../../../store/people-directory.ts';
import { ProblemError } from '../../problem.ts';
import { actingFor, FORM_MAX_BYTES, type ConsoleContext, type ConsoleHandler, type ConsoleView } from '../console-context.ts';
import { readForm, textField } from '../read-form.ts';
import { findPersonOr404 } from './act-on-person.ts';
import { h, seeOther, type Html } from '../render.ts';

/** The card on a person's page: how many passkeys, and (for an administrator, not on themselves) the removal form. */
export async function passkeysCard(cx: ConsoleContext, v: ConsoleView, p: Person): Promise<Html> {
  if (!v.person!.roles.includes('administrator')) return h``;
  const t = v.t.personPasskeys;
  const count = await new PasskeyDirectory(cx.service.store).count(p.id);
  const removable = count > 0 && p.id !== v.person!.id;
  return h`<div class="card stack" data-passkeys="${count}"><h2>${t.title}</h2><p>${t.count(count)}</p>
${removable ? h`<form class="stack" method="post" action="/admin/people/${p.id}/passkeys/remove"><p>${t.lead}</p>
<label class="choice"><input type="checkbox" name="confirm" value="yes" required><span>${t.confirm(p.email)}</span></label>
<div class="actions"><button class="danger" type="submit">${t.submit}</button></div></form>` : ''}</div>`;
}

export const removePersonPasskeys: ConsoleHandler = async (c, cx, v) => {
  const p = await findPersonOr404(cx, c.req.param('id') ?? '');
  if (p.id === v.person!.id) throw new ProblemError(403, 'FORBIDDEN', 'Remove your own passkeys on Sign-in and passkeys, with your password.');
  const form = await readForm(c, FORM_MAX_BYTES);
  if (textField(form, 'confirm', 10) !== 'yes') throw new ProblemError(400, 'INVALID_ARGUMENT', 'Tick the confirmation box to remove the passkeys.');
  await new PasskeyDirectory(actingFor(cx, v).store).removeAll(p.id, p.email);
  await cx.sessions.endAllFor(p.id);
  return seeOther(`/admin/people/${p.id}?done=passkeys-removed`);
};
