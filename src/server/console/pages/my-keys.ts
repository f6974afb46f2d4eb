/**
 * "Keys for my old mail" and "I lost a device", for the signed-in person only.
 *
 * Keys for old mail: one PKCS#12 file with every decryption key the store keeps for
 * the person's address (key history: the current key first, then the older ones,
 * revoked and expired included, since old mail was encrypted to them), handed over
 * once under a password shown once. Each key's export is audited (key.export),
 * and the handover itself as console.keys.old-mail.
 *
 * Lost device, in two clicks: the first shows what will happen (a confirmation
 * page), the second revokes every current certificate the CA issued for the
 * person with reason keyCompromise (revokeIssuedCertificate, as `kakitome ca
 * revoke`), retires their keys in the store (they still open old mail, they no
 * longer sign), and issues a new certificate handed over like any other.
 */
import { issueMailboxCertificate } from '../../../ca/issue-mailbox-certificate.ts';
import { isCurrent, listIssuedMailboxCertificates } from '../../../ca/list-issued-mailbox-certificates.ts';
import { revokeIssuedCertificate } from '../../../ca/revoke-issued-certificate.ts';
import { MAX_PKCS12_IDENTITIES } from '../../../keys/export-pkcs12.ts';
import type { CertificateRecord, Store } from '../../../store/store.ts';
import { normalizeAddress } from '../../../x509/mailbox-address.ts';
import { actingFor, FORM_MAX_BYTES, type ConsoleHandler, type ConsoleView } from '../console-context.ts';
import { handoverCard, handOverKeys, type HandOverKey } from '../hand-over-identity.ts';
import { takeRate } from '../rate-limit.ts';
import { readForm, textField } from '../read-form.ts';
import { formatDate, h, notice, page, type Html } from '../render.ts';
import { installGuideLinks } from './install-guides.ts';
import { whyNoCertificate } from './my-certificate.ts';
import { profileChoice, readProfile } from './my-renewal.ts';

/** A certificate whose key may decrypt: keyEncipherment (RSA) or keyAgreement (EC), or no keyUsage at all. */
function decrypts(rec: CertificateRecord): boolean {
  const ku = rec.certificate.keyUsage;
  return !ku || ku.has('keyEncipherment') || ku.has('keyAgreement');
}

/** The person's decryption keys, newest certificate first, one entry per key (a renewal that kept its key shares one). */
export async function decryptionKeyHistory(store: Store, email: string): Promise<HandOverKey[]> {
  const history = (await store.certificateHistory(email)).map((x) => x.record)
    .filter((r) => !r.isCa && r.hasPrivateKey && decrypts(r) && r.certificate.emailAddresses.some((a) => normalizeAddress(a) === normalizeAddress(email)))
    .sort((a, b) => b.certificate.notBefore.getTime() - a.certificate.notBefore.getTime());
  const out: HandOverKey[] = [];
  const seen = new Set<string>();
  for (const r of history) {
    const key = await store.findKeyForCertificate(r.certificate);
    if (!key || seen.has(key.id)) continue;
    seen.add(key.id);
    out.push({ keyId: key.id, certificate: r.certificate });
  }
  return out;
}

/** The two cards of the "my certificate" page: old-mail keys and lost device. */
export function keyForms(v: ConsoleView, hasKeys: boolean, hasCurrent: boolean): Html {
  const t = v.t.mine;
  return h`${hasKeys ? h`<form class="card stack" method="post" action="/me/keys">
<h2>${t.oldMailTitle}</h2><p>${t.oldMailLead}</p>
${profileChoice(v, 'old-mail')}
<div class="actions"><button type="submit">${t.oldMailSubmit}</button></div>
</form>` : ''}
${hasCurrent ? h`<div class="card stack"><h2>${t.lostTitle}</h2><p>${t.lostLead}</p><div class="actions"><a class="button secondary" href="/me/lost">${t.lostStart}</a></div></div>` : ''}`;
}

