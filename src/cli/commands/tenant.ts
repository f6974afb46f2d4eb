/**
 * `kakitome tenant add|key|identity|retire-identity|settings|list|keys|limit|revoke-key`: the signing
 * service's tenants, their domains, identities and API keys (issue 10). The rules
 * live in src/store/tenant-directory.ts; these commands map options to it. Every
 * change is audited.
 */
import { Option, type Command } from 'commander';
import { KakitomeError } from '../../errors.ts';
import type { ApiKeyRecord, Tenant } from '../../store/tenant-directory.ts';
import { signSettingsInForce, type SignHash, type TenantSignSettings } from '../../store/tenant-sign-settings.ts';
import type { Store } from '../../store/store.ts';
import { readFileBounded } from '../io.ts';
import { resolvePassSpec } from '../pass-spec.ts';
import { collect, commandAction } from './message-options.ts';
import { addStoreOptions, printResult, withStore, type StoreCliOptions } from './store-options.ts';

interface AddOpts extends StoreCliOptions { domain?: string[] }
interface KeyOpts extends StoreCliOptions { scope: string; rate?: string; label?: string }
interface IdentityOpts extends StoreCliOptions { p12?: string; pass?: string; email?: string; keyType: string; days: string }
interface LimitOpts extends StoreCliOptions { perMinute?: string; none?: boolean }
interface RetireOpts extends StoreCliOptions { certificate?: string }
interface SettingsOpts extends StoreCliOptions { opaque?: string; hash?: string; pss?: string; dkim?: string }

async function directory(store: Store) {
  const { TenantDirectory } = await import('../../store/tenant-directory.ts');
  return new TenantDirectory(store);
}

function tenantJson(t: Tenant) {
  return { name: t.name, domains: t.domains, identities: t.identities, implicit: t.implicit, signing: signSettingsInForce(t.signSettings) };
}


function signingText(s: TenantSignSettings): string {
  return `${s.opaque ? 'opaque signed-data' : 'multipart/signed'}, digest ${s.hash ?? 'the key\'s default'}, ${s.pss ? 'RSASSA-PSS (RSA keys)' : 'PKCS#1 v1.5 (RSA keys)'}, ${s.dkim ? 'then DKIM with the From domain\'s keys' : 'no DKIM'}; content in 7-bit form (always)`;
}

const onOff = (text: string | undefined): boolean | undefined => (text === undefined ? undefined : text === 'on');

function keyJson(k: ApiKeyRecord) {
  return { id: k.id, tenant: k.tenant, scopes: k.scopes, ratePerMinute: k.ratePerMinute ?? null, label: k.label ?? null, createdAt: k.createdAt.toISOString(), revokedAt: k.revokedAt?.toISOString() ?? null };
}

function positive(text: string, option: string): number {
  if (!/^\d{1,8}$/.test(text) || Number(text) < 1) throw new KakitomeError('INVALID_ARGUMENT', `${option} ${text}: give a whole number of requests per minute, 1 or more.`);
  return Number(text);
}

