/**
 * The signing service's tenants, identities and API keys (administrators only),
 * by the directory the CLI uses (`kakitome tenant ...`): TenantDirectory
 * (addTenant: a tenant or more domains for it; createApiKey: the key shown once,
 * only its hash stored; setRateLimit; revokeApiKey), issueTenantIdentity (a
 * certificate from the organisation's CA, key made and sealed on the server) and
 * addTenantIdentityFromPkcs12 (an uploaded PKCS#12, checked by importPkcs12's
 * limits), retireTenantIdentity (as `kakitome tenant retire-identity` and
 * DELETE /api/v1/identities/{address}: its keys stop signing, still decrypt old
 * mail), and setSignSettings (the tenant's signing settings, as `kakitome tenant
 * settings` and PATCH /api/v1/tenants/{tenant}/settings). Every change is audited
 * under the administrator's name.
 */
import { requireStepUp } from '../step-up.ts';
import { issueTenantIdentity } from '../../../ca/issue-tenant-identity.ts';
import { isKakitomeError } from '../../../errors.ts';
import { importPkcs12 } from '../../../keys/import-pkcs12.ts';
import { addTenantIdentityFromPkcs12 } from '../../../store/add-tenant-identity.ts';
import { retireTenantIdentity } from '../../../store/retire-tenant-identity.ts';
import { API_SCOPES, parseScopes, SIGN_HASHES, signSettingsInForce, TenantDirectory, type ApiKeyRecord, type SignHash, type Tenant } from '../../../store/tenant-directory.ts';
import { ProblemError } from '../../problem.ts';
import { actingFor, FORM_MAX_BYTES, SETUP_MAX_BYTES, type ConsoleContext, type ConsoleHandler, type ConsoleView } from '../console-context.ts';
import { takeRate } from '../rate-limit.ts';
import { fileField, readForm, textField, textFields } from '../read-form.ts';
import { formatDate, h, notice, page, type Html } from '../render.ts';

/** Identities issued or uploaded a minute per administrator (a key is made, or a PKCS#12's KDF run). */
export const IDENTITIES_PER_MINUTE = 10;
const KEY_TYPES = ['rsa2048', 'rsa3072', 'p256', 'p384'] as const;

function tenantOptions(tenants: readonly Tenant[]): Html[] {
  return tenants.map((t) => h`<option value="${t.name}">${t.name}</option>`);
}

function keyRow(v: ConsoleView, k: ApiKeyRecord): Html {
  const t = v.t.tenants;
  return h`<tr data-key="${k.id}"><td><code>${k.id}</code></td><td>${k.tenant}</td><td>${k.scopes.join(', ')}</td><td>${k.label ?? ''}</td><td>${k.revokedAt ? h`<span class="status bad">${t.revokedOn(formatDate(v, k.revokedAt))}</span>` : h`<span class="status good">${t.active}</span>`}</td>
<td>${k.revokedAt ? (k.ratePerMinute ? t.perMinute(k.ratePerMinute) : t.noLimit) : h`<form method="post" action="/admin/tenants/keys/${k.id}/limit" class="inline"><label for="rate-${k.id}" class="visually-hidden">${t.rate}: ${k.id}</label><input id="rate-${k.id}" name="rate" type="number" min="0" max="1000000" value="${k.ratePerMinute ?? ''}"><button class="secondary" type="submit">${t.setRate}</button></form>`}</td>
<td>${k.revokedAt ? '' : h`<form method="post" action="/admin/tenants/keys/${k.id}/revoke"><button class="danger" type="submit">${t.revoke}</button></form>`}</td></tr>`;
}

