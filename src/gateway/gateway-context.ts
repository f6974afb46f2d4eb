/**
 * What processing a message needs, built once at start and again on SIGHUP: the
 * store (kept open across reloads), the policy snapshot (all levels, swapped by
 * withPolicy when the store's policy changes: policy-refresh in start-gateway.ts),
 * the signer validators (the CLI's: the store's trust anchors, one per revocation
 * mode a policy may ask for, checked now), and a short-lived cache of signing
 * identities (opening a private key is audited in the store; one lookup a minute
 * per sender is enough).
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
import { createCliValidator } from '../cli/create-cli-validator.ts';
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
}

const IDENTITY_TTL_MS = 60_000;
const IDENTITY_CACHE_MAX = 10_000;
const POLICY_CACHE_MAX = 10_000;
const MODES: readonly RevocationSetting[] = ['require', 'allow-unknown', 'off'];

export async function createGatewayContext(store: Store, policy: PolicySnapshot, authservId: string, domains: ReadonlySet<string>, options: { openKeys?: boolean } = {}): Promise<GatewayContext> {
  const trust = { ca: [], certfile: [], validityClock: 'now' as const, fetchCaIssuers: [], allowInternalFetch: [], allowLegacy: false };
  const validators = new Map<RevocationSetting, SignerValidator>();
  for (const mode of MODES) validators.set(mode, await createCliValidator({ ...trust, revocation: mode }, store));
  const identities = new Map<string, { at: number; identity: Promise<SigningIdentity | undefined> }>();
  const openKeys = options.openKeys !== false;
  const signingIdentity = (address: string): Promise<SigningIdentity | undefined> => {
    if (!openKeys) return Promise.resolve(undefined);
    const key = address.toLowerCase();
    const now = Date.now();
    const hit = identities.get(key);
    if (hit && now - hit.at < IDENTITY_TTL_MS) return hit.identity;
    if (identities.size >= IDENTITY_CACHE_MAX) identities.clear();
    const identity = store.findSigningIdentity(key);
    // A failed lookup (store down) is not remembered: the next message asks again.
    identity.catch(() => identities.delete(key));
    identities.set(key, { at: now, identity });
    return identity;
  };
  const base = {
    store,
    validator: (mode: RevocationSetting) => validators.get(mode)!,
    authservId,
    domains,
    harvested: new Set<string>(),
    signingIdentity,
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
