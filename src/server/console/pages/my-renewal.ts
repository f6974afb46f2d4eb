/**
 * "My certificate", the ways to a newer one:
 * - renewal: the CA's renewMailboxCertificate (as `kakitome ca renew`), a new key
 *   made on the server for the person's newest current certificate whose key the
 *   store holds, handed over once like a new certificate (hand-over-identity.ts);
 *   the old certificate and key stay (key history), so old mail stays readable;
 * - from a certification request (PKCS#10) made on the person's own device: the
 *   CA's issueFromCertificationRequest (as `kakitome ca issue --csr`: proof of
 *   possession, key checks, the mailbox profile), for the person's own address
 *   only. The private key never reaches the server; the certificate is handed
 *   back with its chain.
 */
import { issueFromCertificationRequest } from '../../../ca/issue-from-certification-request.ts';
import { isCurrent, listIssuedMailboxCertificates } from '../../../ca/list-issued-mailbox-certificates.ts';
import { renewMailboxCertificate } from '../../../ca/renew-mailbox-certificate.ts';
import { encodePem } from '../../../asn1/pem.ts';
import { isKakitomeError } from '../../../errors.ts';
import type { Pkcs12Profile } from '../../../keys/export-pkcs12.ts';
import { actingFor, FORM_MAX_BYTES, type ConsoleHandler, type ConsoleView } from '../console-context.ts';
import { handoverCard, handOverKeys } from '../hand-over-identity.ts';
import { takeRate } from '../rate-limit.ts';
import { fileField, readForm, textField } from '../read-form.ts';
import { h, notice, page, type Html } from '../render.ts';
import { installGuideLinks } from './install-guides.ts';
import { whyNoCertificate } from './my-certificate.ts';

/** A PKCS#10 request is a few KiB; a PEM one with a 8192-bit key stays well under this. */
const CSR_MAX_BYTES = 32 * 1024;

export function readProfile(form: FormData): Pkcs12Profile {
  return textField(form, 'profile', 10) === 'legacy' ? 'legacy' : 'modern';
}

/** The profile choice of a form (the same two as "get a certificate"). */
export function profileChoice(v: ConsoleView, idPrefix: string): Html {
  const t = v.t.me;
  return h`<fieldset><legend>${t.profile}</legend>
<label class="choice"><input type="radio" name="profile" value="modern" checked aria-describedby="${idPrefix}-modern-hint"><span>${t.profileModern}<span class="hint" id="${idPrefix}-modern-hint">${t.profileModernHint}</span></span></label>
<label class="choice"><input type="radio" name="profile" value="legacy" aria-describedby="${idPrefix}-legacy-hint"><span>${t.profileLegacy}<span class="hint" id="${idPrefix}-legacy-hint">${t.profileLegacyHint}</span></span></label>
</fieldset>`;
}

/** The renewal and certification-request forms of the "my certificate" page. */
export function renewalForms(v: ConsoleView, canRenew: boolean): Html {
  const t = v.t.mine;
  return h`${canRenew ? h`<form class="card stack" method="post" action="/me/certificate/renew">
<h2>${t.renewTitle}</h2><p>${t.renewLead}</p>
${profileChoice(v, 'renew')}
<div class="actions"><button type="submit">${t.renewSubmit}</button></div>
</form>` : ''}
<form class="card stack" method="post" action="/me/certificate/request" enctype="multipart/form-data">
<h2>${t.csrTitle}</h2><p>${t.csrLead}</p>
<div><label for="csr-file">${t.csrFile}</label><input id="csr-file" name="csr-file" type="file" accept=".csr,.req,.pem,.der,application/pkcs10"></div>
<div><label for="csr-text">${t.csrPaste}</label><textarea id="csr-text" name="csr-text" spellcheck="false" aria-describedby="csr-hint"></textarea><p class="hint" id="csr-hint">${t.csrHint}</p></div>
<div class="actions"><button type="submit">${t.csrSubmit}</button></div>
</form>`;
}

export const renewMyCertificate: ConsoleHandler = async (c, cx, v) => {
  const person = v.person!;
  const t = v.t.mine;
  await takeRate(cx, 'issue', person.id, cx.rates.issuePerPerson);
  const profile = readProfile(await readForm(c, FORM_MAX_BYTES));
  const why = await whyNoCertificate(cx, v);
  if (why) return page(v, { title: v.t.me.title, status: 403, body: notice('warn', why) });
  const { store } = actingFor(cx, v);
  const now = store.now();
  const current = (await listIssuedMailboxCertificates(store, person.email)).find((r) => isCurrent(r, now) && r.hasPrivateKey);
  if (!current) return page(v, { title: v.t.me.title, status: 409, body: h`${notice('warn', t.nothingToRenew)}<p><a href="/me">${v.t.me.back}</a></p>` });
  const renewed = await renewMailboxCertificate(store, current.certificate.fingerprint256);
  const handed = await handOverKeys(cx, v, store, {
    keys: [{ keyId: renewed.keyId!, certificate: renewed.certificate }], profile, reason: 'console: renewal, handed over once as PKCS#12 to its owner', fileStem: person.email, mobileconfig: true,
  });
  const body = h`${notice('good', v.t.me.readyLead, t.renewedNote)}
${handoverCard(v, handed, v.t.me.download)}
${installGuideLinks(v)}
<p><a href="/me">${v.t.me.back}</a></p>`;
  return page(v, { title: v.t.me.readyTitle, body });
};

export const issueFromMyRequest: ConsoleHandler = async (c, cx, v) => {
  const person = v.person!;
  const t = v.t.mine;
  await takeRate(cx, 'issue', person.id, cx.rates.issuePerPerson);
  const form = await readForm(c, CSR_MAX_BYTES + 8 * 1024);
  const request = (await fileField(form, 'csr-file')) ?? Buffer.from(textField(form, 'csr-text', CSR_MAX_BYTES), 'utf8');
  const back = h`<p><a href="/me">${v.t.me.back}</a></p>`;
  if (request.length === 0) return page(v, { title: t.csrTitle, status: 400, body: h`${notice('warn', t.csrNothing)}${back}` });
  if (request.length > CSR_MAX_BYTES) return page(v, { title: t.csrTitle, status: 413, body: h`${notice('warn', t.csrTooLarge)}${back}` });
  const why = await whyNoCertificate(cx, v);
  if (why) return page(v, { title: v.t.me.title, status: 403, body: notice('warn', why) });
  const { store } = actingFor(cx, v);
  let issued;
  try {
    issued = await issueFromCertificationRequest(store, { request, email: person.email });
  } catch (e) {
    if (!isKakitomeError(e)) throw e;
    return page(v, { title: t.csrTitle, status: 422, body: h`${notice('bad', t.csrRefused, `${e.code}: ${e.message}`)}${back}` });
  }
  const chain = await store.findIssuerChain(issued.certificate);
  const pem = [issued.certificate, ...chain].map((cert) => encodePem('CERTIFICATE', cert.der)).join('');
  const id = await cx.handovers.hold(person.id, `${person.email}.pem`, 'application/x-pem-file', Buffer.from(pem, 'utf8'));
  const body = h`${notice('good', t.csrIssued)}
${issued.ignored.length ? notice('info', t.csrIgnored, issued.ignored.join('; ')) : ''}
<div class="card stack"><div class="actions"><a class="button" href="/me/certificate/download/${id}" download data-certificate-download>${t.csrDownload}</a></div><p class="hint">${t.csrDownloadHint}</p></div>
${installGuideLinks(v)}
${back}`;
  return page(v, { title: t.csrIssuedTitle, body });
};
