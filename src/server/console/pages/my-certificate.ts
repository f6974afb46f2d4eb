/**
 * "My certificate": the signed-in person's certificates in plain words
 * ("valid · 123 days left"), and getting one: the organisation's issuing CA
 * issues a mailbox certificate for a key made on the server (sealed in the store,
 * so mail encrypted to it stays readable: key history), and the key is handed
 * over once, as a PKCS#12 file under a random password shown once. Only for the
 * person's own mailbox, and only when its domain is one of the organisation's.
 */
import { randomInt } from 'node:crypto';
import { findCertificateAuthority } from '../../../ca/certificate-authority.ts';
import { issueMailboxCertificate } from '../../../ca/issue-mailbox-certificate.ts';
import { isKakitomeError } from '../../../errors.ts';
import type { Pkcs12Profile } from '../../../keys/export-pkcs12.ts';
import { exportPkcs12OffThread } from '../../../keys/export-pkcs12-off-thread.ts';
import type { CertificateRecord } from '../../../store/store.ts';
import { FORM_MAX_BYTES, type ConsoleContext, type ConsoleHandler, type ConsoleView } from '../console-context.ts';
import { buildMobileconfig } from '../build-mobileconfig.ts';
import { takeRate } from '../rate-limit.ts';
import { readForm, textField } from '../read-form.ts';
import { formatDate, h, notice, page, type Html, type Tone } from '../render.ts';

const DAY = 86_400_000;
/** No 0/O, 1/I/l: read off a screen and typed on a phone without doubt. */
const PASSWORD_ALPHABET = 'ABCDEFGHJKMNPQRSTUVWXYZ23456789';

/** 20 characters from 31 symbols (99 bits), in groups of five. */
export function makeHandoverPassword(): string {
  const chars = Array.from({ length: 20 }, () => PASSWORD_ALPHABET[randomInt(PASSWORD_ALPHABET.length)]!);
  return [0, 5, 10, 15].map((i) => chars.slice(i, i + 5).join('')).join('-');
}

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

async function whyNoCertificate(cx: ConsoleContext, v: ConsoleView): Promise<string | undefined> {
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
<fieldset><legend>${t.profile}</legend>
<label class="choice"><input type="radio" name="profile" value="modern" checked aria-describedby="profile-modern-hint"><span>${t.profileModern}<span class="hint" id="profile-modern-hint">${t.profileModernHint}</span></span></label>
<label class="choice"><input type="radio" name="profile" value="legacy" aria-describedby="profile-legacy-hint"><span>${t.profileLegacy}<span class="hint" id="profile-legacy-hint">${t.profileLegacyHint}</span></span></label>
</fieldset>
<div class="actions"><button type="submit">${t.submit}</button></div>
</form>`;
}

export const myCertificatePage: ConsoleHandler = async (_c, cx, v) => {
  const t = v.t.me;
  const now = cx.service.store.now();
  const records = (await cx.service.store.listCertificates({ email: v.person!.email })).filter((r) => !r.isCa)
    .sort((a, b) => b.certificate.notAfter.getTime() - a.certificate.notAfter.getTime()).slice(0, 20);
  const why = await whyNoCertificate(cx, v);
  const body = h`<p class="lead">${t.lead}</p>
${records.length ? records.map((r) => certificateCard(v, r, now)) : notice('info', t.none)}
${why ? notice('warn', why) : getForm(v)}`;
  return page(v, { title: t.title, body });
};

export const issueMyCertificate: ConsoleHandler = async (c, cx, v) => {
  const person = v.person!;
  const t = v.t.me;
  await takeRate(cx, 'issue', person.id, cx.rates.issuePerPerson);
  const form = await readForm(c, FORM_MAX_BYTES);
  const profile: Pkcs12Profile = textField(form, 'profile', 10) === 'legacy' ? 'legacy' : 'modern';
  const why = await whyNoCertificate(cx, v);
  if (why) return page(v, { title: t.title, status: 403, body: notice('warn', why) });
  const store = cx.service.store.actingAs(`console:${person.email}`);
  const [issued] = await issueMailboxCertificate(store, { email: person.email, keyType: 'rsa2048' });
  const key = await store.exportPrivateKey(issued!.keyId!, 'console: handed over once as PKCS#12 to its owner');
  const chain = await store.findIssuerChain(issued!.certificate);
  const password = makeHandoverPassword();
  // Off the serving thread: the file's key derivation takes about a second of CPU.
  const file = await exportPkcs12OffThread({ key, certificate: issued!.certificate, chain, password, profile, friendlyName: person.email });
  const id = await cx.handovers.hold(person.id, `${person.email}.p12`, 'application/x-pkcs12', file);
  const root = chain.at(-1);
  const profileFile = buildMobileconfig({
    email: person.email, organisation: v.organisation, host: new URL(cx.origin.baseUrl).hostname, pkcs12: Buffer.from(file),
    ...(root && Buffer.compare(root.subject, root.issuer) === 0 ? { root } : {}),
    text: { displayName: t.profileName(v.organisation), description: t.profileDescription(person.email), identityName: person.email, rootName: t.profileRootName(v.organisation) },
  });
  const profileId = await cx.handovers.hold(person.id, `${person.email}.mobileconfig`, 'application/x-apple-aspen-config', profileFile);
  const body = h`${notice('good', t.readyLead)}
<div class="card stack">
<p><strong>${t.password}</strong></p>
<p class="secret" data-handover-password>${password}</p>
<p class="hint">${t.passwordHint}</p>
<div class="actions"><a class="button" href="/me/certificate/download/${id}" download>${t.download}</a></div>
<p>${t.install}</p>
<div class="actions"><a class="button secondary" href="/me/certificate/download/${profileId}" download data-mobileconfig>${t.downloadProfile}</a></div>
<p class="hint">${t.installProfile}</p>
</div>
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
