/**
 * Certificates, for administrators and registration officers (console-routes.ts):
 * the inventory (paged and searched by indexed queries: store/list-certificate-page.ts),
 * one certificate with its chain and extensions, revocation with the reason codes
 * the S/MIME Baseline Requirements allow (7.2.2), and publishing a CRL, both by
 * the CA's own code (ca/revoke-issued-certificate.ts, ca/publish-crl.ts), so the
 * console, `kakitome ca revoke` and `kakitome ca crl` decide alike.
 */
import { oidName } from '../../../asn1/oids.ts';
import { publishCrl } from '../../../ca/publish-crl.ts';
import { REVOCATION_REASONS, revokeIssuedCertificate, type RevocationReasonName } from '../../../ca/revoke-issued-certificate.ts';
import { isKakitomeError } from '../../../errors.ts';
import { listCertificatePage } from '../../../store/list-certificate-page.ts';
import type { CertificateRecord } from '../../../store/store.ts';
import { ProblemError } from '../../problem.ts';
import { actingFor, FORM_MAX_BYTES, type ConsoleContext, type ConsoleHandler, type ConsoleView } from '../console-context.ts';
import { describeExtensions } from '../describe-extension.ts';
import { readForm, textField } from '../read-form.ts';
import { formatDate, formatDateTime, h, notice, page, type Html } from '../render.ts';
import { certificateState } from './my-certificate.ts';

/** The reasons S/MIME BR 7.2.2 lets a subscriber certificate be revoked for, in the order offered. */
export const BR_REVOCATION_REASONS = ['unspecified', 'keyCompromise', 'affiliationChanged', 'superseded', 'cessationOfOperation'] as const satisfies readonly RevocationReasonName[];
type BrReason = (typeof BR_REVOCATION_REASONS)[number];

function reasonName(code: number | undefined): string {
  return Object.entries(REVOCATION_REASONS).find(([, c]) => c === (code ?? 0))?.[0] ?? String(code);
}

function reasonLabel(v: ConsoleView, code: number | undefined): string {
  const name = reasonName(code);
  return (v.t.certificates.reasons as Record<string, string>)[name] ?? name;
}

function statusCell(v: ConsoleView, rec: CertificateRecord, now: Date): Html {
  const s = certificateState(v, rec, now);
  return h`<span class="status ${s.tone}">${s.text}</span>`;
}

function pageLink(q: string, kind: string, after: string): string {
  const p = new URLSearchParams();
  if (q) p.set('q', q);
  if (kind !== 'issued') p.set('kind', kind);
  p.set('after', after);
  return `/admin/certificates?${p}`;
}

function crlForm(v: ConsoleView): Html {
  return h`<form class="card stack" method="post" action="/admin/certificates/crl">
<h2>${v.t.certificates.crl}</h2><p>${v.t.certificates.crlLead}</p>
<div class="actions"><button class="secondary" type="submit">${v.t.certificates.crlSubmit}</button></div></form>`;
}

export const certificateInventory: ConsoleHandler = async (c, cx, v) => {
  const t = v.t.certificates;
  const q = (c.req.query('q') ?? '').slice(0, 320);
  const kind = c.req.query('kind') === 'all' ? 'all' : 'issued';
  const after = c.req.query('after');
  let result;
  try {
    result = await listCertificatePage(cx.service.store, { search: q, kind, ...(after ? { after } : {}) });
  } catch (e) {
    if (isKakitomeError(e, 'INVALID_ARGUMENT')) throw new ProblemError(400, 'INVALID_ARGUMENT', e.message);
    throw e;
  }
  const now = cx.service.store.now();
  const body = h`<form class="card search" method="get" action="/admin/certificates" role="search">
<div><label for="q">${t.search}</label><input id="q" name="q" type="search" value="${q}" maxlength="320" aria-describedby="q-hint"><p class="hint" id="q-hint">${t.searchHint}</p></div>
<div><label for="kind">${t.kind}</label><select id="kind" name="kind"><option value="issued"${kind === 'issued' ? h` selected` : ''}>${t.kindIssued}</option><option value="all"${kind === 'all' ? h` selected` : ''}>${t.kindAll}</option></select></div>
<div class="actions"><button type="submit">${t.searchSubmit}</button></div>
</form>
${result.records.length ? h`<div class="table-wrap"><table><thead><tr><th scope="col">${t.address}</th><th scope="col">${t.status}</th><th scope="col">${t.validUntil}</th><th scope="col">${t.issuer}</th></tr></thead>
<tbody>${result.records.map((r) => h`<tr data-certificate="${r.certificate.fingerprint256}"><td><a href="/admin/certificates/${r.id}">${r.emails.join(', ') || r.certificate.subjectText}</a></td><td>${statusCell(v, r, now)}</td><td>${formatDate(v, r.certificate.notAfter)}</td><td>${r.certificate.issuerText}</td></tr>`)}</tbody></table></div>` : notice('info', t.none)}
${result.next ? h`<p><a rel="next" href="${pageLink(q, kind, result.next)}">${t.nextPage}</a></p>` : ''}
<p><a href="/admin/bulk-issue">${v.t.bulkIssue.link}</a></p>
${crlForm(v)}`;
  return page(v, { title: t.title, body });
};

async function isIssuedHere(cx: ConsoleContext, rec: CertificateRecord): Promise<boolean> {
  return (await cx.service.store.engine.all('SELECT 1 FROM issued_certificates WHERE certificate_id = ?', [rec.id])).length > 0;
}

