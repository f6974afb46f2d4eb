/**
 * Tenants of the signing service (issue 10): who may sign for which From domains
 * and addresses, and the API keys they call it with. Its own concept over the
 * store's SQL engine (style guide, "the store grows by concept"), migration 4.
 *
 * Ownership rules, decided here once for the CLI, the API and the console:
 * - a domain belongs to one tenant at most; an identity address to one tenant at
 *   most, and only within that tenant's domains;
 * - the tenant `default` always exists (implicitly until a key is made for it). It
 *   owns what no other tenant owns: with no domains of its own, every domain and
 *   address not claimed by another tenant, so a single company needs only
 *   `kakitome tenant key default`; once given domains, only those.
 *
 * API keys look like `kk_<16 hex id>_<43 base64url secret>`: the id is public and
 * finds the row; the 256-bit secret is stored as salt + HMAC-SHA-256(salt, secret)
 * and compared in constant time. Why not scrypt: the secret is random, not a
 * password; a slow hash would only slow every request, not an attacker.
 */
import { createHmac, createSecretKey, randomBytes, randomUUID, timingSafeEqual, type KeyObject } from 'node:crypto';
import { KakitomeError } from '../errors.ts';
import type { Row, SqlValue } from './sql-engine.ts';
import { isMailDomain } from '../x509/mailbox-address.ts';
import { normalizeAddress, type Store } from './store.ts';
import { parseSignSettings, SIGN_HASHES, type TenantSignSettings, type TenantSignSettingsChange } from './tenant-sign-settings.ts';

export { SIGN_HASHES, signSettingsInForce, type SignHash, type TenantSignSettings, type TenantSignSettingsChange } from './tenant-sign-settings.ts';

export type ApiScope = 'sign' | 'verify' | 'admin';
export const API_SCOPES: readonly ApiScope[] = ['sign', 'verify', 'admin'];
export const DEFAULT_TENANT = 'default';

export interface Tenant {
  /** Row id; for the implicit default tenant before it has a row: 'default'. */
  id: string;
  name: string;
  /** How its messages are signed when the request does not say (TenantSignSettings). */
  signSettings: TenantSignSettings;
  /** Its own domains; empty for a default tenant that owns every unclaimed domain. */
  domains: string[];
  /** Addresses registered as its identities. */
  identities: string[];
  /** True for the default tenant while it has no row. */
  implicit: boolean;
}

/** An API key's salted secret hash and its record, as authenticating it needs them. */
export interface ApiKeyCredential {
  /** The salt as an HMAC key (a KeyObject: HMAC with one costs a third of HMAC with raw bytes). */
  salt: KeyObject;
  /** HMAC-SHA-256(salt, secret). */
  digest: Buffer;
  record: ApiKeyRecord;
}

export interface ApiKeyRecord {
  id: string;
  tenant: string;
  scopes: ApiScope[];
  /** Requests per minute; undefined: no limit. */
  ratePerMinute?: number;
  label?: string;
  createdAt: Date;
  revokedAt?: Date;
}

const NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const TOKEN = /^kk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;
const SALT_BYTES = 16;

const str = (v: SqlValue | undefined): string | undefined => (v === null || v === undefined ? undefined : String(v));

/** The domain of an address (after the last "@"), lower-cased. */
export function domainOf(address: string): string {
  const a = normalizeAddress(address);
  return a.slice(a.lastIndexOf('@') + 1);
}

function checkName(name: string): string {
  if (!NAME.test(name)) throw new KakitomeError('INVALID_ARGUMENT', `"${name}" is not a tenant name: use 1 to 63 lower-case letters, digits, ".", "_" or "-", starting with a letter or digit.`);
  return name;
}

function checkDomain(domain: string): string {
  const d = domain.trim().toLowerCase().replace(/\.$/, '');
  if (!isMailDomain(d)) throw new KakitomeError('INVALID_ARGUMENT', `"${domain}" is not a mail domain (e.g. example.com; internationalised domains in their xn-- form).`);
  return d;
}

export function parseScopes(text: string): ApiScope[] {
  const scopes = [...new Set(text.split(',').map((s) => s.trim()).filter(Boolean))];
  const bad = scopes.filter((s) => !API_SCOPES.includes(s as ApiScope));
  if (bad.length || !scopes.length) throw new KakitomeError('INVALID_ARGUMENT', `Unknown scope ${bad.join(', ') || '(none)'}: scopes are ${API_SCOPES.join(', ')}.`);
  return scopes as ApiScope[];
}

function hashSecret(salt: Uint8Array | KeyObject, secret: string): Buffer {
  return createHmac('sha256', salt).update(secret).digest();
}

