/**
 * The verify job: builds the signer validator over the --ca anchors (and the key
 * store's trusted CAs) once, then verifies message after message. OUT is produced
 * only for a trusted verdict; with a store, a trusted signer's certificate and
 * capabilities are kept for encrypting to them (unless --no-harvest).
 */
import { verifyMessage } from '../../smime/verify-message.ts';
import { verifyMessageStream } from '../../smime/verify-message-stream.ts';
import { EXIT_OK, exitCodeForVerdict } from '../exit-codes.ts';
import type { Job } from '../job.ts';
import { createCliValidator } from '../create-cli-validator.ts';
import type { TrustOptions } from '../commands/trust-options.ts';
import { openLocatedStore, type StoreLocation } from '../commands/store-options.ts';
import { harvestVerdictSigners } from '../harvest-verdict-signers.ts';
import { viewVerdict } from '../verdict-view.ts';
import type { Store } from '../../store/store.ts';
import type { SignerValidator } from '../../pki/types.ts';
import { loadTrustAnchors } from '../../pki/load-trust-anchors.ts';
import type { Certificate } from '../../x509/certificate.ts';
import { loadCertificateFile } from '../load-credentials.ts';

export interface VerifyJobOptions extends TrustOptions {
  store?: StoreLocation;
  /** Default true with a store: keep trusted signers' certificates. */
  harvest?: boolean;
  /**
   * A validator the caller keeps between jobs (the signing service and the console:
   * server/service-cache.ts), so its caches of chains and revocation answers, and its
   * one fetch shared by concurrent checks of a certificate, serve every job; without
   * it the job builds one over these trust options and the store.
   */
  validateSigner?: SignerValidator;
}

/**
 * Opens the store (if any) and builds the validator over it; closes the store if
 * that fails. `certificates`: where a signer certificate the message leaves out is
 * looked for (--certfile, and the --ca certificates themselves), never anchors.
 */
export async function openTrustContext(o: VerifyJobOptions): Promise<{ store: Store | undefined; validateSigner: SignerValidator; certificates: Certificate[] }> {
  const store = o.store ? await openLocatedStore(o.store) : undefined;
  try {
    const validateSigner = o.validateSigner ?? (await createCliValidator(o, store));
    // createCliValidator has read --ca already and named any problem with it.
    const certificates = o.ca.length ? await loadTrustAnchors(o.ca) : [];
    for (const path of o.certfile) certificates.push(...(await loadCertificateFile('--certfile', path)));
    return { store, validateSigner, certificates };
  } catch (e) {
    await store?.close();
    throw e;
  }
}

export async function createVerifyJob(o: VerifyJobOptions): Promise<Job> {
  const { store, validateSigner, certificates } = await openTrustContext(o);
  const harvested = new Set<string>();
  const job: Job = async (message) => {
    const verdict = await verifyMessage(message, { validateSigner, certificates, allowLegacy: o.allowLegacy });
    const exitCode = exitCodeForVerdict(verdict);
    const view = viewVerdict(verdict);
    if (store && o.harvest !== false) await harvestQuietly(store, verdict, view, harvested, validateSigner);
    return {
      exitCode,
      verdict: view,
      // An unverified message is never handed on as if it were verified.
      ...(exitCode === EXIT_OK ? { output: verdict.output } : {}),
    };
  };
  job.stream = async (input, output) => {
    const verdict = await verifyMessageStream(input, { validateSigner, certificates, allowLegacy: o.allowLegacy, output, end: false });
    const exitCode = exitCodeForVerdict(verdict);
    const view = viewVerdict(verdict);
    if (store && o.harvest !== false) await harvestQuietly(store, verdict, view, harvested, validateSigner);
    // An unverified message is never handed on as if it were verified.
    return { exitCode, verdict: view, keepOutput: exitCode === EXIT_OK };
  };
  job.streamTakesReusedBuffers = true;
  if (store) job.close = () => store.close();
  return job;
}

/** A store that cannot take the certificate (locked, read-only) does not change the verdict: it is a warning. */
export async function harvestQuietly(store: Store, verdict: Parameters<typeof harvestVerdictSigners>[1], view: Parameters<typeof harvestVerdictSigners>[2], seen: Set<string>, validate: SignerValidator): Promise<void> {
  try {
    await harvestVerdictSigners(store, verdict, view, validate, seen);
  } catch (e) {
    view.warnings.push(`The signer's certificate could not be kept in the key store: ${(e as Error).message}`);
  }
}