function revokeForm(v: ConsoleView, rec: CertificateRecord): Html {
  const t = v.t.certificates;
  return h`<form class="card stack" method="post" action="/admin/certificates/${rec.id}/revoke">
<h2>${t.revoke}</h2><p>${t.revokeLead}</p>
<div><label for="reason">${t.reason}</label><select id="reason" name="reason" required>${BR_REVOCATION_REASONS.map((r) => h`<option value="${r}">${t.reasons[r]}</option>`)}</select></div>
<div class="actions"><button class="danger" type="submit">${t.revokeSubmit}</button></div>
</form>`;
}

async function detailPage(cx: ConsoleContext, v: ConsoleView, rec: CertificateRecord, message?: Html, status = 200): Promise<Response> {
  const t = v.t.certificates;
  const cert = rec.certificate;
  const now = cx.service.store.now();
  const [chain, issuedHere] = await Promise.all([cx.service.store.findIssuerChain(cert), isIssuedHere(cx, rec)]);
  const body = h`${message ?? ''}
<div class="card"><p>${statusCell(v, rec, now)}</p>
<dl class="facts">
<dt>${t.address}</dt><dd>${rec.emails.join(', ') || '—'}</dd>
<dt>${t.subject}</dt><dd>${cert.subjectText}</dd>
<dt>${t.issuer}</dt><dd>${cert.issuerText}</dd>
<dt>${t.serial}</dt><dd>${cert.serialHex}</dd>
<dt>${t.validFrom}</dt><dd>${formatDateTime(v, cert.notBefore)}</dd>
<dt>${t.validUntil}</dt><dd>${formatDateTime(v, cert.notAfter)}</dd>
<dt>${t.key}</dt><dd>${oidName(cert.publicKeyAlgorithm)}${cert.publicKeyParameters ? ` (${oidName(cert.publicKeyParameters)})` : ''}</dd>
<dt>${t.fingerprint}</dt><dd class="secret">${cert.fingerprint256}</dd>
<dt>${t.source}</dt><dd>${t.trust[rec.trust]} · ${issuedHere ? t.issuedHere : rec.source}</dd>
<dt>${t.privateKey}</dt><dd>${rec.hasPrivateKey ? t.yes : t.no}</dd>
${rec.revokedAt ? h`<dt>${t.revokedAt}</dt><dd data-revoked>${formatDateTime(v, rec.revokedAt)} · ${reasonLabel(v, rec.revocationReason)}</dd>` : ''}
</dl></div>
<h2>${t.chain}</h2>
${chain.length ? h`<ol class="card">${chain.map((c) => h`<li>${c.subjectText} · ${t.validUntil}: ${formatDate(v, c.notAfter)}</li>`)}</ol>` : notice('warn', t.noChain)}
<h2>${t.extensions}</h2>
<div class="table-wrap"><table><thead><tr><th scope="col">${t.extension}</th><th scope="col">${t.critical}</th><th scope="col">${t.value}</th></tr></thead>
<tbody>${describeExtensions(cert).map((e) => h`<tr><td>${e.name}</td><td>${e.critical ? t.yes : t.no}</td><td>${e.value}</td></tr>`)}</tbody></table></div>
${issuedHere && !rec.isCa && !rec.revokedAt ? revokeForm(v, rec) : ''}
${issuedHere && rec.revokedAt ? crlForm(v) : ''}
<p><a href="/admin/certificates">${t.back}</a></p>`;
  return page(v, { title: t.detailTitle, body, status });
}

async function findRecord(cx: ConsoleContext, id: string): Promise<CertificateRecord> {
  const rec = id.length <= 100 ? await cx.service.store.findCertificateById(id) : undefined;
  if (!rec) throw new ProblemError(404, 'NOT_FOUND', 'No such certificate.');
  return rec;
}

export const certificateDetail: ConsoleHandler = async (c, cx, v) => detailPage(cx, v, await findRecord(cx, c.req.param('id') ?? ''));

export const revokeCertificate: ConsoleHandler = async (c, cx, v) => {
  const rec = await findRecord(cx, c.req.param('id') ?? '');
  const form = await readForm(c, FORM_MAX_BYTES);
  const reason = textField(form, 'reason', 40);
  if (!(BR_REVOCATION_REASONS as readonly string[]).includes(reason)) return detailPage(cx, v, rec, notice('bad', v.t.certificates.badReason), 400);
  if (rec.revokedAt) return detailPage(cx, v, rec, notice('info', v.t.certificates.alreadyRevoked), 409);
  // A CA certificate is revoked with `kakitome ca revoke`, deliberately, never from a form.
  if (rec.isCa) return detailPage(cx, v, rec, notice('bad', v.t.certificates.caNotHere), 400);
  let revoked: CertificateRecord;
  try {
    revoked = await revokeIssuedCertificate(actingFor(cx, v).store, rec.certificate.fingerprint256, reason as BrReason);
  } catch (e) {
    if (isKakitomeError(e, 'INVALID_ARGUMENT')) return detailPage(cx, v, rec, notice('bad', e.message), 400);
    throw e;
  }
  return detailPage(cx, v, revoked, notice('good', v.t.certificates.revoked));
};

/** Publishes the issuing CA's next CRL and hands it over as a file (DER, application/pkix-crl: RFC 5280 4.2.1.13). */
export const publishCrlFile: ConsoleHandler = async (_c, cx, v) => {
  const crl = await publishCrl(actingFor(cx, v).store);
  return new Response(new Uint8Array(crl.der), { status: 200, headers: { 'content-type': 'application/pkix-crl', 'content-disposition': `attachment; filename="crl-${crl.crlNumber}.crl"` } });
};
