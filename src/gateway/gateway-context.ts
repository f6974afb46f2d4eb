/**
 * What processing a message needs, built once at start and again on SIGHUP: the
 * store (kept open across reloads), the policy snapshot (all levels, swapped by
 * withPolicy when the store's policy changes: policy-refresh in start-gateway.ts),
 * the signer validators (the store's trust anchors, one per revocation mode a
 * policy may ask for, checked now: operations/create-trust-validator.ts), and a
 * short-lived cache of signing identities (opening a private key is audited in
 * the store; one lookup a minute per sender is enough).
 *
 * `gateway explain` builds the same context without opening keys
 * (`openKeys: false`): the signing certificate is then found by the same store
 * query, and no key is used.
 */
import type { SignerValidator } from '../pki/types.ts';
import type { Store } from '../store/store.ts';
import type { SigningIdentity } from '../store/key-directory.ts';
import type { PolicySnapshot } from '../store/policy-directory.ts';
import type { Certificate } from '../x509/certificate.ts';
import type { Resolver } from 'node:dns/promises';
import { createTrustValidator } from '../operations/create-trust-validator.ts';
import { storeTrustOptions } from '../operations/trust-options.ts';
import { createDnsResolver } from '../dkim/bounded-resolver.ts';
import { DkimKeyDirectory, type DkimSigningKey } from '../store/dkim-key-directory.ts';
import { resolveGlobalPolicy, resolvePolicy, type ResolvedPolicy } from '../policy/resolve-policy.ts';
import type { PolicySettings, RevocationSetting } from '../policy/policy-settings.ts';

export interface GatewayContext {
  store: Store;
  policy: PolicySnapshot;
  /** The policy of one party of the organisation (the sender outbound, the recipient inbound), resolved once per snapshot. */
  policyFor(owner: string): ResolvedPolicy;
  /** The global level over the defaults: the process-wide settings. */
  global: PolicySettings;
  /** A validator with the store's trust anchors and this revocation mode. */
  validator(mode: RevocationSetting): SignerValidator;
  authservId: string;
  domains: ReadonlySet<string>;
  /** The identity that signs for an address (its key opened and audited); undefined without openKeys. */
  signingIdentity(address: string): Promise<SigningIdentity | undefined>;
  /** The certificate that would sign for an address: the identity's, or (explain) found without opening the key. */
  signingCertificate(address: string): Promise<Certificate | undefined>;
  /** Signers harvested in this context (harvestVerdictSigners skips them). */
  harvested: Set<string>;
  /** The active DKIM keys of a domain (each use audited), kept a minute; empty without openKeys. */
  dkimKeys(domain: string): Promise<DkimSigningKey[]>;
  /** The resolver inbound sender authentication asks (--dns-server, else the system's). */
  resolver: Resolver;
}

const IDENTITY_TTL_MS = 60_000;
const IDENTITY_CACHE_MAX = 10_000;
const POLICY_CACHE_MAX = 10_000;
const MODES: readonly RevocationSetting[] = ['require', 'allow-unknown', 'off'];

/** A lookup kept for IDENTITY_TTL_MS; a failed one (store down) is forgotten at once so the next message asks again. */
function cached<T>(cache: Map<string, { at: number; value: Promise<T> }>, key: string, load: () => Promise<T>): Promise<T> {
  const now = Date.now();
  const hit = cache.get(key);
  if (hit && now - hit.at < IDENTITY_TTL_MS) return hit.value;
  if (cache.size >= IDENTITY_CACHE_MAX) cache.clear();
  const value = load();
  value.catch(() => cache.delete(key));
  cache.set(key, { at: now, value });
  return value;
}

export async function createGatewayContext(store: Store, policy: PolicySnapshot, authservId: string, domains: ReadonlySet<string>, options: { openKeys?: boolean; dnsServers?: readonly string[] } = {}): Promise<GatewayContext> {
  const validators = new Map<RevocationSetting, SignerValidator>();
  for (const mode of MODES) validators.set(mode, createTrustValidator(storeTrustOptions(mode), store));
  const identities = new Map<string, { at: number; value: Promise<SigningIdentity | undefined> }>();
  const dkimKeys = new Map<string, { at: number; value: Promise<DkimSigningKey[]> }>();
  const dkim = new DkimKeyDirectory(store);
  const openKeys = options.openKeys !== false;
  const signingIdentity = (address: string): Promise<SigningIdentity | undefined> => {
    if (!openKeys) return Promise.resolve(undefined);
    const key = address.toLowerCase();
    return cached(identities, key, () => store.findSigningIdentity(key));
  };
  const base = {
    store,
    validator: (mode: RevocationSetting) => validators.get(mode)!,
    authservId,
    domains,
    harvested: new Set<string>(),
    signingIdentity,
    dkimKeys: (domain: string) => (openKeys ? cached(dkimKeys, domain.toLowerCase(), () => dkim.signingKeys(domain)) : Promise.resolve([])),
    resolver: createDnsResolver(options.dnsServers ?? []),
    signingCertificate: openKeys ? async (address: string) => (await signingIdentity(address))?.certificate : (address: string) => store.findSigningCertificate(address.toLowerCase()),
  };
  return withPolicy(base, policy);
}

/** The same context with another policy snapshot (messages already started keep theirs). */
export function withPolicy(ctx: Omit<GatewayContext, 'policy' | 'policyFor' | 'global'>, policy: PolicySnapshot): GatewayContext {
  const resolved = new Map<string, ResolvedPolicy>();
  return {
    ...ctx,
    policy,
    global: resolveGlobalPolicy(policy.levels).settings,
    policyFor(owner) {
      const key = owner.trim().toLowerCase();
      let r = resolved.get(key);
      if (!r) {
        if (resolved.size >= POLICY_CACHE_MAX) resolved.clear();
        resolved.set(key, (r = resolvePolicy(policy.levels, key)));
      }
      return r;
    },
  };
}
