/**
 * The verify job: reads the trust options' files and builds the signer validator
 * over them (and the key store's trusted CAs) once, then verifies message after
 * message with the library's operation (src/operations/verify-with-trust.ts) and
 * maps each verdict to an exit status. OUT is produced only for a trusted verdict;
 * with a store, a trusted signer's certificate and capabilities are kept for
 * encrypting to them (unless --no-harvest).
 */
import { EXIT_OK, exitCodeForVerdict } from '../exit-codes.ts';
import type { Job } from '../job.ts';
import type { TrustJobOptions } from '../commands/trust-options.ts';
import { openLocatedStore, type StoreLocation } from '../commands/store-options.ts';
import { loadExtraCertificates, loadTrustOptions } from '../load-trust-options.ts';
import { createTrustValidator } from '../../operations/create-trust-validator.ts';
import { verifyStreamWithTrust, verifyWithTrust, type TrustContext } from '../../operations/verify-with-trust.ts';
import type { Store } from '../../store/store.ts';

export interface VerifyJobOptions extends TrustJobOptions {
  store?: StoreLocation;
  /** Default true with a store: keep trusted signers' certificates. */
  harvest?: boolean;
}

/**
 * Opens the store (if any), reads the trust options' files and builds the
 * validator over them and the store; closes the store if that fails.
 */
export async function openTrustContext(o: TrustJobOptions & { store?: StoreLocation; harvest?: boolean }): Promise<{ store: Store | undefined; trust: TrustContext }> {
  const store = o.store ? await openLocatedStore(o.store) : undefined;
  try {
    const options = await loadTrustOptions(o);
    const validateSigner = createTrustValidator(options, store);
    const certificates = await loadExtraCertificates(options.anchors, o);
    const harvest = store && o.harvest !== false ? { harvest: { store, seen: new Set<string>() } } : {};
    return { store, trust: { validateSigner, certificates, allowLegacy: o.allowLegacy, ...harvest } };
  } catch (e) {
    await store?.close();
    throw e;
  }
}

export async function createVerifyJob(o: VerifyJobOptions): Promise<Job> {
  const { store, trust } = await openTrustContext(o);
  const job: Job = async (message) => {
    const { verdict, view } = await verifyWithTrust(message, trust);
    const exitCode = exitCodeForVerdict(verdict);
    return {
      exitCode,
      verdict: view,
      // An unverified message is never handed on as if it were verified.
      ...(exitCode === EXIT_OK ? { output: verdict.output } : {}),
    };
  };
  job.stream = async (input, output) => {
    const { verdict, view } = await verifyStreamWithTrust(input, output, trust);
    const exitCode = exitCodeForVerdict(verdict);
    // An unverified message is never handed on as if it were verified.
    return { exitCode, verdict: view, keepOutput: exitCode === EXIT_OK };
  };
  job.streamTakesReusedBuffers = true;
  if (store) job.close = () => store.close();
  return job;
}