export function register(program: Command): void {
  const tenant = program.command('tenant').summary('signing-service tenants: add, key, identity, retire-identity, settings, list, keys, limit, revoke-key')
    .description('Tenants of the signing service (kakitome serve): each signs only with its own identities and only for its own From domains. A store with no tenants has the tenant "default", which owns every domain and identity no other tenant claims: `kakitome tenant key default` is all a single company needs.');

  const add = tenant.command('add <name>').description('Add a tenant with its mail domains, or more domains to an existing tenant. A domain belongs to one tenant.')
    .option('--domain <domain>', 'a From domain the tenant signs for (repeatable)', collect);
  addStoreOptions(add).action((name: string, o: AddOpts) => commandAction('tenant add', async () => withStore(o, async (store) => {
    const t = await (await directory(store)).addTenant(name, o.domain ?? []);
    printResult(o, { status: 'ok', tenant: tenantJson(t) }, () => [`Tenant ${t.name}: ${t.domains.join(', ') || 'every domain no other tenant has'}.`]);
    return 0;
  }))(o));

  const key = tenant.command('key <name>').description('Create an API key for the tenant and print it once: only its hash is stored. Send it as Authorization: Bearer <key>.')
    .option('--scope <scopes>', 'comma-separated: sign (sign, encrypt), verify (verify, decrypt), admin', 'sign,verify')
    .option('--rate <per-minute>', 'requests per minute allowed to this key (default: no limit)')
    .option('--label <text>', 'a note to recognise the key by');
  addStoreOptions(key).action((name: string, o: KeyOpts) => commandAction('tenant key', async () => {
    const { parseScopes } = await import('../../store/tenant-directory.ts');
    const scopes = parseScopes(o.scope);
    const rate = o.rate === undefined ? undefined : positive(o.rate, '--rate');
    return withStore(o, async (store) => {
      const { token, key: k } = await (await directory(store)).createApiKey(name, { scopes, ...(rate ? { ratePerMinute: rate } : {}), ...(o.label ? { label: o.label } : {}) });
      printResult(o, { status: 'ok', key: token, record: keyJson(k) }, () => [token]);
      if (!o.json) process.stderr.write(`API key ${k.id} for tenant ${k.tenant} (${k.scopes.join(', ')}): shown once, keep it now.\n`);
      return 0;
    });
  })(o));

  const identity = tenant.command('identity <name>').description('Give the tenant a signing identity: a PKCS#12 (its key and certificate are imported into the store), or a certificate issued now by the internal CA for --email. The addresses must be within the tenant\'s domains.')
    .option('--p12 <file>', 'PKCS#12 file (.p12/.pfx) with the key and certificate')
    .option('--pass <spec>', 'its password: file:PATH, fd:N, env:VAR, stdin or prompt (pass:TEXT is visible in ps)')
    .option('--email <address>', 'issue a certificate for this address from the internal CA (kakitome ca init) instead')
    .addOption(new Option('--key-type <type>', 'with --email: key type').choices(['rsa2048', 'rsa3072', 'p256', 'p384']).default('rsa2048'))
    .option('--days <n>', 'with --email: validity in days', '365');
  addStoreOptions(identity).action((name: string, o: IdentityOpts) => commandAction('tenant identity', async () => {
    if ((o.p12 === undefined) === (o.email === undefined)) throw new KakitomeError('INVALID_ARGUMENT', 'Give --p12 FILE or --email ADDRESS (one of them).');
    const pass = o.p12 !== undefined ? await resolvePassSpec(o.pass ?? 'prompt') : undefined;
    const bytes = o.p12 !== undefined ? await readFileBounded(o.p12, `--p12 ${o.p12}`) : undefined;
    return withStore(o, async (store) => {
      const tenants = await directory(store);
      let added;
      if (bytes !== undefined) {
        const [{ importPkcs12 }, { addTenantIdentityFromPkcs12 }] = await Promise.all([import('../../keys/import-pkcs12.ts'), import('../../store/add-tenant-identity.ts')]);
        added = await addTenantIdentityFromPkcs12(store, tenants, name, importPkcs12(bytes, pass!), o.p12!);
      } else {
        const { issueTenantIdentity } = await import('../../ca/issue-tenant-identity.ts');
        added = await issueTenantIdentity(store, tenants, name, { email: o.email!, keyType: o.keyType as 'rsa2048', validityDays: Number(o.days) });
      }
      const { tenant: t, addresses, fingerprint } = added;
      printResult(o, { status: 'ok', tenant: tenantJson(t), certificate: fingerprint, identities: addresses }, () => [`Tenant ${t.name} signs as ${addresses.join(', ')} (certificate ${fingerprint.slice(0, 16)}).`]);
      return 0;
    });
  })(o));

  const retire = tenant.command('retire-identity <name> <address>').description('Retire a signing identity of the tenant: the keys of its certificates stop signing at once (on every node sharing the store) and still decrypt old mail. The address stays the tenant\'s, for a new identity.')
    .option('--certificate <fingerprint>', 'retire only the key of this certificate (SHA-256 fingerprint), e.g. the old one after a renewal with a new key');
  addStoreOptions(retire).action((name: string, address: string, o: RetireOpts) => commandAction('tenant retire-identity', async () => withStore(o, async (store) => {
    const { retireTenantIdentity } = await import('../../store/retire-tenant-identity.ts');
    const r = await retireTenantIdentity(store, await directory(store), name, address, o.certificate ? { fingerprint: o.certificate } : {});
    printResult(o, { status: 'ok', ...r }, () => [r.retired.length ? `${r.address}: ${r.retired.length} key${r.retired.length > 1 ? 's' : ''} retired (${r.retired.map((k) => k.keyId).join(', ')}).` : `${r.address}: no active key left to retire.`]);
    return 0;
  }))(o));

  const settings = tenant.command('settings <name>').description('Show or change how the tenant\'s messages are signed when the request does not say: POST /api/v1/sign and batches without the option in their query, and every message of the SMTP submission port (kakitome serve --smtp), which has no per-message options. Takes effect from the next message, on every node.')
    .addOption(new Option('--opaque <on|off>', 'an opaque application/pkcs7-mime signed-data (readable only by S/MIME clients) instead of multipart/signed').choices(['on', 'off']))
    .addOption(new Option('--hash <alg>', 'digest algorithm; default: the key\'s (SHA-256; fixed for Ed25519)').choices(['sha256', 'sha384', 'sha512', 'default']))
    .addOption(new Option('--pss <on|off>', 'RSASSA-PSS instead of PKCS#1 v1.5, for the tenant\'s RSA identities').choices(['on', 'off']))
    .addOption(new Option('--dkim <on|off>', 'then DKIM-sign with the active DKIM keys of the From domain (kakitome dkim add); a message whose domain has none is refused, never sent without').choices(['on', 'off']));
  addStoreOptions(settings).action((name: string, o: SettingsOpts) => commandAction('tenant settings', async () => withStore(o, async (store) => {
    const tenants = await directory(store);
    const changes = { opaque: onOff(o.opaque), pss: onOff(o.pss), dkim: onOff(o.dkim), hash: o.hash === undefined ? undefined : o.hash === 'default' ? null : (o.hash as SignHash) };
    const changing = Object.values(changes).some((v) => v !== undefined);
    const t = changing ? await tenants.setSignSettings(name, changes) : await tenants.findTenant(name);
    if (!t) throw new KakitomeError('NOT_FOUND', `No tenant "${name}": add it with kakitome tenant add ${name} --domain DOMAIN.`);
    printResult(o, { status: 'ok', tenant: t.name, signing: signSettingsInForce(t.signSettings) }, () => [`Tenant ${t.name} signs: ${signingText(t.signSettings)}.`]);
    return 0;
  }))(o));
  const list = tenant.command('list').description('List tenants with their domains and identities.');
  addStoreOptions(list).action(commandAction('tenant list', async (o: StoreCliOptions) => withStore(o, async (store) => {
    const all = await (await directory(store)).listTenants();
    printResult(o, { tenants: all.map(tenantJson) }, () => all.map((t) => `${t.name}  ${t.domains.join(',') || '(every unclaimed domain)'}  ${t.identities.join(' ')}`));
    return 0;
  })));

  const keys = tenant.command('keys [name]').description('List API keys (ids, scopes, limits; never the secrets), of one tenant or all.');
  addStoreOptions(keys).action((name: string | undefined, o: StoreCliOptions) => commandAction('tenant keys', async () => withStore(o, async (store) => {
    const all = await (await directory(store)).listApiKeys(name);
    printResult(o, { keys: all.map(keyJson) }, () => all.map((k) => `${k.id}  ${k.tenant}  ${k.scopes.join(',')}  ${k.ratePerMinute ? `${k.ratePerMinute}/min` : 'no limit'}${k.revokedAt ? '  REVOKED' : ''}  ${k.label ?? ''}`));
    return 0;
  }))(o));

  const limit = tenant.command('limit <key-id>').description('Set the requests per minute an API key may make (none by default); it takes effect on the key\'s next request.')
    .option('--per-minute <n>', 'requests per minute')
    .option('--none', 'remove the limit');
  addStoreOptions(limit).action((id: string, o: LimitOpts) => commandAction('tenant limit', async () => {
    if ((o.perMinute === undefined) === (o.none !== true)) throw new KakitomeError('INVALID_ARGUMENT', 'Give --per-minute N or --none.');
    const rate = o.perMinute === undefined ? undefined : positive(o.perMinute, '--per-minute');
    return withStore(o, async (store) => {
      const k = await (await directory(store)).setRateLimit(id, rate);
      printResult(o, { status: 'ok', record: keyJson(k) }, () => [`API key ${k.id}: ${k.ratePerMinute ? `${k.ratePerMinute} requests per minute` : 'no limit'}.`]);
      return 0;
    });
  })(o));

  const revoke = tenant.command('revoke-key <key-id>').description('Revoke an API key: its next request is refused (401).');
  addStoreOptions(revoke).action((id: string, o: StoreCliOptions) => commandAction('tenant revoke-key', async () => withStore(o, async (store) => {
    const k = await (await directory(store)).revokeApiKey(id);
    printResult(o, { status: 'ok', record: keyJson(k) }, () => [`API key ${k.id} revoked.`]);
    return 0;
  }))(o));
}
