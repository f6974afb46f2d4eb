/**
 * The external certificate directory (administrators and registration officers
 * read it; only administrators decide): new keys harvested for addresses that
 * already had one, waiting for acceptance (Store.acceptCertificate, as `kakitome
 * certs accept`) or rejection (rejectPendingCertificate, as `kakitome certs
 * reject`), the certificates taken from received mail or a directory, and the
 * CA roots signed mail chained to that wait for a trust decision
 * (record-unknown-root.ts): trust (after a confirmation that shows the whole
 * fingerprint), decline or reconsider, by decide-unknown-root.ts as `kakitome
 * certs roots` does. Every decision is audited under the administrator's name.
 */
import { isKakitomeError } from '../../../errors.ts';
import { listHarvestedCertificates, type HarvestedPage } from '../../../store/list-harvested-certificates.ts';
import { listPendingKeyChanges, type PendingKeyChange } from '../../../store/list-pending-key-changes.ts';
import { rejectPendingCertificate } from '../../../store/reject-pending-certificate.ts';
import { findUnknownRoot, listUnknownRoots, type UnknownRoot } from '../../../store/list-unknown-roots.ts';
import { declineUnknownRoot, reopenUnknownRoot, trustUnknownRoot, type TrustedRoot } from '../../../store/decide-unknown-root.ts';
import { createTrustValidator } from '../../../operations/create-trust-validator.ts';
import { storeTrustOptions } from '../../../operations/trust-options.ts';
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
  let pending: PendingKeyChange[], harvested: HarvestedPage, roots: UnknownRoot[], declined: UnknownRoot[];
  try {
    [pending, harvested, roots, declined] = await Promise.all([listPendingKeyChanges(store), listHarvestedCertificates(store, after ? { after } : {}), listUnknownRoots(store), listUnknownRoots(store, { decision: 'declined' })]);
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
<h2 id="roots">${t.roots}</h2>
<p>${t.rootsLead}</p>
${roots.length ? rootTable(v, roots, decide ? (r) => rootForms(v, r) : undefined) : notice('good', t.noRoots)}
${declined.length ? h`<h2>${t.declinedRoots}</h2>
<p>${t.declinedLead}</p>
${rootTable(v, declined, decide ? (r) => rootForm(v, r, 'reopen', t.reopen, '') : undefined)}` : ''}`;
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

/** A fingerprint in groups of four, to be read aloud and compared. */
function groupedFingerprint(fp: string): string {
  return fp.match(/.{1,4}/g)!.join(' ');
}

function rootTable(v: ConsoleView, roots: UnknownRoot[], forms?: (r: UnknownRoot) => Html): Html {
  const t = v.t.directory;
  return h`<div class="table-wrap"><table><thead><tr><th scope="col">${t.ca}</th><th scope="col">${t.validity}</th><th scope="col">${t.seenHeader}</th><th scope="col">${t.senders}</th>${forms ? h`<th scope="col">${t.decision}</th>` : ''}</tr></thead>
<tbody>${roots.map((r) => h`<tr data-root="${r.fingerprint}"><td>${r.subject}<br><span class="secret">${groupedFingerprint(r.fingerprint)}</span><br>${t.key}: ${r.keyAlgorithm}</td>
<td>${t.validFromTo(formatDate(v, r.notBefore), formatDate(v, r.notAfter))}</td>
<td>${t.seenTimes(r.timesSeen, formatDate(v, r.firstSeen), formatDate(v, r.lastSeen))}<br>${t.waitingCertificates(r.waiting)}${r.decision === 'declined' && r.decidedAt ? h`<br>${t.declinedBy(r.decidedBy ?? '', formatDateTime(v, r.decidedAt))}` : ''}</td>
<td>${r.examples.join(', ')}</td>${forms ? h`<td class="actions">${forms(r)}</td>` : ''}</tr>`)}</tbody></table></div>`;
}

function rootForm(v: ConsoleView, r: UnknownRoot, action: 'trust' | 'decline' | 'reopen', label: string, tone: string): Html {
  return h`<form method="post" action="/admin/directory/roots/${action}"><input type="hidden" name="fingerprint" value="${r.fingerprint}"><button${tone ? h` class="${tone}"` : ''} type="submit" aria-label="${label} ${r.subject}">${label}</button></form>`;
}

function rootForms(v: ConsoleView, r: UnknownRoot): Html {
  const t = v.t.directory;
  return h`${rootForm(v, r, 'trust', t.trust, '')}${rootForm(v, r, 'decline', t.decline, 'danger')}`;
}

/** The step before trusting: the root's facts and its whole fingerprint, with the one button that trusts it. */
function confirmTrust(v: ConsoleView, r: UnknownRoot): Response {
  const t = v.t.directory;
  const body = h`<p>${t.confirmLead}</p>
<p class="card secret" data-confirm-fingerprint>${groupedFingerprint(r.fingerprint)}</p>
<dl class="facts card"><dt>${t.ca}</dt><dd>${r.subject}</dd><dt>${t.validity}</dt><dd>${t.validFromTo(formatDate(v, r.notBefore), formatDate(v, r.notAfter))}</dd><dt>${t.key}</dt><dd>${r.keyAlgorithm}</dd><dt>${t.senders}</dt><dd>${r.examples.join(', ')}</dd></dl>
<form method="post" action="/admin/directory/roots/trust"><input type="hidden" name="fingerprint" value="${r.fingerprint}"><input type="hidden" name="confirm" value="${r.fingerprint}"><button type="submit">${t.confirm}</button></form>
<p><a href="/admin/directory#roots">${t.cancel}</a></p>`;
  return page(v, { title: t.confirmTitle, body });
}

function trustedNotice(v: ConsoleView, r: UnknownRoot, done: TrustedRoot): Html {
  const t = v.t.directory;
  return notice('good', t.trusted(r.subject), ...done.outcomes.map((o) => (o.outcome === 'harvested' ? t.kept(o.address) : t.notKept(o.address, o.reason ?? ''))));
}

async function rootDecision(c: Parameters<ConsoleHandler>[0], cx: ConsoleContext, v: ConsoleView, action: 'trust' | 'decline' | 'reopen'): Promise<Response> {
  const form = await readForm(c, FORM_MAX_BYTES);
  const fingerprint = textField(form, 'fingerprint', 100);
  if (!fingerprint) throw new ProblemError(400, 'MALFORMED', 'A decision names a certification authority by its fingerprint.');
  const store = actingFor(cx, v).store;
  const t = v.t.directory;
  try {
    const root = await findUnknownRoot(store, fingerprint);
    if (action === 'decline') {
      await declineUnknownRoot(store, root.fingerprint);
      return directoryPage(cx, v, notice('good', t.declined(root.subject)));
    }
    if (action === 'reopen') {
      await reopenUnknownRoot(store, root.fingerprint);
      return directoryPage(cx, v, notice('good', t.reopened(root.subject)));
    }
    // Trusting takes two steps: the confirmation shows the whole fingerprint, and only its button (confirm = the fingerprint) trusts.
    if (textField(form, 'confirm', 100) !== root.fingerprint) return confirmTrust(v, root);
    const revocation = cx.service.config.revocation;
    const done = await trustUnknownRoot(store, root.fingerprint, {
      createValidator: () => createTrustValidator(storeTrustOptions(revocation), store),
    });
    return directoryPage(cx, v, trustedNotice(v, root, done));
  } catch (e) {
    if (isKakitomeError(e, 'INVALID_ARGUMENT') || isKakitomeError(e, 'MALFORMED')) return directoryPage(cx, v, notice('bad', e.message), 400);
    throw e;
  }
}

export const trustRoot: ConsoleHandler = async (c, cx, v) => rootDecision(c, cx, v, 'trust');
export const declineRoot: ConsoleHandler = async (c, cx, v) => rootDecision(c, cx, v, 'decline');
export const reopenRoot: ConsoleHandler = async (c, cx, v) => rootDecision(c, cx, v, 'reopen');