/** The tenant's signing settings as a form: each box unticked is off, as the defaults are. */
function settingsForm(v: ConsoleView, x: Tenant): Html {
  const t = v.t.tenants;
  const s = signSettingsInForce(x.signSettings);
  const box = (name: 'opaque' | 'pss' | 'dkim') => h`<label class="choice"><input type="checkbox" name="${name}" value="on"${s[name] ? h` checked` : ''}><span>${t[name]}</span></label>`;
  return h`<form method="post" action="/admin/tenants/settings" class="stack" data-settings="${x.name}" aria-label="${t.signingLabel(x.name)}"><input type="hidden" name="tenant" value="${x.name}">
${box('opaque')}<div><label for="s-hash-${x.name}">${t.hash}</label><select id="s-hash-${x.name}" name="hash">${(['default', ...SIGN_HASHES] as const).map((a) => h`<option value="${a}"${s.hash === a ? h` selected` : ''}>${a === 'default' ? t.hashDefault : a}</option>`)}</select></div>
${box('pss')}${box('dkim')}<div class="actions"><button class="secondary" type="submit">${t.saveSettings}</button></div></form>`;
}

function retireForm(v: ConsoleView, tenant: string, address: string): Html {
  const t = v.t.tenants;
  return h`<form method="post" action="/admin/tenants/identity/retire" class="inline" data-identity="${address}"><input type="hidden" name="tenant" value="${tenant}"><input type="hidden" name="address" value="${address}"><span>${address}</span> <button class="secondary" type="submit" aria-label="${t.retireLabel(address)}">${t.retire}</button></form>`;
}

async function tenantsPage(cx: ConsoleContext, v: ConsoleView, message?: Html, status = 200): Promise<Response> {
  const t = v.t.tenants;
  const dir = new TenantDirectory(cx.service.store);
  const [tenants, keys] = await Promise.all([dir.listTenants(), dir.listApiKeys()]);
  const body = h`${message ?? ''}
<p>${t.lead}</p>
<div class="table-wrap"><table><caption>${t.tenants}</caption><thead><tr><th scope="col">${t.name}</th><th scope="col">${t.domains}</th><th scope="col">${t.identities}</th><th scope="col">${t.signing}</th></tr></thead>
<tbody>${tenants.map((x) => h`<tr data-tenant="${x.name}"><td>${x.name}</td><td>${x.domains.join(', ') || t.everyDomain}</td><td>${x.identities.length ? x.identities.map((a) => retireForm(v, x.name, a)) : '—'}</td><td>${settingsForm(v, x)}</td></tr>`)}</tbody></table></div>
<form class="card stack" method="post" action="/admin/tenants">
<h2>${t.add}</h2><p>${t.addLead}</p>
<div><label for="t-name">${t.name}</label><input id="t-name" name="name" type="text" maxlength="63" required></div>
<div><label for="t-domains">${t.domains}</label><textarea id="t-domains" name="domains" rows="2" aria-describedby="t-domains-hint"></textarea><p class="hint" id="t-domains-hint">${t.domainsHint}</p></div>
<div class="actions"><button type="submit">${t.addSubmit}</button></div></form>
<form class="card stack" method="post" action="/admin/tenants/identity" enctype="multipart/form-data">
<h2>${t.identity}</h2><p>${t.identityLead}</p>
<div><label for="i-tenant">${t.tenant}</label><select id="i-tenant" name="tenant">${tenantOptions(tenants)}</select></div>
<div><label for="i-email">${t.email}</label><input id="i-email" name="email" type="email" maxlength="320"></div>
<div><label for="i-key-type">${v.t.person.keyType}</label><select id="i-key-type" name="key-type">${KEY_TYPES.map((k) => h`<option value="${k}">${k}</option>`)}</select></div>
<div><label for="i-p12">${t.p12}</label><input id="i-p12" name="p12" type="file" accept=".p12,.pfx,application/x-pkcs12"></div>
<div><label for="i-pass">${t.p12Password}</label><input id="i-pass" name="password" type="password" autocomplete="off" maxlength="1024"></div>
<div class="actions"><button type="submit">${t.identitySubmit}</button></div></form>
<h2>${t.keys}</h2>
${keys.length ? h`<div class="table-wrap"><table><thead><tr><th scope="col">${t.keyId}</th><th scope="col">${t.tenant}</th><th scope="col">${t.scopes}</th><th scope="col">${t.label}</th><th scope="col">${v.t.people.status}</th><th scope="col">${t.rate}</th><th scope="col"><span class="visually-hidden">${t.revoke}</span></th></tr></thead>
<tbody>${keys.map((k) => keyRow(v, k))}</tbody></table></div>` : notice('info', t.noKeys)}
<form class="card stack" method="post" action="/admin/tenants/keys">
<h2>${t.newKey}</h2><p>${t.newKeyLead}</p>
<div><label for="k-tenant">${t.tenant}</label><select id="k-tenant" name="tenant">${tenantOptions(tenants)}</select></div>
<fieldset><legend>${t.scopes}</legend>${API_SCOPES.map((s) => h`<label class="choice"><input type="checkbox" name="scope" value="${s}"${s !== 'admin' ? h` checked` : ''}><span>${t.scopeNames[s]}</span></label>`)}</fieldset>
<div><label for="k-rate">${t.rate}</label><input id="k-rate" name="rate" type="number" min="0" max="1000000"></div>
<div><label for="k-label">${t.label}</label><input id="k-label" name="label" type="text" maxlength="100"></div>
<div class="actions"><button type="submit">${t.newKeySubmit}</button></div></form>`;
  return page(v, { title: t.title, body, status });
}