/** A salt for the comparison made when a key id is unknown, so that answer takes as long as a wrong secret. */
const DECOY = { salt: createSecretKey(randomBytes(SALT_BYTES)), digest: randomBytes(32) };

export class TenantDirectory {
  readonly #store: Store;

  constructor(store: Store) {
    this.#store = store;
  }

  get #engine() {
    return this.#store.engine;
  }

  async #tenantRow(name: string): Promise<{ id: string; name: string; signSettings: TenantSignSettings } | undefined> {
    const rows = await this.#engine.all('SELECT id, name, sign_settings FROM tenants WHERE name = ?', [name]);
    return rows[0] ? { id: String(rows[0].id), name: String(rows[0].name), signSettings: parseSignSettings(rows[0].sign_settings) } : undefined;
  }

  /** The tenant's row, created for `default` on first need; INVALID_ARGUMENT for an unknown other name. */
  async #requireTenantRow(name: string): Promise<{ id: string; name: string; signSettings: TenantSignSettings }> {
    const row = await this.#tenantRow(checkName(name));
    if (row) return row;
    if (name !== DEFAULT_TENANT) throw new KakitomeError('NOT_FOUND', `No tenant "${name}": add it first, with its mail domains.`, { remedy: 'tenant' });
    return this.#insertTenant(name);
  }

  async #insertTenant(name: string): Promise<{ id: string; name: string; signSettings: TenantSignSettings }> {
    const id = randomUUID();
    await this.#engine.run('INSERT INTO tenants (id, name, created_at) VALUES (?, ?, ?)', [id, name, this.#store.now().toISOString()]);
    await this.#store.audit('tenant.add', name);
    return { id, name, signSettings: {} };
  }

  /** Adds a tenant with its domains, or more domains to an existing one. A domain another tenant owns is refused. */
  async addTenant(name: string, domains: readonly string[]): Promise<Tenant> {
    checkName(name);
    const wanted = [...new Set(domains.map(checkDomain))];
    if (!wanted.length && name !== DEFAULT_TENANT) throw new KakitomeError('INVALID_ARGUMENT', `A tenant needs at least one mail domain (tenant "${name}" was given none).`, { remedy: 'tenantDomain' });
    const row = (await this.#tenantRow(name)) ?? (await this.#insertTenant(name));
    for (const d of wanted) {
      const owner = await this.#domainOwner(d);
      if (owner && owner.id !== row.id) throw new KakitomeError('INVALID_ARGUMENT', `The domain ${d} belongs to tenant "${owner.name}": a domain has one tenant.`);
      if (owner) continue;
      await this.#engine.run('INSERT INTO tenant_domains (domain, tenant_id, added_at) VALUES (?, ?, ?)', [d, row.id, this.#store.now().toISOString()]);
      await this.#store.audit('tenant.domain', name, d);
    }
    return (await this.findTenant(name))!;
  }

  async #domainOwner(domain: string): Promise<{ id: string; name: string } | undefined> {
    const rows = await this.#engine.all('SELECT t.id, t.name FROM tenant_domains d JOIN tenants t ON t.id = d.tenant_id WHERE d.domain = ?', [domain]);
    return rows[0] ? { id: String(rows[0].id), name: String(rows[0].name) } : undefined;
  }

  async #identityOwner(address: string): Promise<{ id: string; name: string } | undefined> {
    const rows = await this.#engine.all('SELECT t.id, t.name FROM tenant_identities i JOIN tenants t ON t.id = i.tenant_id WHERE i.email = ?', [address]);
    return rows[0] ? { id: String(rows[0].id), name: String(rows[0].name) } : undefined;
  }

  /** The tenant by name; the implicit default tenant when it has no row yet; undefined for an unknown name. */
  async findTenant(name: string): Promise<Tenant | undefined> {
    const row = await this.#tenantRow(name);
    if (!row) return name === DEFAULT_TENANT ? { id: DEFAULT_TENANT, name, signSettings: {}, domains: [], identities: [], implicit: true } : undefined;
    const domains = await this.#engine.all('SELECT domain FROM tenant_domains WHERE tenant_id = ? ORDER BY domain', [row.id]);
    const identities = await this.#engine.all('SELECT email FROM tenant_identities WHERE tenant_id = ? ORDER BY email', [row.id]);
    return { ...row, domains: domains.map((d) => String(d.domain)), identities: identities.map((i) => String(i.email)), implicit: false };
  }

  async listTenants(): Promise<Tenant[]> {
    const rows = await this.#engine.all('SELECT name FROM tenants ORDER BY name');
    const names = rows.map((r) => String(r.name));
    if (!names.includes(DEFAULT_TENANT)) names.unshift(DEFAULT_TENANT);
    const out: Tenant[] = [];
    for (const n of names) out.push((await this.findTenant(n))!);
    return out;
  }

  /**
   * FORBIDDEN unless `tenant` may sign or encrypt as `address`: its domain is the
   * tenant's (or, for a default tenant without domains, no one's), and the address
   * is the tenant's identity (or, for the default tenant, no one's). The message
   * says which rule refused it.
   */
  async authorizeSender(tenant: string, address: string): Promise<void> {
    const a = normalizeAddress(address);
    const domain = domainOf(a);
    const self = await this.findTenant(tenant);
    if (!self) throw new KakitomeError('FORBIDDEN', `The tenant "${tenant}" no longer exists.`);
    const domainOwner = await this.#domainOwner(domain);
    const domainOk = domainOwner ? domainOwner.name === tenant : tenant === DEFAULT_TENANT && self.domains.length === 0;
    if (!domainOk) throw new KakitomeError('FORBIDDEN', `The From address ${a} is outside the domains of tenant "${tenant}"${self.domains.length ? ` (${self.domains.join(', ')})` : ''}: it is not signed.`);
    const owner = await this.#identityOwner(a);
    if (owner ? owner.name !== tenant : tenant !== DEFAULT_TENANT) {
      throw new KakitomeError('FORBIDDEN', `${a} is not an identity of tenant "${tenant}": an administrator adds it to the tenant (its key and certificate, or a certificate the internal CA issues).`, { remedy: 'tenantIdentity' });
    }
  }

  /**
   * FORBIDDEN unless every address may become the tenant's identity: within its
   * domains (or unclaimed ones, for a default tenant without domains) and no other
   * tenant's identity. Check before importing or issuing, so a refused identity
   * leaves nothing behind.
   */
  async checkIdentities(tenant: string, addresses: readonly string[]): Promise<void> {
    const self = await this.findTenant(checkName(tenant));
    if (!self) throw new KakitomeError('NOT_FOUND', `No tenant "${tenant}": add it first, with its mail domains.`, { remedy: 'tenant' });
    if (!addresses.length) throw new KakitomeError('INVALID_ARGUMENT', 'The certificate names no e-mail address: it cannot be a signing identity.');
    for (const address of new Set(addresses.map(normalizeAddress))) {
      const domainOwner = await this.#domainOwner(domainOf(address));
      const domainOk = domainOwner ? domainOwner.name === tenant : tenant === DEFAULT_TENANT && self.domains.length === 0;
      if (!domainOk) throw new KakitomeError('FORBIDDEN', `${address} is outside the domains of tenant "${tenant}"${self.domains.length ? ` (${self.domains.join(', ')})` : ''}.`);
      const owner = await this.#identityOwner(address);
      if (owner && owner.name !== tenant) throw new KakitomeError('FORBIDDEN', `${address} is an identity of tenant "${owner.name}".`);
    }
  }

  /** Whether authorizeSender would let `tenant` act as `address`. */
  async ownsAddress(tenant: string, address: string): Promise<boolean> {
    try {
      await this.authorizeSender(tenant, address);
      return true;
    } catch (e) {
      if (e instanceof KakitomeError && e.code === 'FORBIDDEN') return false;
      throw e;
    }
  }

  /** Registers addresses as the tenant's identities (checkIdentities first; the caller imported or issued their certificates). */
  async registerIdentities(tenant: string, addresses: readonly string[]): Promise<Tenant> {
    await this.checkIdentities(tenant, addresses);
    const row = await this.#requireTenantRow(tenant);
    for (const address of new Set(addresses.map(normalizeAddress))) {
      if (await this.#identityOwner(address)) continue;
      await this.#engine.run('INSERT INTO tenant_identities (email, tenant_id, added_at) VALUES (?, ?, ?)', [address, row.id, this.#store.now().toISOString()]);
      await this.#store.audit('tenant.identity', tenant, address);
    }
    return (await this.findTenant(tenant))!;
  }

  /**
   * Changes the tenant's signing settings (TenantSignSettings): a setting given as
   * false (or hash null) goes back to its default; one not given stays. Takes effect
   * from the next message on every node (the tenants row moves the cache revision).
   * DKIM is turned on only while one of the tenant's domains has an active DKIM key
   * (KEY_INVALID otherwise): a setting that could only refuse every message is
   * refused itself. A message from a domain without a key is still refused when it
   * is signed (a key retired later, a second domain), never sent without DKIM.
   */
  async setSignSettings(tenant: string, changes: TenantSignSettingsChange): Promise<Tenant> {
    if (changes.hash !== undefined && changes.hash !== null && !SIGN_HASHES.includes(changes.hash)) throw new KakitomeError('INVALID_ARGUMENT', `hash ${String(changes.hash)}: use ${SIGN_HASHES.join(', ')}.`);
    for (const name of ['opaque', 'pss', 'dkim'] as const) {
      if (changes[name] !== undefined && typeof changes[name] !== 'boolean') throw new KakitomeError('INVALID_ARGUMENT', `${name} ${String(changes[name])}: use on or off (true or false).`);
    }
    if (changes.dkim === true) await this.#requireDkimKey(tenant);
    const row = await this.#requireTenantRow(tenant);
    const next: Record<string, unknown> = { ...row.signSettings };
    for (const name of ['opaque', 'pss', 'dkim'] as const) if (changes[name] !== undefined) next[name] = changes[name] || undefined;
    if (changes.hash !== undefined) next.hash = changes.hash ?? undefined;
    const settings = parseSignSettings(JSON.stringify(next));
    const text = Object.keys(settings).length ? JSON.stringify(settings) : null;
    await this.#engine.run('UPDATE tenants SET sign_settings = ? WHERE id = ?', [text, row.id]);
    await this.#store.audit('tenant.settings', tenant, text ?? '{}');
    return (await this.findTenant(tenant))!;
  }

  /** KEY_INVALID unless one of the tenant's domains (for a default tenant without domains: one no tenant claims) has an active DKIM key. */
  async #requireDkimKey(tenant: string): Promise<void> {
    const self = await this.findTenant(checkName(tenant));
    if (!self) throw new KakitomeError('NOT_FOUND', `No tenant "${tenant}": add it first, with its mail domains.`, { remedy: 'tenant' });
    const keyed = (await this.#engine.all("SELECT DISTINCT domain FROM dkim_keys WHERE status = 'active'")).map((r) => String(r.domain));
    for (const domain of keyed) {
      if (self.domains.length ? self.domains.includes(domain) : !(await this.#domainOwner(domain))) return;
    }
    const example = self.domains[0] ?? 'DOMAIN';
    throw new KakitomeError('KEY_INVALID', `Tenant "${tenant}" has no active DKIM key for ${self.domains.length ? `its domains (${self.domains.join(', ')})` : 'any of its domains'}: DKIM was not turned on. Add a DKIM key for ${example} first and publish its DNS record.`, { remedy: 'dkimKey' });
  }

  /** A new API key for the tenant; the token is returned once and only its hash is kept. */
  async createApiKey(tenant: string, options: { scopes: readonly ApiScope[]; ratePerMinute?: number; label?: string }): Promise<{ token: string; key: ApiKeyRecord }> {
    const row = await this.#requireTenantRow(tenant);
    const scopes = [...new Set(options.scopes)];
    if (!scopes.length) throw new KakitomeError('INVALID_ARGUMENT', 'An API key needs at least one scope.');
    const rate = checkRate(options.ratePerMinute);
    const id = randomBytes(8).toString('hex');
    const secret = randomBytes(32).toString('base64url');
    const salt = randomBytes(SALT_BYTES);
    await this.#engine.run('INSERT INTO api_keys (id, tenant_id, secret_hash, scopes, rate_per_minute, label, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)', [
      id, row.id, Buffer.concat([salt, hashSecret(salt, secret)]), scopes.join(','), rate ?? null, options.label ?? null, this.#store.now().toISOString(),
    ]);
    await this.#store.audit('api-key.create', id, `tenant ${tenant}, scopes ${scopes.join(',')}`);
    return { token: `kk_${id}_${secret}`, key: (await this.findApiKey(id))! };
  }

  async findApiKey(id: string): Promise<ApiKeyRecord | undefined> {
    return (await this.#apiKeys('k.id = ?', [id]))[0];
  }

  async listApiKeys(tenant?: string): Promise<ApiKeyRecord[]> {
    return tenant === undefined ? this.#apiKeys('1 = 1', []) : this.#apiKeys('t.name = ?', [tenant]);
  }

  async #apiKeys(where: string, params: SqlValue[]): Promise<ApiKeyRecord[]> {
    const rows = await this.#engine.all(`SELECT ${API_KEY_COLUMNS} FROM api_keys k JOIN tenants t ON t.id = k.tenant_id WHERE ${where} ORDER BY k.created_at, k.id`, params);
    return rows.map(apiKeyRecord);
  }

  /**
   * The key a bearer token names, if the token is well-formed, its key exists and
   * is not revoked, and its secret matches (constant-time). UNAUTHENTICATED
   * otherwise, with one message for every cause.
   */
  async authenticate(token: string): Promise<ApiKeyRecord> {
    const t = parseApiKeyToken(token);
    return checkApiKeySecret(t ? await this.findApiKeyCredential(t.id) : undefined, t?.secret);
  }

  /** What checking a key's secret needs, in one query: its salted hash and its record (undefined: no such key). */
  async findApiKeyCredential(id: string): Promise<ApiKeyCredential | undefined> {
    const rows = await this.#engine.all(`SELECT k.secret_hash, ${API_KEY_COLUMNS} FROM api_keys k JOIN tenants t ON t.id = k.tenant_id WHERE k.id = ?`, [id]);
    const r = rows[0];
    if (!r || !(r.secret_hash instanceof Uint8Array)) return undefined;
    const stored = Buffer.from(r.secret_hash);
    return { salt: createSecretKey(stored.subarray(0, SALT_BYTES)), digest: stored.subarray(SALT_BYTES), record: apiKeyRecord(r) };
  }

  /** Sets (or with undefined, removes) the key's requests-per-minute limit; takes effect on its next request. */
  async setRateLimit(id: string, ratePerMinute: number | undefined): Promise<ApiKeyRecord> {
    const rate = checkRate(ratePerMinute);
    const n = await this.#engine.run('UPDATE api_keys SET rate_per_minute = ? WHERE id = ?', [rate ?? null, id]);
    if (!n) throw new KakitomeError('NOT_FOUND', `No API key ${id}.`, { remedy: 'apiKeyId' });
    await this.#store.audit('api-key.rate-limit', id, rate === undefined ? 'none' : `${rate}/min`);
    return (await this.findApiKey(id))!;
  }

  async revokeApiKey(id: string): Promise<ApiKeyRecord> {
    const n = await this.#engine.run('UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL', [this.#store.now().toISOString(), id]);
    if (!n && !(await this.findApiKey(id))) throw new KakitomeError('NOT_FOUND', `No API key ${id}.`, { remedy: 'apiKeyId' });
    if (n) await this.#store.audit('api-key.revoke', id);
    return (await this.findApiKey(id))!;
  }
}

