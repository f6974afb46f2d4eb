/**
 * The gateway policy (administrators edit; auditors and helpdesk read) and the
 * `explain` view (administrators and helpdesk). Everything by the library the
 * CLI runs: PolicyDirectory (load, set, unset: `kakitome policy set|unset`, the
 * same checks by settingFromWords, the revision gateways reload from),
 * resolvePolicy with describeSource (`policy show --for`: each value and the
 * level that set it, global <- domain <- address), and explainDecision over a
 * gateway context without keys (`kakitome gateway explain`), with the
 * organisation's mail domains as the gateway's --domain.
 */
import { isKakitomeError } from '../../../errors.ts';
import { explainDecision, formatExplanation } from '../../../gateway/explain-decision.ts';
import { createGatewayContext } from '../../../gateway/gateway-context.ts';
import { describeLevel, levelRef, type LevelKind, type LevelRef } from '../../../policy/policy-levels.ts';
import { describeSource, resolveDomainPolicy, resolvePolicy } from '../../../policy/resolve-policy.ts';
import { SETTING_NAMES, SETTINGS, settingFromWords, requireSettingName } from '../../../policy/policy-settings.ts';
import { PolicyDirectory } from '../../../store/policy-directory.ts';
import { actingFor, FORM_MAX_BYTES, type ConsoleContext, type ConsoleHandler, type ConsoleView } from '../console-context.ts';
import { takeRate } from '../rate-limit.ts';
import { readForm, textField } from '../read-form.ts';
import { h, notice, page, type Html } from '../render.ts';

/** Explanations a person may ask for a minute (each builds a gateway context and validates certificates). */
export const EXPLAIN_PER_MINUTE = 30;
const KINDS: readonly LevelKind[] = ['global', 'domain', 'address'];

function isAdministrator(v: ConsoleView): boolean {
  return v.person?.roles.includes('administrator') ?? false;
}

function mayExplain(v: ConsoleView): boolean {
  return v.person?.roles.some((r) => r === 'administrator' || r === 'helpdesk') ?? false;
}

function resolvedTable(v: ConsoleView, owner: string, levels: Parameters<typeof resolvePolicy>[0]): Html {
  const t = v.t.policy;
  // A mail address, or a domain (its own level over global); empty: the global level.
  const r = owner.includes('@') || !owner ? resolvePolicy(levels, owner) : resolveDomainPolicy(levels, owner);
  return h`<div class="table-wrap"><table><caption>${owner ? t.inForce(r.owner) : t.inForceGlobal}</caption>
<thead><tr><th scope="col">${t.setting}</th><th scope="col">${t.value}</th><th scope="col">${t.setAt}</th><th scope="col">${t.scope}</th></tr></thead>
<tbody>${SETTING_NAMES.map((n) => h`<tr data-setting="${n}"><td><code>${n}</code><br><span class="hint" lang="en">${SETTINGS[n].help}</span></td><td><code>${JSON.stringify(r.settings[n])}</code></td><td data-source>${describeSource(r.sources[n])}</td><td>${t.scopes[SETTINGS[n].scope]}</td></tr>`)}</tbody></table></div>`;
}

function editForm(v: ConsoleView): Html {
  const t = v.t.policy;
  return h`<form class="card stack" method="post" action="/admin/policy">
<h2>${t.edit}</h2><p>${t.editLead}</p>
<div><label for="p-level">${t.level}</label><select id="p-level" name="level">${KINDS.map((k) => h`<option value="${k}">${t.levels[k]}</option>`)}</select></div>
<div><label for="p-name">${t.levelName}</label><input id="p-name" name="name" type="text" maxlength="320" aria-describedby="p-name-hint"><p class="hint" id="p-name-hint">${t.levelNameHint}</p></div>
<div><label for="p-setting">${t.setting}</label><select id="p-setting" name="setting">${SETTING_NAMES.map((n) => h`<option value="${n}">${n}</option>`)}</select></div>
<div><label for="p-value">${t.value}</label><textarea id="p-value" name="value" rows="3" aria-describedby="p-value-hint"></textarea><p class="hint" id="p-value-hint">${t.valueHint}</p></div>
<fieldset><legend>${t.action}</legend>
<label class="choice"><input type="radio" name="action" value="set" checked><span>${t.set}</span></label>
<label class="choice"><input type="radio" name="action" value="unset"><span>${t.unset}</span></label></fieldset>
<div class="actions"><button type="submit">${t.submit}</button></div></form>`;
}