/** Runs a change; a refusal of the library (INVALID_ARGUMENT...) is shown on the page with 400. */
async function change(cx: ConsoleContext, v: ConsoleView, run: () => Promise<Html>): Promise<Response> {
  let message: Html;
  try {
    message = await run();
  } catch (e) {
    if (isKakitomeError(e)) return tenantsPage(cx, v, notice('bad', e.message), isKakitomeError(e, 'NOT_FOUND') ? 404 : 400);
    throw e;
  }
  return tenantsPage(cx, v, message);
}

function rateOf(text: string): number | undefined {
  if (text === '' || text === '0') return undefined;
  if (!/^\d{1,7}$/.test(text) || Number(text) > 1_000_000) throw new ProblemError(400, 'INVALID_ARGUMENT', 'A rate is a whole number of requests per minute.');
  return Number(text);
}

export const tenantsView: ConsoleHandler = async (_c, cx, v) => tenantsPage(cx, v);

export const addTenant: ConsoleHandler = async (c, cx, v) => {
  const form = await readForm(c, FORM_MAX_BYTES);
  const name = textField(form, 'name', 63);
  const domains = textField(form, 'domains', 10_000).split(/[\s,]+/).filter(Boolean).slice(0, 100);
  return change(cx, v, async () => {
    const x = await new TenantDirectory(actingFor(cx, v).store).addTenant(name, domains);
    return notice('good', v.t.tenants.added(x.name, x.domains.join(', ') || v.t.tenants.everyDomain));
  });
};

export const changeSettings: ConsoleHandler = async (c, cx, v) => {
  const form = await readForm(c, FORM_MAX_BYTES);
  const tenant = textField(form, 'tenant', 63);
  const hash = textField(form, 'hash', 10) || 'default';
  if (!tenant || !(hash === 'default' || (SIGN_HASHES as readonly string[]).includes(hash))) return tenantsPage(cx, v, notice('bad', v.t.errors.badForm), 400);
  const on = (name: string) => textField(form, name, 3) === 'on';
  return change(cx, v, async () => {
    const x = await new TenantDirectory(actingFor(cx, v).store).setSignSettings(tenant, { opaque: on('opaque'), pss: on('pss'), dkim: on('dkim'), hash: hash === 'default' ? null : (hash as SignHash) });
    return notice('good', v.t.tenants.settingsSaved(x.name));
  });
};

