/**
 * The SignerValidator verify and decrypt use: --ca files and directories become
 * the administrator's anchors (src/pki loadTrustAnchors), joined with the key
 * store's trusted CA certificates when a store is configured (store-trust-store.ts;
 * the store also offers its CA certificates as intermediates). Without any anchor
 * no signer can be trusted: the verdict then says the signature is intact but the
 * signer unknown (exit 1).
 */
import { KakitomeError, isKakitomeError } from '../errors.ts';
import { loadTrustAnchors } from '../pki/load-trust-anchors.ts';
import { createSignerValidator } from '../pki/create-signer-validator.ts';
import { createHttpFetcher } from '../pki/create-http-fetcher.ts';
import type { Fetcher, SignerValidator, TrustStore } from '../pki/types.ts';
import type { Certificate } from '../x509/certificate.ts';
import type { Store } from '../store/store.ts';
import { createStoreTrustStore } from '../store/store-trust-store.ts';
import { describeFsError } from './io.ts';
import type { TrustOptions } from './commands/trust-options.ts';

/** `fetcher`: where CRLs, OCSP answers and caIssuers come from (default: HTTP, internal addresses as --allow-internal-fetch allows). */
export async function createCliValidator(o: TrustOptions, store?: Store, fetcher?: Fetcher): Promise<SignerValidator> {
  const anchors = await loadAnchorsOption('--ca', o.ca);
  const common = {
    // --tsa-ca replaces, for TSA certificates only, the signer anchors (--ca and the store's).
    ...(o.tsaCa?.length ? { tsaAnchors: await loadAnchorsOption('--tsa-ca', o.tsaCa) } : {}),
    revocation: { mode: o.revocation },
    validityClock: o.validityClock,
    fetcher: fetcher ?? createHttpFetcher({ allowInternal: o.allowInternalFetch }),
    fetchCaIssuers: { hosts: o.fetchCaIssuers },
    allowLegacy: o.allowLegacy,
  };
  if (store === undefined) return createSignerValidator({ anchors, ...common });
  return createSignerValidator({ trustStore: joinTrustStores(anchors, createStoreTrustStore(store)), ...common });
}

async function loadAnchorsOption(option: string, files: string[]): Promise<Certificate[]> {
  try {
    return await loadTrustAnchors(files);
  } catch (e) {
    if (isKakitomeError(e)) throw new KakitomeError(e.code, `${option}: ${e.message}`, { cause: e });
    const err = e as NodeJS.ErrnoException;
    throw new KakitomeError('INVALID_ARGUMENT', `${option} ${err.path ?? ''}: ${describeFsError(err)}.`, { cause: e });
  }
}

/** --ca anchors plus the store's; the store's anchors are read once per job (one query, not one per message). */
function joinTrustStores(cliAnchors: Certificate[], store: TrustStore): TrustStore {
  let storeAnchors: Promise<Certificate[]> | undefined;
  return {
    async anchors() {
      // A failed read is not cached: the next message asks the store again.
      storeAnchors ??= store.anchors().catch((e: unknown) => {
        storeAnchors = undefined;
        throw e;
      });
      const fromStore = await storeAnchors;
      const seen = new Set(cliAnchors.map((c) => c.fingerprint256));
      return [...cliAnchors, ...fromStore.filter((c) => !seen.has(c.fingerprint256))];
    },
    async intermediates(subject) {
      return store.intermediates ? store.intermediates(subject) : [];
    },
  };
}