function explainForm(v: ConsoleView, from = '', to = '', subject = ''): Html {
  const t = v.t.policy;
  return h`<form class="card stack" method="get" action="/admin/policy/explain">
<h2>${t.explain}</h2><p>${t.explainLead}</p>
<div><label for="x-from">${t.from}</label><input id="x-from" name="from" type="text" maxlength="320" value="${from}" required></div>
<div><label for="x-to">${t.to}</label><input id="x-to" name="to" type="text" maxlength="2000" value="${to}" required aria-describedby="x-to-hint"><p class="hint" id="x-to-hint">${t.toHint}</p></div>
<div><label for="x-subject">${t.subject}</label><input id="x-subject" name="subject" type="text" maxlength="998" value="${subject}"></div>
<div class="actions"><button type="submit">${t.explainSubmit}</button></div></form>`;
}

async function policyPage(cx: ConsoleContext, v: ConsoleView, owner: string, message?: Html, status = 200): Promise<Response> {
  const t = v.t.policy;
  const snap = await new PolicyDirectory(cx.service.store).load();
  const body = h`${message ?? ''}
<form class="card search" method="get" action="/admin/policy" role="search">
<div><label for="for">${t.for}</label><input id="for" name="for" type="text" maxlength="320" value="${owner}" aria-describedby="for-hint"><p class="hint" id="for-hint">${t.forHint}</p></div>
<div class="actions"><button type="submit">${t.show}</button></div></form>
${resolvedTable(v, owner, snap.levels)}
${isAdministrator(v) ? editForm(v) : ''}
${mayExplain(v) ? explainForm(v) : ''}`;
  return page(v, { title: t.title, body, status });
}

export const policyView: ConsoleHandler = async (c, cx, v) => {
  const owner = (c.req.query('for') ?? '').trim().toLowerCase().slice(0, 320);
  return policyPage(cx, v, owner);
};

export const policyEdit: ConsoleHandler = async (c, cx, v) => {
  const form = await readForm(c, FORM_MAX_BYTES);
  const kind = textField(form, 'level', 10) as LevelKind;
  const name = textField(form, 'name', 320);
  const setting = textField(form, 'setting', 60);
  const words = textField(form, 'value', 8000).split(/\r?\n/).map((w) => w.trim()).filter((w) => w !== '');
  const directory = new PolicyDirectory(actingFor(cx, v).store);
  let ref: LevelRef;
  try {
    if (!KINDS.includes(kind)) throw new Error('level');
    ref = levelRef(kind, name);
    const where = `policy set ${setting}${ref.kind === 'global' ? '' : ` (${describeLevel(ref)})`}`;
    if (textField(form, 'action', 10) === 'unset') {
      const removed = await directory.unset(ref, [requireSettingName(setting, 'policy unset')]);
      return policyPage(cx, v, ref.name, notice('good', v.t.policy.unsetDone(setting, describeLevel(ref), removed > 0)));
    }
    const value = settingFromWords(setting, words.length ? words : [''], where, ref.kind === 'global');
    await directory.set(ref, { [setting]: value });
    return policyPage(cx, v, ref.name, notice('good', v.t.policy.setDone(setting, describeLevel(ref), JSON.stringify(value))));
  } catch (e) {
    if (isKakitomeError(e, 'INVALID_ARGUMENT') || (e instanceof Error && e.message === 'level')) return policyPage(cx, v, '', notice('bad', isKakitomeError(e) ? e.message : v.t.errors.badForm), 400);
    throw e;
  }
};

export const policyExplain: ConsoleHandler = async (c, cx, v) => {
  const t = v.t.policy;
  const from = (c.req.query('from') ?? '').trim().slice(0, 320);
  const toText = (c.req.query('to') ?? '').slice(0, 2000);
  const subject = (c.req.query('subject') ?? '').slice(0, 998);
  const to = toText.split(/[\s,]+/).filter(Boolean).slice(0, 50);
  let result: Html;
  if (!from || !to.length) result = notice('bad', t.explainNeeds);
  else {
    await takeRate(cx, 'explain', v.person!.id, EXPLAIN_PER_MINUTE);
    const store = cx.service.store;
    try {
      const ctx = await createGatewayContext(store, await new PolicyDirectory(store).load(), 'explain', new Set(await cx.organisation.domains()), { openKeys: false });
      const e = await explainDecision(ctx, { from, to, ...(subject ? { subject } : {}) });
      result = h`<div class="card" data-explanation>${formatExplanation(e, t.explainWords).map((l) => h`<p>${l}</p>`)}</div>`;
    } catch (e) {
      if (!isKakitomeError(e)) throw e;
      result = notice('bad', e.message);
    }
  }
  return page(v, { title: t.explain, body: h`${explainForm(v, from, toText, subject)}${result}<p><a href="/admin/policy">${t.back}</a></p>` });
};