export const addIdentity: ConsoleHandler = async (c, cx, v) => {
  await takeRate(cx, 'tenant-identity', v.person!.id, IDENTITIES_PER_MINUTE);
  const form = await readForm(c, SETUP_MAX_BYTES);
  const tenant = textField(form, 'tenant', 63);
  const email = textField(form, 'email', 320);
  const p12 = await fileField(form, 'p12');
  const keyType = textField(form, 'key-type', 20) || 'rsa2048';
  if ((p12 === undefined) === (email === '')) return tenantsPage(cx, v, notice('bad', v.t.tenants.identityOne), 400);
  if (!(KEY_TYPES as readonly string[]).includes(keyType)) return tenantsPage(cx, v, notice('bad', v.t.errors.badForm), 400);
  const store = actingFor(cx, v).store;
  return change(cx, v, async () => {
    const dir = new TenantDirectory(store);
    const added = p12
      ? await addTenantIdentityFromPkcs12(store, dir, tenant, importPkcs12(p12, textField(form, 'password', 1024, false)), 'console upload')
      : await issueTenantIdentity(store, dir, tenant, { email, keyType: keyType as (typeof KEY_TYPES)[number], validityDays: 365 });
    return notice('good', v.t.tenants.identityAdded(added.tenant.name, added.addresses.join(', ')));
  });
};

export const createKey: ConsoleHandler = async (c, cx, v) => {
  const form = await readForm(c, FORM_MAX_BYTES);
  const tenant = textField(form, 'tenant', 63);
  const label = textField(form, 'label', 100);
  // A key of admin scope administers every tenant: it asks for a fresh proof of presence (step-up.ts).
  if (textFields(form, 'scope', 3).includes('admin')) await requireStepUp(cx, v, '/admin/tenants');
  return change(cx, v, async () => {
    const scopes = parseScopes(textFields(form, 'scope', 3).join(','));
    const rate = rateOf(textField(form, 'rate', 10));
    const { token, key } = await new TenantDirectory(actingFor(cx, v).store).createApiKey(tenant, { scopes, ...(rate ? { ratePerMinute: rate } : {}), ...(label ? { label } : {}) });
    return h`<div class="notice good" role="status"><p>${v.t.tenants.keyReady(key.id, key.tenant)}</p><p class="secret" data-api-key>${token}</p></div>`;
  });
};

export const revokeKey: ConsoleHandler = async (c, cx, v) => {
  const id = c.req.param('id') ?? '';
  await readForm(c, FORM_MAX_BYTES);
  return change(cx, v, async () => {
    const k = await new TenantDirectory(actingFor(cx, v).store).revokeApiKey(id.slice(0, 100));
    return notice('good', v.t.tenants.keyRevoked(k.id));
  });
};

export const limitKey: ConsoleHandler = async (c, cx, v) => {
  const id = c.req.param('id') ?? '';
  const form = await readForm(c, FORM_MAX_BYTES);
  const rate = rateOf(textField(form, 'rate', 10));
  return change(cx, v, async () => {
    const k = await new TenantDirectory(actingFor(cx, v).store).setRateLimit(id.slice(0, 100), rate);
    return notice('good', v.t.tenants.rateSet(k.id, k.ratePerMinute ? v.t.tenants.perMinute(k.ratePerMinute) : v.t.tenants.noLimit));
  });
};

export const retireIdentity: ConsoleHandler = async (c, cx, v) => {
  const form = await readForm(c, FORM_MAX_BYTES);
  const tenant = textField(form, 'tenant', 63);
  const address = textField(form, 'address', 320);
  if (!tenant || !address) return tenantsPage(cx, v, notice('bad', v.t.errors.badForm), 400);
  return change(cx, v, async () => {
    const store = actingFor(cx, v).store;
    const r = await retireTenantIdentity(store, new TenantDirectory(store), tenant, address);
    await store.audit('tenant.identity.retire', r.address, `tenant ${tenant}: ${r.retired.length ? `keys ${r.retired.map((k) => k.keyId).join(', ')}` : 'no active key'}`);
    return notice('good', r.retired.length ? v.t.tenants.retired(r.address, r.retired.length) : v.t.tenants.nothingToRetire(r.address));
  });
};
