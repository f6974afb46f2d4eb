/**
 * Importing people (administrators and registration officers): from a CSV file
 * or from the company directory (--ldap-url / --ldap-base). Two steps, by the
 * library's plan (store/plan-people-import.ts): a preview that writes nothing,
 * row by row (will be added, has an account already, or the error), then the
 * import of the rows shown as "will be added". The CSV travels back with the
 * confirmation (a multipart form) and is checked again in full; the directory is
 * asked again. Re-importing changes nothing; nobody gets a role this way.
 */
import { isKakitomeError } from '../../../errors.ts';
import { listLdapPeople } from '../../../store/list-ldap-people.ts';
import { applyPeopleImport, IMPORT_MAX_BYTES, IMPORT_MAX_ROWS, planPeopleImport, readPeopleCsv, type ImportRecord, type ImportRow } from '../../../store/plan-people-import.ts';
import { actingFor, type ConsoleContext, type ConsoleHandler, type ConsoleView } from '../console-context.ts';
import { takeRate } from '../rate-limit.ts';
import { fileField, readForm, textField } from '../read-form.ts';
import { formatBytes, h, notice, page, type Html } from '../render.ts';

/** Imports (previews included) a person may run a minute. */
export const IMPORTS_PER_MINUTE = 20;
/** The form: the file or the pasted text, or both ways at most once, and a little more. */
const IMPORT_FORM_MAX_BYTES = IMPORT_MAX_BYTES + 64 * 1024;

function forms(cx: ConsoleContext, v: ConsoleView): Html {
  const t = v.t.peopleImport;
  return h`<form class="card stack" method="post" action="/admin/people-import" enctype="multipart/form-data">
<h2>${t.csvTitle}</h2><p>${t.csvLead(formatBytes(IMPORT_MAX_BYTES), IMPORT_MAX_ROWS)}</p>
<pre class="card">email,name,language
tanaka@example.co.jp,田中 花子,ja
smith@example.co.jp,John Smith,en</pre>
<input type="hidden" name="source" value="csv"><input type="hidden" name="step" value="preview">
<div><label for="csv-file">${t.file}</label><input id="csv-file" name="csv-file" type="file" accept=".csv,text/csv"></div>
<div><label for="csv-text">${t.paste}</label><textarea id="csv-text" name="csv" rows="6"></textarea></div>
<div class="actions"><button type="submit">${t.preview}</button></div></form>
${cx.ldap ? h`<form class="card stack" method="post" action="/admin/people-import" enctype="multipart/form-data">
<h2>${t.ldapTitle}</h2><p>${t.ldapLead(cx.ldap.url, cx.ldap.baseDn)}</p>
<input type="hidden" name="source" value="ldap"><input type="hidden" name="step" value="preview">
<div class="actions"><button type="submit">${t.preview}</button></div></form>` : notice('info', t.noLdap)}`;
}

function statusText(v: ConsoleView, r: ImportRow): string {
  const t = v.t.peopleImport;
  return r.status === 'error' ? t.problems[r.problem!] : t.statuses[r.status];
}

function rowsTable(v: ConsoleView, rows: readonly ImportRow[]): Html {
  const t = v.t.peopleImport;
  return h`<div class="table-wrap"><table><thead><tr><th scope="col">${t.origin}</th><th scope="col">${v.t.people.email}</th><th scope="col">${v.t.people.name}</th><th scope="col">${t.language}</th><th scope="col">${v.t.people.status}</th></tr></thead>
<tbody>${rows.map((r) => h`<tr data-import-row="${r.status}"><td>${r.origin}</td><td>${r.email}</td><td>${r.name}</td><td>${r.language}</td><td><span class="status ${r.status === 'error' ? 'bad' : r.status === 'add' ? 'good' : 'info'}">${statusText(v, r)}</span></td></tr>`)}</tbody></table></div>`;
}

function summary(v: ConsoleView, rows: readonly ImportRow[], done: boolean): Html {
  const n = (s: ImportRow['status']) => rows.filter((r) => r.status === s).length;
  return notice(n('error') ? 'warn' : 'good', (done ? v.t.peopleImport.doneSummary : v.t.peopleImport.previewSummary)(n('add'), n('unchanged'), n('error')));
}

function confirmForm(v: ConsoleView, source: 'csv' | 'ldap', csv: string): Html {
  return h`<form class="card stack" method="post" action="/admin/people-import" enctype="multipart/form-data">
<input type="hidden" name="source" value="${source}"><input type="hidden" name="step" value="import">
${source === 'csv' ? h`<input type="hidden" name="csv" value="${csv}">` : ''}
<div class="actions"><button type="submit">${v.t.peopleImport.importSubmit}</button> <a href="/admin/people-import">${v.t.peopleImport.cancel}</a></div></form>`;
}

function importPage(cx: ConsoleContext, v: ConsoleView, body: Html, status = 200): Response {
  return page(v, { title: v.t.peopleImport.title, body, status });
}

export const peopleImportPage: ConsoleHandler = async (_c, cx, v) => importPage(cx, v, forms(cx, v));

export const peopleImportSubmit: ConsoleHandler = async (c, cx, v) => {
  await takeRate(cx, 'people-import', v.person!.id, IMPORTS_PER_MINUTE);
  const form = await readForm(c, IMPORT_FORM_MAX_BYTES);
  const source = textField(form, 'source', 10) === 'ldap' ? 'ldap' : 'csv';
  const step = textField(form, 'step', 10) === 'import' ? 'import' : 'preview';
  let csv = '';
  let records: ImportRecord[];
  try {
    if (source === 'ldap') {
      if (!cx.ldap) return importPage(cx, v, h`${notice('bad', v.t.peopleImport.noLdap)}${forms(cx, v)}`, 400);
      records = await listLdapPeople(cx.ldap);
    } else {
      const file = await fileField(form, 'csv-file');
      csv = file ? file.toString('utf8') : textField(form, 'csv', IMPORT_MAX_BYTES, false);
      records = readPeopleCsv(csv);
    }
  } catch (e) {
    if (isKakitomeError(e, 'LIMIT') || isKakitomeError(e, 'MALFORMED') || isKakitomeError(e, 'INVALID_ARGUMENT')) return importPage(cx, v, h`${notice('bad', e.message)}${forms(cx, v)}`, 400);
    throw e;
  }
  if (records.length === 0) return importPage(cx, v, h`${notice('bad', v.t.peopleImport.empty)}${forms(cx, v)}`, 400);
  const acting = actingFor(cx, v);
  const plan = await planPeopleImport(acting.people, records);
  if (step === 'preview') {
    const adds = plan.some((r) => r.status === 'add');
    return importPage(cx, v, h`${summary(v, plan, false)}${adds ? confirmForm(v, source, csv) : ''}${rowsTable(v, plan)}`);
  }
  const done = await applyPeopleImport(acting.people, plan);
  const added = done.filter((r) => r.status === 'add').length;
  await acting.store.audit('person.import', source === 'ldap' ? `ldap:${cx.ldap!.url}` : 'csv', `${added} added, ${done.filter((r) => r.status === 'unchanged').length} unchanged, ${done.filter((r) => r.status === 'error').length} refused`);
  return importPage(cx, v, h`${summary(v, done, true)}<p><a href="/admin/people">${v.t.person.back}</a></p>${rowsTable(v, done)}`);
};
