/**
 * The external certificate directory (administrators and registration officers
 * read it; only administrators decide): new keys harvested for addresses that
 * already had one, waiting for acceptance (Store.acceptCertificate, as `kakitome
 * certs accept`) or rejection (rejectPendingCertificate, as `kakitome certs
 * reject`), and the certificates taken from received mail or a directory. Both
 * decisions are audited under the administrator's name.
 */
import { isKakitomeError } from '../../../errors.ts';
import { listHarvestedCertificates, type HarvestedPage } from '../../../store/list-harvested-certificates.ts';
import { listPendingKeyChanges, type PendingKeyChange } from '../../../store/list-pending-key-changes.ts';
import { rejectPendingCertificate } from '../../../store/reject-pending-certificate.ts';
import type { CertificateRecord } from '../../../store/store.ts';
import { ProblemError } from '../../problem.ts';
import { actingFor, FORM_MAX_BYTES, type ConsoleContext, type ConsoleHandler, type ConsoleView } from '../console-context.ts';
import { readForm, textField } from '../read-form.ts';
import { formatDate, formatDateTime, h, notice, page, type Html } from '../render.ts';
import { certificateState } from './my-certificate.ts';

function isAdministrator(v: ConsoleView): boolean {
  return v.person?.roles.includes('administrator') ?? false;
}

function certificateSummary(v: ConsoleView, rec: CertificateRecord, now: Date): Html {
  const s = certificateState(v, rec, now);
  return h`<a href="/admin/certificates/${rec.id}">${rec.certificate.subjectText}</a><br><span class="status ${s.tone}">${s.text}</span> · ${rec.certificate.issuerText}<br><span class="secret">${rec.certificate.fingerprint256}</span>`;
}

function decisionForms(v: ConsoleView, p: PendingKeyChange): Html {
  const t = v.t.directory;
  const hidden = h`<input type="hidden" name="fingerprint" value="${p.record.certificate.fingerprint256}"><input type="hidden" name="address" value="${p.address}">`;
  return h`<form method="post" action="/admin/directory/accept">${hidden}<button type="submit">${t.accept}</button></form>
<form method="post" action="/admin/directory/reject">${hidden}<button class="danger" type="submit">${t.reject}</button></form>`;
}

async function directoryPage(cx: ConsoleContext, v: ConsoleView, message?: Html, status = 200, after?: string): Promise<Response> {
  const t = v.t.directory;
  const store = cx.service.store;
  const now = store.now();
  let pending: PendingKeyChange[], harvested: HarvestedPage;
  try {
    [pending, harvested] = await Promise.all([listPendingKeyChanges(store), listHarvestedCertificates(store, after ? { after } : {})]);
  } catch (e) {
    if (isKakitomeError(e, 'INVALID_ARGUMENT')) throw new ProblemError(400, 'INVALID_ARGUMENT', e.message);
    throw e;
  }
  const decide = isAdministrator(v);
  const body = h`${message ?? ''}
<h2>${t.pending}</h2>
<p>${t.pendingLead}</p>
${pending.length ? h`<div class="table-wrap"><table><thead><tr><th scope="col">${t.address}</th><th scope="col">${t.newKey}</th><th scope="col">${t.inUse}</th>${decide ? h`<th scope="col">${t.decision}</th>` : ''}</tr></thead>
<tbody>${pending.map((p) => h`<tr data-pending="${p.record.certificate.fingerprint256}"><td>${p.address}<br>${t.seen(formatDateTime(v, p.filedAt))}</td><td>${certificateSummary(v, p.record, now)}</td>
<td>${p.inUse.length ? p.inUse.map((r) => certificateSummary(v, r, now)) : t.none}</td>${decide ? h`<td class="actions">${decisionForms(v, p)}</td>` : ''}</tr>`)}</tbody></table></div>` : notice('good', t.noPending)}
<h2>${t.harvested}</h2>
<p>${t.harvestedLead}</p>
${harvested.records.length ? h`<div class="table-wrap"><table><thead><tr><th scope="col">${t.address}</th><th scope="col">${t.certificate}</th><th scope="col">${t.filing}</th><th scope="col">${t.source}</th></tr></thead>
<tbody>${harvested.records.map((r) => h`<tr><td>${r.emails.join(', ')}</td><td>${certificateSummary(v, r, now)}</td><td>${r.filings.map((f) => `${f.email}: ${t.filings[f.filing]}`).join(', ')}</td><td>${r.source} · ${formatDate(v, r.addedAt)}</td></tr>`)}</tbody></table></div>` : notice('info', t.noHarvested)}
${harvested.next ? h`<p><a rel="next" href="/admin/directory?after=${harvested.next}">${v.t.certificates.nextPage}</a></p>` : ''}
<h2>${t.roots}</h2>
<p>${t.rootsLead}</p>`;
  return page(v, { title: t.title, body, status });
}

export const externalDirectory: ConsoleHandler = async (c, cx, v) => directoryPage(cx, v, undefined, 200, c.req.query('after')?.slice(0, 400));

async function decision(c: Parameters<ConsoleHandler>[0], cx: ConsoleContext, v: ConsoleView, accept: boolean): Promise<Response> {
  const form = await readForm(c, FORM_MAX_BYTES);
  const fingerprint = textField(form, 'fingerprint', 100);
  const address = textField(form, 'address', 320);
  if (!fingerprint || !address) throw new ProblemError(400, 'MALFORMED', 'A decision names a certificate and an address.');
  const store = actingFor(cx, v).store;
  try {
    if (accept) await store.acceptCertificate(fingerprint, address);
    else await rejectPendingCertificate(store, fingerprint, address);
  } catch (e) {
    if (isKakitomeError(e, 'INVALID_ARGUMENT') || isKakitomeError(e, 'CERT_USAGE')) return directoryPage(cx, v, notice('bad', e.message), 400);
    throw e;
  }
  return directoryPage(cx, v, notice('good', accept ? v.t.directory.accepted(address) : v.t.directory.rejected(address)));
}

export const acceptKey: ConsoleHandler = async (c, cx, v) => decision(c, cx, v, true);
export const rejectKey: ConsoleHandler = async (c, cx, v) => decision(c, cx, v, false);
