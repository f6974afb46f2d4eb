/**
 * What the signing service reads from the store for every message (the API key,
 * whether the tenant may sign as the From address, the signing identity with its
 * opened key and chain), kept between requests and exact at every one.
 *
 * Each request first reads the store's cache revision (store/cache-revision.ts:
 * one row that triggers raise in the transaction of every change to tenants,
 * domains, identities, API keys, certificates and keys, whoever makes it: another
 * node, the CLI, SQL). If it moved, everything kept is dropped and read again. So
 * a revoked key, a new rate limit, a new, renewed, revoked or retired identity
 * counts from the next request on, on every node, as docs/api.md promises; what
 * changes by the clock alone (an identity expiring, a renewal dated ahead) is kept
 * only until that moment. A request costs one small indexed read (SQLite: a few
 * microseconds); the requests that arrive in one turn of the event loop share one
 * read, and on PostgreSQL those that arrive while one read is out share the next
 * one, which is sent after they arrived.
 *
 * The identity's private key stays opened in this thread between messages, as the
 * store's own reuse cache keeps it (reuse-cache.ts: the process that holds the
 * master key can open any key at any moment). The store records each opening
 * (key.use.sign, committed before the key is handed out) and the service each
 * message it signs with it (api.sign or smtp.sign, naming the certificate,
 * committed before the answer leaves), as the gateway records one opening a
 * minute and each message: nothing is answered whose use is not in the audit log.
 *
 * The signer validator that verifies received signatures (POST /verify, /decrypt,
 * the console's check page) is kept here too, one per revocation mode, under the
 * same revision: a new trust anchor, a trust decision, a revoked or new
 * certificate moves it and the next request gets a new validator. Kept, its
 * caches serve every request: validated chains, revocation answers and failed
 * downloads (remembered 30 s), and concurrent checks of one certificate share one
 * CRL or OCSP download. A validator per request had none of that: 50 uploads at
 * once made 150 name lookups for the CA's revocation locations, which queue for
 * libuv's four threads, and a lookup whose UDP answer the resolver dropped holds
 * its thread for glibc's 5 s retry; the 50 answers took 22 s with 2.4 s of CPU.
 *
 * Hostile input cannot grow it: each map holds at most MAX_ENTRIES (unknown key
 * ids and addresses included) and is emptied when full.
 */
import { hash, timingSafeEqual } from 'node:crypto';
import type { KakitomeError } from '../errors.ts';
import { isKakitomeError } from '../errors.ts';
import { readCacheRevision } from '../store/cache-revision.ts';
import { createTrustValidator } from '../operations/create-trust-validator.ts';
import { storeTrustOptions } from '../operations/trust-options.ts';
import type { RevocationMode } from '../pki/check-revocation.ts';
import type { Fetcher, SignerValidator } from '../pki/types.ts';
import { SigningAddressAnswers } from '../smime/read-signing-address.ts';
import type { SigningIdentity } from '../store/key-directory.ts';
import { normalizeAddress, type Store } from '../store/store.ts';
import { actorOf } from './service-context.ts';
import { checkApiKeySecret, parseApiKeyToken, type ApiKeyCredential, type ApiKeyRecord, type TenantDirectory, type TenantSignSettings } from '../store/tenant-directory.ts';

const MAX_ENTRIES = 10_000;

export interface ServiceCacheOptions {
  /** Where the validators fetch CRLs and OCSP answers (default: HTTP, no internal address). */
  fetcher?: Fetcher;
}

