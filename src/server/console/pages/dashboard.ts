/**
 * The administrators' dashboard: what needs attention first. Certificates
 * expiring in 7, 14 and 30 days; each CA's health (its certificate's validity,
 * its last CRL's nextUpdate and whether that has passed, its OCSP signing
 * certificate); the gateway's and the signing service's work over the last 24
 * hours, counted in the audit log every node writes to; and what waits for an
 * administrator (new keys harvested for known addresses, CA roots waiting for a
 * trust decision). Everything is read by
 * the store and CA functions the CLI uses (countExpiringMailboxCertificates: findExpiring's rule, counted, listCertificateAuthorities,
 * findOcspSigningCertificate, the CRL status publishCrl records).
 */
import { listCertificateAuthorities, type CertificateAuthority } from '../../../ca/certificate-authority.ts';
import { readCrlStatus } from '../../../ca/crl-status.ts';
import { findOcspSigningCertificate } from '../../../ca/issue-ocsp-signing-certificate.ts';
import { countAuditActions } from '../../../store/count-audit-actions.ts';
import { countPendingKeyChanges } from '../../../store/list-pending-key-changes.ts';
import { countUnknownRoots } from '../../../store/list-unknown-roots.ts';
import { countExpiringMailboxCertificates } from '../../../store/count-expiring-mailbox-certificates.ts';
import type { Store } from '../../../store/store.ts';
import type { ConsoleHandler, ConsoleView } from '../console-context.ts';
import { formatDate, formatDateTime, h, notice, page, type Html, type Tone } from '../render.ts';

const DAY = 86_400_000;
/** A CA certificate or OCSP signer with fewer days left than this is shown as a warning. */
const WARN_DAYS = 30;

/** Audit actions counted per area (what each node writes for each message or request). */
export const SERVICE_ACTIONS = ['api.sign', 'smtp.sign', 'smtp.sign.refused', 'api.encrypt', 'api.decrypt', 'api.verify'] as const;
export const GATEWAY_ACTIONS = ['message.hold', 'message.release', 'message.bounce', 'key.use.sign', 'key.use.decrypt', 'key.use.dkim'] as const;

export interface CaHealth {
  ca: CertificateAuthority;
  daysLeft: number;
  crl?: { crlNumber: number; nextUpdate: Date; overdue: boolean };
  ocspSignerUntil?: Date;
}

export async function caHealth(store: Store, now: Date): Promise<CaHealth[]> {
  const out: CaHealth[] = [];
  for (const ca of await listCertificateAuthorities(store)) {
    const [crl, signer] = await Promise.all([readCrlStatus(store, ca.id), findOcspSigningCertificate(store, ca, now)]);
    out.push({
      ca, daysLeft: Math.floor((ca.certificate.notAfter.getTime() - now.getTime()) / DAY),
      ...(crl ? { crl: { crlNumber: crl.crlNumber, nextUpdate: crl.nextUpdate, overdue: crl.nextUpdate.getTime() <= now.getTime() } } : {}),
      ...(signer ? { ocspSignerUntil: signer.notAfter } : {}),
    });
  }
  return out;
}

function badge(tone: Tone, text: string): Html {
  return h`<span class="status ${tone}">${text}</span>`;
}

function caCard(v: ConsoleView, x: CaHealth, now: Date): Html {
  const t = v.t.dashboard;
  const a = v.t.admin;
  const validity = x.daysLeft < 0 ? badge('bad', t.caExpired) : badge(x.daysLeft < WARN_DAYS ? 'warn' : 'good', t.daysLeft(x.daysLeft));
  const crl = !x.crl ? badge('warn', t.crlNever)
    : x.crl.overdue ? badge('bad', t.crlOverdue(formatDateTime(v, x.crl.nextUpdate)))
    : badge('good', t.crlNext(x.crl.crlNumber, formatDateTime(v, x.crl.nextUpdate)));
  const signerDays = x.ocspSignerUntil ? Math.floor((x.ocspSignerUntil.getTime() - now.getTime()) / DAY) : -1;
  const ocsp = x.ocspSignerUntil ? badge(signerDays < 10 ? 'warn' : 'good', t.ocspUntil(formatDate(v, x.ocspSignerUntil))) : badge('warn', t.ocspNone);
  return h`<div class="card" data-ca="${x.ca.name}"><h3>${x.ca.name} (${x.ca.role === 'root' ? a.caRoot : a.caIssuing})</h3>
<dl class="facts">
<dt>${t.caCertificate}</dt><dd data-health="validity">${validity} ${a.caValidUntil(formatDate(v, x.ca.certificate.notAfter))}</dd>
<dt>${t.crl}</dt><dd data-health="crl">${crl}</dd>
<dt>${t.ocsp}</dt><dd data-health="ocsp">${ocsp}</dd>
</dl></div>`;
}

function counterTable(v: ConsoleView, caption: string, counts: Map<string, number>): Html {
  const t = v.t.dashboard;
  return h`<div class="table-wrap"><table><caption>${caption}</caption><thead><tr><th scope="col">${t.action}</th><th scope="col">${t.count}</th></tr></thead>
<tbody>${[...counts].map(([action, n]) => h`<tr data-counter="${action}"><td>${(t.actions as Record<string, string>)[action] ?? action} <code>${action}</code></td><td>${n}</td></tr>`)}</tbody></table></div>`;
}

export const dashboard: ConsoleHandler = async (c, cx, v) => {
  const t = v.t.admin;
  const d = v.t.dashboard;
  const store = cx.service.store;
  const now = store.now();
  const since = new Date(now.getTime() - DAY);
  const [people, health, domains, checkPage, pending, roots, service, gateway] = await Promise.all([
    cx.people.countPeople(), caHealth(store, now), cx.organisation.domains(), cx.organisation.checkPageAccess(), countPendingKeyChanges(store), countUnknownRoots(store),
    countAuditActions(store, since, SERVICE_ACTIONS), countAuditActions(store, since, GATEWAY_ACTIONS),
  ]);
  const windows = [7, 14, 30];
  const expiring = (await countExpiringMailboxCertificates(store, windows, now)).map((n, i): [number, number] => [windows[i]!, n]);
  const mayOpenDirectory = v.person?.roles.some((r) => r === 'administrator' || r === 'registration-officer') ?? false;
  const body = h`
${c.req.query('setup') === 'done' ? notice('good', v.t.setup.done) : ''}
<div class="figures">
<div class="figure"><strong>${people}</strong>${t.people}</div>
${expiring.map(([days, n]) => h`<div class="figure" data-expiring="${days}"><strong>${n}</strong>${t.certificates}: ${t.expiring(days)}</div>`)}
<div class="figure" data-pending><strong>${pending}</strong>${mayOpenDirectory ? h`<a href="/admin/directory">${d.pendingKeys}</a>` : d.pendingKeys}</div>
<div class="figure" data-unknown-roots><strong>${roots}</strong>${mayOpenDirectory ? h`<a href="/admin/directory#roots">${d.unknownRoots}</a>` : d.unknownRoots}</div>
</div>
<h2>${t.authorities}</h2>
${health.length ? health.map((x) => caCard(v, x, now)) : notice('warn', t.noCa)}
<h2>${d.activity}</h2>
<p>${d.activityLead}</p>
${counterTable(v, d.service, service)}
${counterTable(v, d.gateway, gateway)}
<h2>${t.domains}</h2>
<p class="card">${domains.join(', ')}</p>
<h2>${t.checkPage}</h2>
<p class="card">${checkPage === 'public' ? t.checkPublic : t.checkSignedIn}</p>`;
  return page(v, { title: t.title, body });
};
