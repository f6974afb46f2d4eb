/**
 * The audit log, for administrators and auditors: filtered by who, what and
 * when, newest first, paged by a cursor (store/list-audit-page.ts), and exported
 * as CSV with the same filter (RFC 4180; at most EXPORT_MAX_ROWS rows). A cell
 * that a spreadsheet would run as a formula (=, +, -, @, tab, CR) is written with
 * a leading apostrophe: the log holds text others chose (addresses, subjects).
 */
import { isKakitomeError } from '../../../errors.ts';
import { listAuditPage, type AuditQuery } from '../../../store/list-audit-page.ts';
import type { AuditEntry } from '../../../store/store.ts';
import { ProblemError } from '../../problem.ts';
import type { ConsoleHandler, ConsoleView } from '../console-context.ts';
import { formatDateTime, h, notice, page } from '../render.ts';
import type { Context } from 'hono';

const EXPORT_MAX_ROWS = 100_000;
const FILTERS = ['actor', 'action', 'from', 'to'] as const;

function queryOf(c: Context): AuditQuery {
  const q: AuditQuery = {};
  for (const k of FILTERS) {
    const v = (c.req.query(k) ?? '').trim();
    if (v) q[k] = v.slice(0, 320);
  }
  const after = c.req.query('after');
  if (after) q.after = after;
  return q;
}

async function listOrRefuse(q: AuditQuery, store: Parameters<typeof listAuditPage>[0]) {
  try {
    return await listAuditPage(store, q);
  } catch (e) {
    if (isKakitomeError(e, 'INVALID_ARGUMENT')) throw new ProblemError(400, 'INVALID_ARGUMENT', e.message);
    throw e;
  }
}

function link(path: string, q: AuditQuery, after?: string): string {
  const p = new URLSearchParams();
  for (const k of FILTERS) if (q[k]) p.set(k, q[k]);
  if (after) p.set('after', after);
  const s = p.toString();
  return s ? `${path}?${s}` : path;
}

function filterForm(v: ConsoleView, q: AuditQuery) {
  const t = v.t.audit;
  return h`<form class="card filters" method="get" action="/admin/audit" role="search">
<div><label for="f-actor">${t.actor}</label><input id="f-actor" name="actor" type="text" value="${q.actor ?? ''}" maxlength="320" aria-describedby="f-actor-hint"><p class="hint" id="f-actor-hint">${t.actorHint}</p></div>
<div><label for="f-action">${t.action}</label><input id="f-action" name="action" type="text" value="${q.action ?? ''}" maxlength="100" aria-describedby="f-action-hint"><p class="hint" id="f-action-hint">${t.actionHint}</p></div>
<div><label for="f-from">${t.from}</label><input id="f-from" name="from" type="date" value="${q.from ?? ''}"></div>
<div><label for="f-to">${t.to}</label><input id="f-to" name="to" type="date" value="${q.to ?? ''}"></div>
<div class="actions"><button type="submit">${t.filter}</button></div>
</form>`;
}

export const auditPage: ConsoleHandler = async (c, cx, v) => {
  const t = v.t.audit;
  const q = queryOf(c);
  const result = await listOrRefuse(q, cx.service.store);
  const body = h`<p>${t.lead}</p>
${filterForm(v, q)}
<p><a class="button secondary" href="${link('/admin/audit/export', q)}" download>${t.export}</a></p>
${result.entries.length ? h`<div class="table-wrap"><table><thead><tr><th scope="col">${t.at}</th><th scope="col">${t.actor}</th><th scope="col">${t.action}</th><th scope="col">${t.object}</th><th scope="col">${t.detail}</th></tr></thead>
<tbody>${result.entries.map((e) => h`<tr data-audit="${e.id}"><td>${formatDateTime(v, e.at)}</td><td>${e.actor}</td><td>${e.action}</td><td class="wrap">${e.object ?? ''}</td><td class="wrap">${e.detail ?? ''}</td></tr>`)}</tbody></table></div>` : notice('info', t.none)}
${result.next ? h`<p><a rel="next" href="${link('/admin/audit', q, result.next)}">${t.nextPage}</a></p>` : ''}`;
  return page(v, { title: t.title, body });
};

/** One CSV cell (RFC 4180), defused for spreadsheets. */
export function csvCell(value: string): string {
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe;
}

function csvRow(e: AuditEntry): string {
  return [e.at.toISOString(), e.actor, e.action, e.object ?? '', e.detail ?? ''].map(csvCell).join(',');
}

export const exportAudit: ConsoleHandler = async (c, cx, v) => {
  const q = queryOf(c);
  delete q.after;
  const lines = ['time,actor,action,object,detail'];
  let after: string | undefined;
  do {
    const result = await listOrRefuse({ ...q, ...(after ? { after } : {}), limit: 1000 }, cx.service.store);
    for (const e of result.entries) lines.push(csvRow(e));
    after = result.next;
  } while (after && lines.length <= EXPORT_MAX_ROWS);
  await cx.service.store.actingAs(`console:${v.person!.email}`).audit('console.audit.export', undefined, `${lines.length - 1} rows`);
  return new Response(`${lines.slice(0, EXPORT_MAX_ROWS + 1).join('\r\n')}\r\n`, { headers: { 'content-type': 'text/csv; charset=utf-8', 'content-disposition': 'attachment; filename="kakitome-audit.csv"' } });
};
