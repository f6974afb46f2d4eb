/**
 * Administration: people (add, invitation links, roles) and
 * settings (the dashboard: dashboard.ts; the audit log: audit.ts). Which role may open which page is declared once in
 * console-routes.ts and enforced before these handlers run; the rules inside a
 * page are enforced here, on the server:
 * - only an administrator gives or takes roles;
 * - an invitation link for a person who holds a role is made only by an
 *   administrator (it sets their password: a helpdesk link for an administrator
 *   would hand over the administrator's account);
 * - the last administrator keeps the role (PeopleDirectory.setRoles).
 */
import { requireStepUp } from '../step-up.ts';
import { mailInvitation } from './mail-link.ts';
import { isKakitomeError } from '../../../errors.ts';
import { CONSOLE_ROLES, parseRoles, type ConsoleRole, type Person } from '../../../store/people-directory.ts';
import { parseMailDomains } from '../../../store/organisation-settings.ts';
import { ProblemError } from '../../problem.ts';
import { actingFor, FORM_MAX_BYTES, type ConsoleContext, type ConsoleHandler, type ConsoleView } from '../console-context.ts';
import { readForm, textField, textFields } from '../read-form.ts';
import { h, notice, page, seeOther, type Html } from '../render.ts';

const INVITATION_TTL_MS = 7 * 86_400_000;

function isAdministrator(v: ConsoleView): boolean {
  return v.person?.roles.includes('administrator') ?? false;
}

function roleList(v: ConsoleView, roles: readonly ConsoleRole[]): string {
  return roles.length ? roles.map((r) => v.t.people.roleNames[r]).join(', ') : v.t.people.user;
}

function personRow(v: ConsoleView, p: Person): Html {
  const t = v.t.people;
  const status = p.disabledAt ? t.disabled : p.hasPassword ? t.active : t.invited;
  const mayInvite = isAdministrator(v) || p.roles.length === 0;
  const roles = isAdministrator(v)
    ? h`<form method="post" action="/admin/people/${p.id}/roles" class="stack"><fieldset><legend class="visually-hidden">${t.roles}: ${p.email}</legend>${CONSOLE_ROLES.map((r) => h`<label class="choice"><input type="checkbox" name="role" value="${r}"${p.roles.includes(r) ? h` checked` : ''}><span>${t.roleNames[r]}</span></label>`)}</fieldset><button class="secondary" type="submit">${t.saveRoles}</button></form>`
    : roleList(v, p.roles);
  return h`<tr><td><a href="/admin/people/${p.id}">${p.email}</a></td><td>${p.displayName}</td><td>${roles}</td><td>${status}</td>
<td>${mayInvite ? h`<form method="post" action="/admin/people/${p.id}/invitation"><button class="secondary" type="submit">${t.invite}</button></form>` : ''}</td></tr>`;
}

/** People on one page of the list (continued by the last address: keyset paging). */
export const PEOPLE_PER_PAGE = 100;

async function peoplePage(cx: ConsoleContext, v: ConsoleView, message?: Html, status = 200, c?: Parameters<ConsoleHandler>[0]): Promise<Response> {
  const t = v.t.people;
  const q = (c?.req.query('q') ?? '').slice(0, 320);
  const after = c?.req.query('after')?.slice(0, 320);
  const found = await cx.people.listPeople({ limit: PEOPLE_PER_PAGE + 1, search: q, ...(after !== undefined ? { after } : {}) });
  const people = found.slice(0, PEOPLE_PER_PAGE);
  const next = found.length > PEOPLE_PER_PAGE ? new URLSearchParams({ ...(q ? { q } : {}), after: people.at(-1)!.email }) : undefined;
  const mayAdd = v.person!.roles.some((r) => r === 'administrator' || r === 'registration-officer');
  const body = h`${message ?? ''}
<form class="card search" method="get" action="/admin/people" role="search">
<div><label for="people-q">${t.search}</label><input id="people-q" name="q" type="search" value="${q}" maxlength="320" aria-describedby="people-q-hint"><p class="hint" id="people-q-hint">${t.searchHint}</p></div>
<div class="actions"><button type="submit">${v.t.certificates.searchSubmit}</button></div>
</form>
<div class="table-wrap"><table><thead><tr><th scope="col">${t.email}</th><th scope="col">${t.name}</th><th scope="col">${t.roles}</th><th scope="col">${t.status}</th><th scope="col"><span class="visually-hidden">${t.invite}</span></th></tr></thead>
<tbody>${people.map((p) => personRow(v, p))}</tbody></table></div>
${next ? h`<p><a rel="next" href="/admin/people?${next.toString()}">${v.t.certificates.nextPage}</a></p>` : ''}
${mayAdd ? h`<p><a href="/admin/people-import">${v.t.peopleImport.link}</a></p>` : ''}
${mayAdd ? h`<form class="card stack" method="post" action="/admin/people">
<h2>${t.add}</h2>
<div><label for="new-email">${t.email}</label><input id="new-email" name="email" type="email" required autocomplete="off"></div>
<div><label for="new-name">${t.name}</label><input id="new-name" name="name" type="text" maxlength="200" autocomplete="off"></div>
${isAdministrator(v) ? h`<fieldset><legend>${t.roles}</legend>${CONSOLE_ROLES.map((r) => h`<label class="choice"><input type="checkbox" name="role" value="${r}"><span>${t.roleNames[r]}</span></label>`)}</fieldset>` : ''}
<div class="actions"><button type="submit">${t.addSubmit}</button></div>
</form>` : ''}`;
  return page(v, { title: t.title, body, status });
}

