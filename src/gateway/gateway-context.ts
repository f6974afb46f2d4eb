/**
 * What processing a message needs, built once at start and again on SIGHUP: the
 * store (kept open across reloads), the policy, the signer validator (the CLI's:
 * the store's trust anchors, revocation as the policy says, checked now), and a
 * short-lived cache of signing identities (opening a private key is audited in the
 * store; one lookup a minute per sender is enough).
 */
import type { SignerValidator } from '../pki/types.ts';
import type { Store } from '../store/store.ts';
import type { SigningIdentity } from '../store/key-directory.ts';
import { createCliValidator } from '../cli/create-cli-validator.ts';
import type { GatewayPolicy } from './gateway-policy.ts';

export interface GatewayContext {
  store: Store;
  policy: GatewayPolicy;
  /** Inbound signers: trust anchors from the store, revocation per policy.revocation. */
  validate: SignerValidator;
  /** Outbound recipients' certificates: revocation per policy.recipientRevocation. */
  validateRecipient: SignerValidator;
  authservId: string;
  domains: ReadonlySet<string>;
  signingIdentity(address: string): Promise<SigningIdentity | undefined>;
  /** Signers harvested in this context (harvestVerdictSigners skips them). */
  harvested: Set<string>;
}

const IDENTITY_TTL_MS = 60_000;
const IDENTITY_CACHE_MAX = 10_000;

export async function createGatewayContext(store: Store, policy: GatewayPolicy, authservId: string, domains: ReadonlySet<string>): Promise<GatewayContext> {
  const trust = { ca: [], certfile: [], validityClock: 'now' as const, fetchCaIssuers: [], allowInternalFetch: [], allowLegacy: false };
  const validate = await createCliValidator({ ...trust, revocation: policy.revocation }, store);
  const validateRecipient = await createCliValidator({ ...trust, revocation: policy.recipientRevocation }, store);
  const identities = new Map<string, { at: number; identity: Promise<SigningIdentity | undefined> }>();
  return {
    store,
    policy,
    validate,
    validateRecipient,
    authservId,
    domains,
    harvested: new Set(),
    signingIdentity(address) {
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
    },
  };
}
