/**
 * First run: the one-time setup link printed by `kakitome serve` opens this page
 * while the store has no administrator. Everything the form asks is checked
 * first (names, domains, password, the imported CA with its chain); only then is
 * the link used up (one of two racing requests wins) and the organisation, its CA
 * and the administrator created. The administrator is signed in at once. A store
 * that has its CA already (`kakitome ca init` before the first serve) keeps it: the
 * page says so and asks nothing about a CA.
 */
import { initCertificateAuthority } from '../../../ca/init-certificate-authority.ts';
import { checkImportedCa, importCertificateAuthority } from '../../../ca/import-certificate-authority.ts';
import { isKakitomeError, KakitomeError } from '../../../errors.ts';
import { importPkcs12, type Pkcs12Contents } from '../../../keys/import-pkcs12.ts';
import { checkOrganisationName, parseMailDomains } from '../../../store/organisation-settings.ts';
import { isMailboxAddressInAnyForm } from '../../../x509/mailbox-address.ts';
import { SETUP_MAX_BYTES, type ConsoleContext, type ConsoleHandler, type ConsoleView } from '../console-context.ts';
import { takeRate } from '../rate-limit.ts';
import { fileField, readForm, textField } from '../read-form.ts';
import { h, notice, page, seeOther, type Html } from '../render.ts';
import { findExistingCaName } from '../first-run.ts';
import { passwordProblem } from './password-rules.ts';
import { startSession } from './sign-in.ts';

interface SetupFields {
  organisation: string;
  domains: string;
  name: string;
  email: string;
  ca: 'create' | 'import';
}

async function linkIsOpen(cx: ConsoleContext, token: string): Promise<boolean> {
  return (await cx.people.countAdministrators()) === 0 && (await cx.sessions.checkLink(token, 'setup')) !== undefined;
}

function invalidLink(v: ConsoleView): Response {
  return page(v, { title: v.t.setup.title, status: 404, body: notice('warn', v.t.setup.invalidLink) });
}

/** `caName`: the CA the store has already (kept), or undefined (the form offers to create or import one). */
function setupForm(v: ConsoleView, token: string, caName: string | undefined, f: Partial<SetupFields> = {}, message?: Html): Html {
  const t = v.t.setup;
  const ca = f.ca ?? 'create';
  const caFields = caName !== undefined
    ? h`<p id="ca-kept">${t.caKept(caName)}</p>`
    : h`<label class="choice"><input type="radio" name="ca" value="create"${ca === 'create' ? h` checked` : ''} aria-describedby="ca-create-hint"><span>${t.caCreate}<span class="hint" id="ca-create-hint">${t.caCreateHint}</span></span></label>
<label class="choice"><input type="radio" name="ca" value="import"${ca === 'import' ? h` checked` : ''} aria-describedby="ca-import-hint"><span>${t.caImport}<span class="hint" id="ca-import-hint">${t.caImportHint}</span></span></label>
<div><label for="ca-file">${t.caFile}</label><input id="ca-file" name="ca-file" type="file" accept=".p12,.pfx,application/x-pkcs12"></div>
<div><label for="ca-password">${t.caPassword}</label><input id="ca-password" name="ca-password" type="password" autocomplete="off"></div>`;
  return h`
<p class="lead">${caName !== undefined ? t.leadCaKept : t.lead}</p>
${message ?? ''}
<form class="stack" method="post" action="/setup/${token}" enctype="multipart/form-data">
<fieldset class="stack"><legend>${t.organisation}</legend>
<div><label for="organisation">${t.organisationName}</label><input id="organisation" name="organisation" type="text" required maxlength="120" autocomplete="organization" aria-describedby="organisation-hint" value="${f.organisation ?? ''}"><p class="hint" id="organisation-hint">${caName !== undefined ? t.organisationHintCaKept : t.organisationHint}</p></div>
<div><label for="domains">${t.domains}</label><textarea id="domains" name="domains" required aria-describedby="domains-hint">${f.domains ?? ''}</textarea><p class="hint" id="domains-hint">${t.domainsHint}</p></div>
</fieldset>
<fieldset class="stack"><legend>${t.administrator}</legend>
<div><label for="name">${t.name}</label><input id="name" name="name" type="text" maxlength="200" autocomplete="name" value="${f.name ?? ''}"></div>
<div><label for="email">${t.email}</label><input id="email" name="email" type="email" required autocomplete="email" value="${f.email ?? ''}"></div>
<div><label for="password">${t.password}</label><input id="password" name="password" type="password" required minlength="8" autocomplete="new-password" aria-describedby="password-hint"><p class="hint" id="password-hint">${t.passwordHint}</p></div>
<div><label for="password2">${t.passwordAgain}</label><input id="password2" name="password2" type="password" required minlength="8" autocomplete="new-password"></div>
</fieldset>
<fieldset class="stack"><legend>${t.ca}</legend>
${caFields}
</fieldset>
<div class="actions"><button type="submit">${t.submit}</button></div>
</form>`;
}