async function invitationNotice(cx: ConsoleContext, v: ConsoleView, person: Person): Promise<Html> {
  const { secret } = await cx.sessions.issueLink('invitation', INVITATION_TTL_MS, person.id);
  await actingFor(cx, v).store.audit('console.invitation', person.email);
  const link = `${cx.origin.baseUrl}/welcome/${secret}`;
  // With a mail relay the link goes to the person only; shown here when there is none or it refused.
  if (await mailInvitation(cx, person, link, v.lang, v.organisation, INVITATION_TTL_MS / 86_400_000)) return notice('good', v.t.mailLink.invitationMailed(person.email));
  return h`<div class="notice good" role="status"><p>${v.t.people.inviteReady(person.email)}</p><p class="secret" data-invitation-link>${link}</p></div>`;
}

export const listPeople: ConsoleHandler = async (c, cx, v) => peoplePage(cx, v, undefined, 200, c);

export const addPerson: ConsoleHandler = async (c, cx, v) => {
  const form = await readForm(c, FORM_MAX_BYTES);
  const roles = parseRoles(textFields(form, 'role'));
  if (roles.length && !isAdministrator(v)) throw new ProblemError(403, 'FORBIDDEN', 'Only an administrator gives roles.');
  // Making an administrator asks for a fresh proof of presence (step-up.ts).
  if (roles.includes('administrator')) await requireStepUp(cx, v, '/admin/people');
  let person: Person;
  try {
    person = await actingFor(cx, v).people.addPerson({ email: textField(form, 'email', 320), displayName: textField(form, 'name', 300), roles, language: v.lang });
  } catch (e) {
    if (isKakitomeError(e, 'INVALID_ARGUMENT')) return peoplePage(cx, v, notice('bad', e.message), 400);
    throw e;
  }
  return peoplePage(cx, v, await invitationNotice(cx, v, person));
};

export const invitePerson: ConsoleHandler = async (c, cx, v) => {
  const person = await cx.people.findPerson(c.req.param('id') ?? '');
  if (!person) throw new ProblemError(404, 'NOT_FOUND', 'No such person.');
  if (person.roles.length && !isAdministrator(v)) throw new ProblemError(403, 'FORBIDDEN', 'Only an administrator makes an invitation link for a person with a role.');
  // The link sets an administrator's password: whoever holds it is one (step-up.ts).
  if (person.roles.includes('administrator')) await requireStepUp(cx, v, '/admin/people');
  return peoplePage(cx, v, await invitationNotice(cx, v, person));
};

export const setPersonRoles: ConsoleHandler = async (c, cx, v) => {
  const person = await cx.people.findPerson(c.req.param('id') ?? '');
  if (!person) throw new ProblemError(404, 'NOT_FOUND', 'No such person.');
  const form = await readForm(c, FORM_MAX_BYTES);
  let updated: Person;
  try {
    const roles = parseRoles(textFields(form, 'role'));
    // Making an administrator asks for a fresh proof of presence (step-up.ts).
    if (roles.includes('administrator') && !person.roles.includes('administrator')) await requireStepUp(cx, v, '/admin/people');
    updated = await actingFor(cx, v).people.setRoles(person.id, roles);
  } catch (e) {
    if (isKakitomeError(e, 'INVALID_ARGUMENT')) return peoplePage(cx, v, notice('bad', e.message), 400);
    throw e;
  }
  // Rights taken away take effect at once: the person's sessions end.
  if (person.roles.some((r) => !updated.roles.includes(r))) await cx.sessions.endAllFor(person.id);
  // Rights given void the invitations made before: one a helpdesk or registration officer made for a
  // person without a role would otherwise set the password of the person who now holds the role.
  if (updated.roles.some((r) => !person.roles.includes(r))) await cx.sessions.endLinksFor(person.id, 'invitation');
  return peoplePage(cx, v, notice('good', v.t.people.rolesSaved(person.email)));
};

function settingsBody(v: ConsoleView, domains: string[], checkPage: 'public' | 'signed-in', message?: Html): Html {
  const t = v.t.settings;
  return h`${message ?? ''}
<form class="card stack" method="post" action="/admin/settings">
<div><label for="domains">${v.t.setup.domains}</label><textarea id="domains" name="domains" required aria-describedby="domains-hint">${domains.join('\n')}</textarea><p class="hint" id="domains-hint">${v.t.setup.domainsHint}</p></div>
<fieldset><legend>${t.checkPage}</legend>
<label class="choice"><input type="radio" name="check-page" value="public"${checkPage === 'public' ? h` checked` : ''}><span>${t.checkPublic}</span></label>
<label class="choice"><input type="radio" name="check-page" value="signed-in"${checkPage === 'signed-in' ? h` checked` : ''}><span>${t.checkSignedIn}</span></label>
</fieldset>
<div class="actions"><button type="submit">${t.submit}</button></div>
</form>`;
}

export const settingsPage: ConsoleHandler = async (_c, cx, v) => {
  return page(v, { title: v.t.settings.title, body: settingsBody(v, await cx.organisation.domains(), await cx.organisation.checkPageAccess()) });
};

export const saveSettings: ConsoleHandler = async (c, cx, v) => {
  const form = await readForm(c, FORM_MAX_BYTES);
  const checkPage = textField(form, 'check-page', 20) === 'signed-in' ? 'signed-in' : 'public';
  const text = textField(form, 'domains', 10_000);
  try {
    await actingFor(cx, v).organisation.setDomains(parseMailDomains(text));
  } catch (e) {
    if (isKakitomeError(e)) return page(v, { title: v.t.settings.title, status: 400, body: settingsBody(v, text.split(/\s+/), checkPage, notice('bad', e.message)) });
    throw e;
  }
  await actingFor(cx, v).organisation.setCheckPageAccess(checkPage);
  return page(v, { title: v.t.settings.title, body: settingsBody(v, await cx.organisation.domains(), checkPage, notice('good', v.t.settings.saved)) });
};
