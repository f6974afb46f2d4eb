/**
 * The SignerValidator verify, decrypt, encrypt to addresses and the harvest judge
 * certificates with: the trust options' anchors joined with the key store's
 * trusted CA certificates when a store is given (store-trust-store.ts; the store
 * also offers its CA certificates as intermediates), and with it the revocation status
 * of the internal CA's certificates from its own records (ca/internal-ca-revocation.ts:
 * no CRL or OCSP download for them). Without any anchor no signer
 * can be trusted: the verdict then says the signature is intact but the signer
 * unknown.
 */
import { createSignerValidator } from '../pki/create-signer-validator.ts';
import { createHttpFetcher } from '../pki/create-http-fetcher.ts';
import type { Fetcher, SignerValidator, TrustStore } from '../pki/types.ts';
import type { Certificate } from '../x509/certificate.ts';
import type { Store } from '../store/store.ts';
import { createStoreTrustStore } from '../store/store-trust-store.ts';
import { createInternalCaRevocationSource } from '../ca/internal-ca-revocation.ts';
import type { TrustOptions } from './trust-options.ts';

/** `fetcher`: where CRLs, OCSP answers and caIssuers come from (default: HTTP, internal addresses as allowInternalFetch allows). */
export function createTrustValidator(o: TrustOptions, store?: Store, fetcher?: Fetcher): SignerValidator {
  const common = {
    // The TSA anchors replace, for TSA certificates only, the signer anchors (the options' and the store's).
    ...(o.tsaAnchors?.length ? { tsaAnchors: [...o.tsaAnchors] } : {}),
    revocation: { mode: o.revocation },
    validityClock: o.validityClock,
    fetcher: fetcher ?? createHttpFetcher({ allowInternal: [...o.allowInternalFetch] }),
    fetchCaIssuers: { hosts: [...o.fetchCaIssuers] },
    allowLegacy: o.allowLegacy,
  };
  if (store === undefined) return createSignerValidator({ anchors: [...o.anchors], ...common });
  return createSignerValidator({ trustStore: joinTrustStores(o.anchors, createStoreTrustStore(store)), localRevocation: createInternalCaRevocationSource(store), ...common });
}

/** The options' anchors plus the store's; the store's anchors are read once per validator (one query, not one per message). */
function joinTrustStores(optionAnchors: readonly Certificate[], store: TrustStore): TrustStore {
  let storeAnchors: Promise<Certificate[]> | undefined;
  return {
    async anchors() {
      // A failed read is not cached: the next message asks the store again.
      storeAnchors ??= store.anchors().catch((e: unknown) => {
        storeAnchors = undefined;
        throw e;
      });
      const fromStore = await storeAnchors;
      const seen = new Set(optionAnchors.map((c) => c.fingerprint256));
      return [...optionAnchors, ...fromStore.filter((c) => !seen.has(c.fingerprint256))];
    },
    async intermediates(subject) {
      return store.intermediates ? store.intermediates(subject) : [];
    },
  };
}