export const setupPage: ConsoleHandler = async (c, cx, v) => {
  const token = c.req.param('token') ?? '';
  if (!(await linkIsOpen(cx, token))) return invalidLink(v);
  return page(v, { title: v.t.setup.title, body: setupForm(v, token, await findExistingCaName(cx)) });
};

export const setupSubmit: ConsoleHandler = async (c, cx, v) => {
  const token = c.req.param('token') ?? '';
  await takeRate(cx, 'link', v.client, cx.rates.linkPerAddress);
  if (!(await linkIsOpen(cx, token))) return invalidLink(v);
  const form = await readForm(c, SETUP_MAX_BYTES);
  const caName = await findExistingCaName(cx);
  const f: SetupFields = {
    organisation: textField(form, 'organisation', 200),
    domains: textField(form, 'domains', 10_000),
    name: textField(form, 'name', 300),
    email: textField(form, 'email', 320),
    ca: textField(form, 'ca', 10) === 'import' ? 'import' : 'create',
  };
  const password = textField(form, 'password', 4096, false);
  const again = (message: string) => page(v, { title: v.t.setup.title, status: 400, body: setupForm(v, token, caName, f, notice('bad', message)) });
  let imported: Pkcs12Contents | undefined;
  let domains: string[];
  try {
    checkOrganisationName(f.organisation);
    domains = parseMailDomains(f.domains);
    if (!domains.length) throw new KakitomeError('INVALID_ARGUMENT', v.t.setup.domainsHint);
    if (!isMailboxAddressInAnyForm(f.email)) throw new KakitomeError('INVALID_ARGUMENT', `${f.email}: ${v.t.setup.email}?`);
    const problem = passwordProblem(v, password, textField(form, 'password2', 4096, false));
    if (problem) return again(problem);
    if (caName === undefined && f.ca === 'import') {
      const file = await fileField(form, 'ca-file');
      if (!file) throw new KakitomeError('INVALID_ARGUMENT', v.t.setup.caImportHint);
      imported = importPkcs12(file, textField(form, 'ca-password', 4096, false), { maxBytes: SETUP_MAX_BYTES });
      if (!imported.key || !imported.certificate) throw new KakitomeError('KEY_INVALID', 'The PKCS#12 file holds no private key with its certificate.');
      checkImportedCa({ key: imported.key, certificate: imported.certificate, chain: imported.chain }, cx.service.store.now());
    }
  } catch (e) {
    if (isKakitomeError(e)) return again(e.message);
    throw e;
  }
  if (!(await cx.sessions.consumeLink(token, 'setup')) || (await cx.people.countAdministrators()) > 0) return invalidLink(v);
  const store = cx.service.store.actingAs(`console-setup:${f.email.toLowerCase()}`);
  await cx.organisation.setName(f.organisation);
  await cx.organisation.setDomains(domains);
  if (imported) await importCertificateAuthority(store, { key: imported.key!, certificate: imported.certificate!, chain: imported.chain });
  else if (caName === undefined) await initCertificateAuthority(store, { name: checkOrganisationName(f.organisation), organization: f.organisation });
  const admin = await cx.people.addPerson({ email: f.email, displayName: f.name, roles: ['administrator'], password, language: v.lang });
  await store.audit('console.setup', admin.email, `organisation ${f.organisation}, domains ${domains.join(' ')}, CA ${caName === undefined ? f.ca : `kept (${caName})`}`);
  const cookie = await startSession(cx, admin, v.sessionSecret);
  return seeOther('/admin?setup=done', { 'set-cookie': cookie });
};
