/**
 * "My certificate": the signed-in person's certificates in plain words
 * ("valid · 123 days left"), and getting one: the organisation's issuing CA
 * issues a mailbox certificate for a key made on the server (sealed in the store,
 * so mail encrypted to it stays readable: key history), and the key is handed
 * over once, as a PKCS#12 file under a random password shown once. Only for the
 * person's own mailbox, and only when its domain is one of the organisation's.
 */
import { KeyRecoveries } from '../../../store/key-recoveries.ts';
import { findCertificateAuthority } from '../../../ca/certificate-authority.ts';
import { issueMailboxCertificate } from '../../../ca/issue-mailbox-certificate.ts';
import { isKakitomeError } from '../../../errors.ts';
import { isCurrent, listIssuedMailboxCertificates } from '../../../ca/list-issued-mailbox-certificates.ts';
import type { CertificateRecord } from '../../../store/store.ts';
import { FORM_MAX_BYTES, type ConsoleContext, type ConsoleHandler, type ConsoleView } from '../console-context.ts';
import { handoverCard, handOverKeys } from '../hand-over-identity.ts';
import { takeRate } from '../rate-limit.ts';
import { readForm } from '../read-form.ts';
import { formatDate, h, notice, page, type Html, type Tone } from '../render.ts';
import { installGuideLinks } from './install-guides.ts';
import { decryptionKeyHistory, keyForms } from './my-keys.ts';
import { profileChoice, readProfile, renewalForms } from './my-renewal.ts';

const DAY = 86_400_000;

/** The certificate's state in words and tone, as of `now`. */
export function certificateState(v: ConsoleView, rec: CertificateRecord, now: Date): { text: string; tone: Tone } {
  const t = v.t.me;
  if (rec.revokedAt) return { text: t.revoked, tone: 'bad' };
  if (now < rec.certificate.notBefore) return { text: t.notYetValid, tone: 'warn' };
  if (now > rec.certificate.notAfter) return { text: t.expired, tone: 'bad' };
  const days = Math.floor((rec.certificate.notAfter.getTime() - now.getTime()) / DAY);
  return { text: t.valid(days), tone: days <= 30 ? 'warn' : 'good' };
}

function certificateCard(v: ConsoleView, rec: CertificateRecord, now: Date): Html {
  const t = v.t.me;
  const state = certificateState(v, rec, now);
  return h`<div class="card"><p><span class="status ${state.tone}" data-certificate-state>${state.text}</span></p>
<dl class="facts"><dt>${t.address}</dt><dd>${rec.certificate.emailAddresses.join(', ')}</dd>
<dt>${t.validUntil}</dt><dd>${formatDate(v, rec.certificate.notAfter)}</dd>
<dt>${t.issuer}</dt><dd>${rec.certificate.issuerText}</dd>
<dt>${t.serial}</dt><dd>${rec.certificate.serialHex}</dd></dl></div>`;
}

/** Why the person cannot get a certificate here (address outside the domains, no CA), or undefined. */
export async function whyNoCertificate(cx: ConsoleContext, v: ConsoleView): Promise<string | undefined> {
  const email = v.person!.email;
  if (!(await cx.organisation.ownsMailbox(email))) return v.t.me.notInDomains(email, (await cx.organisation.domains()).join(', '));
  try {
    await findCertificateAuthority(cx.service.store);
  } catch (e) {
    if (isKakitomeError(e, 'INVALID_ARGUMENT')) return v.t.me.noCa;
    throw e;
  }
  return undefined;
}

function getForm(v: ConsoleView): Html {
  const t = v.t.me;
  return h`<form class="card stack" method="post" action="/me/certificate">
<h2>${t.get}</h2><p>${t.getLead}</p>
${profileChoice(v, 'profile')}
<div class="actions"><button type="submit">${t.submit}</button></div>
</form>`;
}

export const myCertificatePage: ConsoleHandler = async (_c, cx, v) => {
  const t = v.t.me;
  const now = cx.service.store.now();
  const records = (await cx.service.store.listCertificates({ email: v.person!.email })).filter((r) => !r.isCa)
    .sort((a, b) => b.certificate.notAfter.getTime() - a.certificate.notAfter.getTime()).slice(0, 20);
  const why = await whyNoCertificate(cx, v);
  const current = (await listIssuedMailboxCertificates(cx.service.store, v.person!.email)).filter((r) => isCurrent(r, now));
  const hasKeys = (await decryptionKeyHistory(cx.service.store, v.person!.email)).length > 0;
  const recovered = (await new KeyRecoveries(cx.service.store).waitingFor(v.person!.id)).length > 0;
  const body = h`${recovered ? notice('info', h`<a href="/me/recovered">${v.t.recovery.waitingNotice}</a>`) : ''}<p class="lead">${t.lead}</p>
${records.length ? records.map((r) => certificateCard(v, r, now)) : notice('info', t.none)}
${why ? notice('warn', why) : h`${getForm(v)}${renewalForms(v, current.some((r) => r.hasPrivateKey))}`}
${keyForms(v, hasKeys, current.length > 0)}
<p><a href="/me/guides">${v.t.mine.guides.title}</a></p>`;
  return page(v, { title: t.title, body });
};

export const issueMyCertificate: ConsoleHandler = async (c, cx, v) => {
  const person = v.person!;
  const t = v.t.me;
  await takeRate(cx, 'issue', person.id, cx.rates.issuePerPerson);
  const profile = readProfile(await readForm(c, FORM_MAX_BYTES));
  const why = await whyNoCertificate(cx, v);
  if (why) return page(v, { title: t.title, status: 403, body: notice('warn', why) });
  const store = cx.service.store.actingAs(`console:${person.email}`);
  const [issued] = await issueMailboxCertificate(store, { email: person.email, keyType: 'rsa2048' });
  const handed = await handOverKeys(cx, v, store, {
    keys: [{ keyId: issued!.keyId!, certificate: issued!.certificate }], profile, reason: 'console: handed over once as PKCS#12 to its owner', fileStem: person.email, mobileconfig: true,
  });
  const body = h`${notice('good', t.readyLead)}
${handoverCard(v, handed, t.download)}
${installGuideLinks(v)}
<p><a href="/me">${t.back}</a></p>`;
  return page(v, { title: t.readyTitle, body });
};

export const downloadMyCertificate: ConsoleHandler = async (c, cx, v) => {
  const handover = await cx.handovers.take(c.req.param('id') ?? '', v.person!.id);
  if (!handover) return page(v, { title: v.t.me.title, status: 404, body: h`${notice('warn', v.t.me.downloadGone)}<p><a href="/me">${v.t.me.back}</a></p>` });
  await cx.service.store.actingAs(`console:${v.person!.email}`).audit('console.pkcs12.download', v.person!.email, `${handover.bytes.length} bytes`);
  const bytes = new Uint8Array(handover.bytes);
  handover.bytes.fill(0);
  return new Response(bytes, { status: 200, headers: { 'content-type': handover.contentType, 'content-disposition': `attachment; filename="${handover.fileName.replace(/[^A-Za-z0-9@._+-]/g, '_')}"` } });
};