export class ServiceCache {
  readonly #store: Store;
  readonly #tenants: TenantDirectory;
  #revision = -1;
  /** Raised whenever the maps are emptied: a lookup started before that is not kept. */
  #generation = 0;
  #inFlight: Promise<void> | undefined;
  #next: Promise<void> | undefined;
  readonly #credentials = new Map<string, ApiKeyCredential | null>();
  /** Per key id, the SHA-256 of the secret that passed the salted check under this revision, with the key's record. */
  readonly #verified = new Map<string, { digest: Buffer; record: ApiKeyRecord }>();
  readonly #senders = new Map<string, KakitomeError | null>();
  /** The answer for an address, true from `from` (when it was read) until `until` (expiry, or a renewal dated ahead). */
  readonly #identities = new Map<string, { identity: SigningIdentity | undefined; from: number; until: number }>();
  /** Per tenant name, its signing settings (TenantDirectory.findTenant). */
  readonly #signSettings = new Map<string, TenantSignSettings>();
  /** Per key id, the store acting for that key (Store.actingAs): one view, not one per message. */
  readonly #views = new Map<string, Store>();
  /** Per revocation mode, the validator of received signatures (built on first use under this revision). */
  readonly #validators = new Map<RevocationMode, SignerValidator>();
  readonly #fetcher: Fetcher | undefined;
  /**
   * The From address each From and Sender value was read as (readSigningAddressOf),
   * at most 1,024 answers. Read from the message alone, never from the store: kept
   * across cache revisions.
   */
  readonly signingAddresses = new SigningAddressAnswers(1024);

  constructor(store: Store, tenants: TenantDirectory, options: ServiceCacheOptions = {}) {
    this.#store = store;
    this.#tenants = tenants;
    this.#fetcher = options.fetcher;
  }

