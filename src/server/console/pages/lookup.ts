/**
 * "Can I send encrypted mail to …?", for every signed-in person: the store's
 * answer (findRecipientCertificate: the certificate the gateway and `kakitome
 * encrypt` would use now), else the configured LDAP directory's (kept only when
 * its chain validates against the store's trusted CAs: lookup-ldap-certificates.ts),
 * put in plain words, with why not and what to do when the answer is no. A GET
 * form (it changes nothing but what LDAP adds, as `kakitome certs find` does),
 * rate-limited per person because each lookup may ask the directory.
 */
import { isKakitomeError } from '../../../errors.ts';
import { normalizeAddress, type CertificateRecord } from '../../../store/store.ts';
import type { ConsoleContext, ConsoleHandler, ConsoleView } from '../console-context.ts';
import { takeRate } from '../rate-limit.ts';
import { formatDate, h, notice, page, type Html } from '../render.ts';

/** A mailbox as people type it: local@domain, no spaces, within RFC 5321's lengths. */
const MAILBOX = /^[^\s@<>()",;:\\[\]]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/;

type Answer =
  | { kind: 'yes'; record: CertificateRecord; fromDirectory: boolean }
  | { kind: 'no'; why: 'none' | 'expired' | 'revoked' | 'pending' | 'directory-failed' };

async function askDirectory(cx: ConsoleContext, v: ConsoleView, address: string): Promise<CertificateRecord | 'failed' | undefined> {
  if (!cx.ldap) return undefined;
  // Loaded on use, like `kakitome certs find --ldap-url`: most consoles have no directory.
  const [{ findRecipientCertificateWithLdap }, { createStoreTrustStore }, { createSignerValidator }] = await Promise.all([
    import('../../../store/lookup-ldap-certificates.ts'), import('../../../store/store-trust-store.ts'), import('../../../pki/create-signer-validator.ts'),
  ]);
  const store = cx.service.store.actingAs(`console:${v.person!.email}`);
  try {
    return await findRecipientCertificateWithLdap(store, address, { ...cx.ldap, onWarning: (warning) => cx.service.log({ msg: 'console lookup: LDAP answer capped', warning }) }, createSignerValidator({ trustStore: createStoreTrustStore(store) }));
  } catch (e) {
    if (isKakitomeError(e, 'INVALID_ARGUMENT')) {
      cx.service.log({ msg: 'console lookup: LDAP failed', error: e.message });
      return 'failed';
    }
    throw e;
  }
}

/** Why the store has nothing to encrypt to: the best explanation among the address's certificates. */
function whyNot(records: CertificateRecord[], address: string, now: Date): 'none' | 'expired' | 'revoked' | 'pending' {
  const own = records.filter((r) => !r.isCa);
  if (own.some((r) => r.filings.some((f) => f.email === address && f.filing === 'pending') && !r.revokedAt && r.certificate.notAfter > now)) return 'pending';
  if (own.some((r) => r.revokedAt)) return own.some((r) => !r.revokedAt && r.certificate.notAfter <= now) ? 'expired' : 'revoked';
  if (own.some((r) => r.certificate.notAfter <= now)) return 'expired';
  return 'none';
}

export async function answerLookup(cx: ConsoleContext, v: ConsoleView, address: string): Promise<Answer> {
  const store = cx.service.store;
  const local = await store.findRecipientCertificate(address);
  if (local) return { kind: 'yes', record: local, fromDirectory: false };
  const directory = await askDirectory(cx, v, address);
  if (directory && directory !== 'failed') return { kind: 'yes', record: directory, fromDirectory: true };
  const why = whyNot(await store.listCertificates({ email: address }), address, store.now());
  return { kind: 'no', why: why === 'none' && directory === 'failed' ? 'directory-failed' : why };
}

function answerHtml(v: ConsoleView, address: string, a: Answer): Html {
  const t = v.t.lookup;
  if (a.kind === 'yes') {
    const c = a.record.certificate;
    return h`<div class="notice good" role="status" data-lookup="yes"><p><strong>${t.yes(address)}</strong></p><p>${t.yesDetail(formatDate(v, c.notAfter), c.issuerText)}</p>${a.fromDirectory ? h`<p>${t.fromDirectory}</p>` : ''}</div>`;
  }
  return h`<div class="notice warn" role="status" data-lookup="${a.why}"><p><strong>${t.no(address)}</strong></p><p>${t.why[a.why]}</p><p>${t.whatToDo}</p></div>`;
}

export const lookupPage: ConsoleHandler = async (c, cx, v) => {
  const t = v.t.lookup;
  const typed = (c.req.query('address') ?? '').trim().slice(0, 330);
  let result: Html | string = '';
  let status = 200;
  if (typed) {
    takeRate(cx, 'lookup', v.person!.id, cx.rates.lookupPerPerson);
    if (!MAILBOX.test(typed) || typed.length > 320) {
      result = notice('bad', t.notAnAddress);
      status = 400;
    } else {
      const address = normalizeAddress(typed);
      result = answerHtml(v, address, await answerLookup(cx, v, address));
    }
  }
  const body = h`<p class="lead">${t.lead}</p>
<form class="card search" method="get" action="/lookup" role="search">
<div><label for="address">${t.address}</label><input id="address" name="address" type="email" value="${typed}" required maxlength="320" autocomplete="email"></div>
<div class="actions"><button type="submit">${t.submit}</button></div>
</form>
<div aria-live="polite">${result}</div>`;
  return page(v, { title: t.title, body, status });
};