const API_KEY_COLUMNS = 'k.id, k.scopes, k.rate_per_minute, k.label, k.created_at, k.revoked_at, t.name AS tenant';

function apiKeyRecord(r: Row): ApiKeyRecord {
  return {
    id: String(r.id), tenant: String(r.tenant), scopes: String(r.scopes).split(',') as ApiScope[],
    ...(r.rate_per_minute !== null && r.rate_per_minute !== undefined ? { ratePerMinute: Number(r.rate_per_minute) } : {}),
    ...(str(r.label) ? { label: str(r.label)! } : {}),
    createdAt: new Date(String(r.created_at)),
    ...(str(r.revoked_at) ? { revokedAt: new Date(String(r.revoked_at)) } : {}),
  };
}

/** The key id and secret of a bearer token `kk_<id>_<secret>`; undefined when it has another shape. */
export function parseApiKeyToken(token: string): { id: string; secret: string } | undefined {
  const m = TOKEN.exec(token);
  return m ? { id: m[1]!, secret: m[2]! } : undefined;
}

/**
 * The key's record when `secret` matches its salted hash (constant-time) and the key
 * is not revoked; UNAUTHENTICATED otherwise, one message for every cause. An
 * unknown key (or token) is compared against a decoy, so it answers as slowly as a
 * wrong secret.
 */
export function checkApiKeySecret(credential: ApiKeyCredential | undefined, secret: string | undefined): ApiKeyRecord {
  const { salt, digest: expected } = credential ?? DECOY;
  const given = hashSecret(salt, secret ?? '');
  const match = expected.length === given.length && timingSafeEqual(expected, given);
  if (!match || !credential || secret === undefined || credential.record.revokedAt) {
    throw new KakitomeError('UNAUTHENTICATED', 'The API key is missing, unknown, revoked or wrong: send Authorization: Bearer <key> with an API key an administrator made for the tenant.');
  }
  return credential.record;
}

function checkRate(rate: number | undefined): number | undefined {
  if (rate === undefined) return undefined;
  if (!Number.isInteger(rate) || rate < 1 || rate > 10_000_000) throw new KakitomeError('INVALID_ARGUMENT', `A rate limit is a whole number of requests per minute from 1 to 10000000 (got ${rate}).`);
  return rate;
}
