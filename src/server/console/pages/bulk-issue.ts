/**
 * Issue for many people from a CSV (administrators and registration officers):
 * the library's plan (ca/plan-bulk-issue.ts) shown as a preview that writes
 * nothing, row by row, then, once confirmed, the certificates issued as on a
 * person's page: keys made and sealed on the server, never handed to the person
 * uploading (each person takes a key for their own devices, once, on "My
 * certificate"; never a ZIP of everyone's PKCS#12 files). The CSV travels back
 * with the confirmation and is planned again in full. Uploading the same file
 * again issues nothing twice. An officer issues only for people without a role.
 */
import { applyBulkIssue, BULK_ISSUE_MAX_ROWS, planBulkIssue, readBulkIssueCsv, type BulkIssueContext, type BulkIssueRow } from '../../../ca/plan-bulk-issue.ts';
import type { MailboxKeyType } from '../../../ca/issue-mailbox-certificate.ts';
import { isKakitomeError } from '../../../errors.ts';
import { IMPORT_MAX_BYTES } from '../../../store/plan-people-import.ts';
import { actingFor, type ConsoleContext, type ConsoleHandler, type ConsoleView } from '../console-context.ts';
import { takeRate } from '../rate-limit.ts';
import { fileField, readForm, textField } from '../read-form.ts';
import { formatBytes, h, notice, page, type Html } from '../render.ts';
import { mayActOn } from './act-on-person.ts';
import { KEY_TYPES } from './person.ts';

/** Previews and issues a person may run a minute (an issue makes up to BULK_ISSUE_MAX_ROWS keys). */
export const BULK_ISSUES_PER_MINUTE = 10;
const FORM_MAX = IMPORT_MAX_BYTES + 64 * 1024;

function uploadForm(v: ConsoleView): Html {
  const t = v.t.bulkIssue;
  return h`<form class="card stack" method="post" action="/admin/bulk-issue" enctype="multipart/form-data">
<p>${t.lead(formatBytes(IMPORT_MAX_BYTES), BULK_ISSUE_MAX_ROWS)}</p>
<pre class="card">email
tanaka@example.co.jp
smith@example.co.jp</pre>
<input type="hidden" name="step" value="preview">
<div><label for="bulk-file">${v.t.peopleImport.file}</label><input id="bulk-file" name="csv-file" type="file" accept=".csv,text/csv"></div>
<div><label for="bulk-text">${v.t.peopleImport.paste}</label><textarea id="bulk-text" name="csv" rows="6"></textarea></div>
<div><label for="bulk-key-type">${v.t.person.keyType}</label><select id="bulk-key-type" name="key-type">${KEY_TYPES.map((k) => h`<option value="${k}">${k}</option>`)}</select></div>
<div class="actions"><button type="submit">${v.t.peopleImport.preview}</button></div></form>`;
}

function statusText(v: ConsoleView, r: BulkIssueRow, done: boolean): string {
  const t = v.t.bulkIssue;
  if (r.status === 'error') return r.detail ? `${t.problems[r.problem!]} (${r.detail})` : t.problems[r.problem!];
  return r.status === 'issue' ? (done ? t.issued : t.willIssue) : t.unchanged;
}

function rowsTable(v: ConsoleView, rows: readonly BulkIssueRow[], done: boolean): Html {
  const t = v.t.bulkIssue;
  return h`<div class="table-wrap"><table><thead><tr><th scope="col">${v.t.peopleImport.origin}</th><th scope="col">${v.t.people.email}</th><th scope="col">${v.t.people.status}</th><th scope="col">${t.certificate}</th></tr></thead>
<tbody>${rows.map((r) => h`<tr data-bulk-row="${r.status}"><td>${r.origin}</td><td>${r.email}</td><td><span class="status ${r.status === 'error' ? 'bad' : r.status === 'issue' ? 'good' : 'info'}">${statusText(v, r, done)}</span></td><td>${r.fingerprint ? h`<code>${r.fingerprint.slice(0, 16)}</code>` : ''}</td></tr>`)}</tbody></table></div>`;
}

function summary(v: ConsoleView, rows: readonly BulkIssueRow[], done: boolean): Html {
  const n = (s: BulkIssueRow['status']) => rows.filter((r) => r.status === s).length;
  return notice(n('error') ? 'warn' : 'good', (done ? v.t.bulkIssue.doneSummary : v.t.bulkIssue.previewSummary)(n('issue'), n('unchanged'), n('error')));
}

function confirmForm(v: ConsoleView, csv: string, keyType: string): Html {
  return h`<form class="card stack" method="post" action="/admin/bulk-issue" enctype="multipart/form-data">
<input type="hidden" name="step" value="issue"><input type="hidden" name="csv" value="${csv}"><input type="hidden" name="key-type" value="${keyType}">
<div class="actions"><button type="submit">${v.t.bulkIssue.issueSubmit(keyType)}</button> <a href="/admin/bulk-issue">${v.t.peopleImport.cancel}</a></div></form>`;
}

function bulkPage(v: ConsoleView, body: Html, status = 200): Response {
  return page(v, { title: v.t.bulkIssue.title, body: h`${body}<p><a href="/admin/certificates">${v.t.bulkIssue.back}</a></p>`, status });
}

export const bulkIssuePage: ConsoleHandler = async (_c, _cx, v) => bulkPage(v, uploadForm(v));

export const bulkIssueSubmit: ConsoleHandler = async (c, cx, v) => {
  await takeRate(cx, 'bulk-issue', v.person!.id, BULK_ISSUES_PER_MINUTE);
  const form = await readForm(c, FORM_MAX);
  const step = textField(form, 'step', 10) === 'issue' ? 'issue' : 'preview';
  const keyType = textField(form, 'key-type', 20) || 'rsa2048';
  if (!(KEY_TYPES as readonly string[]).includes(keyType)) return bulkPage(v, h`${notice('bad', v.t.errors.badForm)}${uploadForm(v)}`, 400);
  const file = await fileField(form, 'csv-file');
  const csv = file ? file.toString('utf8') : textField(form, 'csv', IMPORT_MAX_BYTES, false);
  let records;
  try {
    records = readBulkIssueCsv(csv);
  } catch (e) {
    if (isKakitomeError(e, 'LIMIT') || isKakitomeError(e, 'MALFORMED')) return bulkPage(v, h`${notice('bad', e.message)}${uploadForm(v)}`, 400);
    throw e;
  }
  if (records.length === 0) return bulkPage(v, h`${notice('bad', v.t.peopleImport.empty)}${uploadForm(v)}`, 400);
  const acting = actingFor(cx, v);
  const bx: BulkIssueContext = { store: acting.store, people: acting.people, organisation: acting.organisation, mayActOn: (p) => mayActOn(v, p) };
  const plan = await planBulkIssue(bx, records);
  if (step === 'preview') return bulkPage(v, h`${summary(v, plan, false)}${plan.some((r) => r.status === 'issue') ? confirmForm(v, csv, keyType) : ''}${rowsTable(v, plan, false)}`);
  const done = await applyBulkIssue(bx, plan, keyType as MailboxKeyType);
  const count = (s: BulkIssueRow['status']) => done.filter((r) => r.status === s).length;
  await acting.store.audit('certificate.bulk-issue', 'csv', `${keyType}: ${count('issue')} issued, ${count('unchanged')} unchanged, ${count('error')} refused`);
  return bulkPage(v, h`${summary(v, done, true)}${rowsTable(v, done, true)}`);
};