export const oldMailKeys: ConsoleHandler = async (c, cx, v) => {
  const person = v.person!;
  const t = v.t.mine;
  await takeRate(cx, 'issue', person.id, cx.rates.issuePerPerson);
  const profile = readProfile(await readForm(c, FORM_MAX_BYTES));
  const { store } = actingFor(cx, v);
  const keys = await decryptionKeyHistory(store, person.email);
  const back = h`<p><a href="/me">${v.t.me.back}</a></p>`;
  if (!keys.length) return page(v, { title: t.oldMailTitle, status: 404, body: h`${notice('warn', t.oldMailNone)}${back}` });
  // More than one file holds: what the person can have done in the console (key recovery), not a command line.
  if (keys.length > MAX_PKCS12_IDENTITIES) return page(v, { title: t.oldMailTitle, status: 422, body: h`${notice('warn', t.oldMailTooMany(MAX_PKCS12_IDENTITIES))}${back}` });
  const handed = await handOverKeys(cx, v, store, { keys, profile, reason: 'console: keys for old mail, handed over once as PKCS#12 to their owner', fileStem: `${person.email}-old-mail`, mobileconfig: false });
  await store.audit('console.keys.old-mail', person.email, `${keys.length} keys: ${keys.map((k) => k.keyId).join(' ')}`);
  const body = h`${notice('good', t.oldMailReady(keys.length))}
${handoverCard(v, handed, t.oldMailDownload)}
<p class="hint">${t.oldMailHint}</p>
${installGuideLinks(v)}
${back}`;
  return page(v, { title: t.oldMailTitle, body });
};

async function currentIssued(store: Store, email: string): Promise<CertificateRecord[]> {
  const now = store.now();
  return (await listIssuedMailboxCertificates(store, email)).filter((r) => isCurrent(r, now));
}

export const lostDevicePage: ConsoleHandler = async (_c, cx, v) => {
  const t = v.t.mine;
  const current = await currentIssued(cx.service.store, v.person!.email);
  const back = h`<p><a href="/me">${v.t.me.back}</a></p>`;
  if (!current.length) return page(v, { title: t.lostTitle, body: h`${notice('info', t.lostNothing)}${back}` });
  const body = h`${notice('warn', t.lostConfirmLead)}
<ul class="card">${current.map((r) => h`<li>${r.certificate.emailAddresses.join(', ')} · ${v.t.me.serial} ${r.certificate.serialHex} · ${v.t.me.validUntil} ${formatDate(v, r.certificate.notAfter)}</li>`)}</ul>
<form class="card stack" method="post" action="/me/lost">
<p>${t.lostWhatHappens}</p>
${profileChoice(v, 'lost')}
<input type="hidden" name="confirm" value="revoke-and-reissue">
<div class="actions"><button type="submit" class="danger" data-lost-confirm>${t.lostConfirm}</button><a href="/me">${t.cancel}</a></div>
</form>`;
  return page(v, { title: t.lostTitle, body });
};

export const lostDeviceSubmit: ConsoleHandler = async (c, cx, v) => {
  const person = v.person!;
  const t = v.t.mine;
  await takeRate(cx, 'issue', person.id, cx.rates.issuePerPerson);
  const form = await readForm(c, FORM_MAX_BYTES);
  if (textField(form, 'confirm', 40) !== 'revoke-and-reissue') return page(v, { title: t.lostTitle, status: 400, body: h`${notice('warn', t.lostNotConfirmed)}<p><a href="/me/lost">${t.lostStart}</a></p>` });
  const profile = readProfile(form);
  const why = await whyNoCertificate(cx, v);
  if (why) return page(v, { title: t.lostTitle, status: 403, body: notice('warn', why) });
  const { store } = actingFor(cx, v);
  const revoked = await currentIssued(store, person.email);
  for (const r of revoked) {
    await revokeIssuedCertificate(store, r.certificate.fingerprint256, 'keyCompromise');
    const key = await store.findKeyForCertificate(r.certificate);
    if (key?.status === 'active') await store.retirePrivateKey(key.id, 'keyCompromise: a device holding it was lost (console)');
  }
  const [issued] = await issueMailboxCertificate(store, { email: person.email, keyType: 'rsa2048' });
  await store.audit('console.lost-device', person.email, `revoked ${revoked.map((r) => r.certificate.fingerprint256).join(' ') || 'nothing'} (keyCompromise); new ${issued!.certificate.fingerprint256}`);
  const handed = await handOverKeys(cx, v, store, {
    keys: [{ keyId: issued!.keyId!, certificate: issued!.certificate }], profile, reason: 'console: new certificate after a lost device, handed over once as PKCS#12 to its owner', fileStem: person.email, mobileconfig: true,
  });
  const body = h`${notice('good', t.lostDone(revoked.length), v.t.me.readyLead)}
${handoverCard(v, handed, v.t.me.download)}
${installGuideLinks(v)}
<p><a href="/me">${v.t.me.back}</a></p>`;
  return page(v, { title: v.t.me.readyTitle, body });
};