  /**
   * Reads the cache revision (once per request, before the lookups) and drops
   * everything kept when it moved. A read already sent may predate the caller's
   * request, so the caller waits for one sent after it.
   */
  refresh(): Promise<void> {
    // Sent in this turn's check phase (setImmediate), after the read in flight, failed
    // or not (a failed read fails only its own callers): every request that arrived
    // in this turn of the event loop shares one read, sent after they all arrived.
    this.#next ??= new Promise<void>((turn) => setImmediate(turn)).then(() => this.#inFlight?.catch(() => undefined)).then(() => {
      this.#next = undefined;
      const read = this.#read();
      this.#inFlight = read;
      return read.finally(() => {
        if (this.#inFlight === read) this.#inFlight = undefined;
      });
    });
    return this.#next;
  }

  async #read(): Promise<void> {
    const revision = await readCacheRevision(this.#store.engine);
    if (revision !== this.#revision) {
      this.#revision = revision;
      this.#drop();
    }
  }

  #drop(): void {
    this.#generation++;
    this.#credentials.clear();
    this.#verified.clear();
    this.#senders.clear();
    this.#identities.clear();
    this.#signSettings.clear();
    this.#views.clear();
    this.#validators.clear();
  }

  /** Keeps `value` under `key` unless the maps were emptied since the lookup started. */
  #keep<V>(map: Map<string, V>, key: string, value: V, generation: number): void {
    if (generation !== this.#generation) return;
    if (map.size >= MAX_ENTRIES) map.clear();
    map.set(key, value);
  }

  async #credential(id: string): Promise<ApiKeyCredential | undefined> {
    const hit = this.#credentials.get(id);
    if (hit !== undefined) return hit ?? undefined;
    const generation = this.#generation;
    const found = await this.#tenants.findApiKeyCredential(id);
    this.#keep(this.#credentials, id, found ?? null, generation);
    return found;
  }

  /**
   * TenantDirectory.authenticate, from what is kept: the secret is still checked
   * (constant-time) on every call. A key's salted HMAC (checkApiKeySecret) is
   * computed once per cache revision: what is kept then is the SHA-256 of the
   * secret that passed it, never the secret, and a later token with that id is
   * compared with it (timingSafeEqual; the secret is 256 random bits, so its plain
   * digest is as hard to invert as the salted one). Every token's digest is
   * computed, kept key or not, so a wrong secret for a kept key takes the path of
   * any other wrong secret. A revoked key moves the cache revision, which drops
   * what was kept: revocation counts from the next request, on every node.
   */
  async authenticate(token: string): Promise<ApiKeyRecord> {
    const t = parseApiKeyToken(token);
    const digest = hash('sha256', t?.secret ?? '', 'buffer');
    const kept = t && this.#verified.get(t.id);
    if (kept && timingSafeEqual(kept.digest, digest)) return kept.record;
    const generation = this.#generation;
    const record = checkApiKeySecret(t ? await this.#credential(t.id) : undefined, t?.secret);
    this.#keep(this.#verified, t!.id, { digest, record }, generation);
    return record;
  }

  /** The store acting for `key` in the audit log (actorOf: tenant and key id), kept per key. */
  actingFor(key: ApiKeyRecord): Store {
    let view = this.#views.get(key.id);
    if (!view) this.#keep(this.#views, key.id, (view = this.#store.actingAs(actorOf(key))), this.#generation);
    return view;
  }

  /** TenantDirectory.findApiKey, from what is kept. */
  async findApiKey(id: string): Promise<ApiKeyRecord | undefined> {
    return (await this.#credential(id))?.record;
  }

  /** TenantDirectory.authorizeSender, from what is kept (its FORBIDDEN refusals too). */
  async authorizeSender(tenant: string, address: string): Promise<void> {
    const key = `${tenant}\n${normalizeAddress(address)}`;
    const hit = this.#senders.get(key);
    if (hit) throw hit;
    if (hit === null) return;
    const generation = this.#generation;
    try {
      await this.#tenants.authorizeSender(tenant, address);
      this.#keep(this.#senders, key, null, generation);
    } catch (e) {
      if (isKakitomeError(e, 'FORBIDDEN')) this.#keep(this.#senders, key, e, generation);
      throw e;
    }
  }

  /** The tenant's signing settings (TenantSignSettings), from what is kept; none for a tenant that is gone. */
  async signSettings(tenant: string): Promise<TenantSignSettings> {
    const hit = this.#signSettings.get(tenant);
    if (hit) return hit;
    const generation = this.#generation;
    const settings = (await this.#tenants.findTenant(tenant))?.signSettings ?? {};
    this.#keep(this.#signSettings, tenant, settings, generation);
    return settings;
  }

  /**
   * The identity Store.findSigningIdentity gives for `address` now. A lookup goes
   * through `store` (the caller's actingAs view: opening the key is recorded under
   * its actor).
   */
  async signingIdentity(store: Store, address: string): Promise<SigningIdentity | undefined> {
    const email = normalizeAddress(address);
    const now = store.now();
    const hit = this.#identities.get(email);
    // A clock set back (NTP) is a miss too.
    if (hit && hit.from <= now.getTime() && now.getTime() < hit.until) return hit.identity;
    const generation = this.#generation;
    const [identity, next] = await Promise.all([store.findSigningIdentity(email, now), store.nextSigningCertificateAt(email, now)]);
    const until = Math.min(identity?.certificate.notAfter.getTime() ?? Infinity, next?.getTime() ?? Infinity);
    this.#keep(this.#identities, email, { identity, from: now.getTime(), until }, generation);
    return identity;
  }

  /**
   * The validator of received signatures under the store's current revision, with
   * the store's trusted CAs as anchors (storeTrustOptions). Reads the revision
   * first, like every lookup here; one validator per revision and mode, whoever asks.
   */
  async signerValidator(revocation: RevocationMode): Promise<SignerValidator> {
    await this.refresh();
    let validator = this.#validators.get(revocation);
    if (!validator) {
      validator = createTrustValidator(storeTrustOptions(revocation), this.#store, this.#fetcher);
      this.#validators.set(revocation, validator);
    }
    return validator;
  }
}

/** The context's cache, made on first use. */
export function serviceCache(ctx: { store: Store; tenants: TenantDirectory; cache?: ServiceCache }): ServiceCache {
  return (ctx.cache ??= new ServiceCache(ctx.store, ctx.tenants));
}
