/**
 * The trust options' files read for a job: --ca and --tsa-ca anchors (src/pki
 * loadTrustAnchors: files and directories), --certfile certificates. Every failure
 * names the option, so the user knows which argument to fix.
 */
import { KakitomeError, isKakitomeError, remedyOf } from '../errors.ts';
import { loadTrustAnchors } from '../pki/load-trust-anchors.ts';
import type { TrustOptions } from '../operations/trust-options.ts';
import type { Certificate } from '../x509/certificate.ts';
import type { TrustJobOptions } from './commands/trust-options.ts';
import { describeFsError } from './io.ts';
import { loadCertificateFile } from './load-credentials.ts';

/** The library's trust options from the job's: the anchor files read. */
export async function loadTrustOptions(o: TrustJobOptions): Promise<TrustOptions> {
  const anchors = await loadAnchorsOption('--ca', o.ca);
  return {
    anchors,
    // --tsa-ca replaces, for TSA certificates only, the signer anchors (--ca and the store's).
    ...(o.tsaCa?.length ? { tsaAnchors: await loadAnchorsOption('--tsa-ca', o.tsaCa) } : {}),
    revocation: o.revocation,
    validityClock: o.validityClock,
    fetchCaIssuers: o.fetchCaIssuers,
    allowInternalFetch: o.allowInternalFetch,
    allowLegacy: o.allowLegacy,
  };
}

/**
 * Where a signer certificate the message leaves out is looked for: the --ca
 * certificates themselves and the --certfile ones (never anchors by being here).
 */
export async function loadExtraCertificates(anchors: readonly Certificate[], o: Pick<TrustJobOptions, 'certfile'>): Promise<Certificate[]> {
  const certificates = [...anchors];
  for (const path of o.certfile) certificates.push(...(await loadCertificateFile('--certfile', path)));
  return certificates;
}

async function loadAnchorsOption(option: string, files: string[]): Promise<Certificate[]> {
  try {
    return await loadTrustAnchors(files);
  } catch (e) {
    if (isKakitomeError(e)) throw new KakitomeError(e.code, `${option}: ${e.message}`, { cause: e, ...remedyOf(e) });
    const err = e as NodeJS.ErrnoException;
    throw new KakitomeError('INVALID_ARGUMENT', `${option} ${err.path ?? ''}: ${describeFsError(err)}.`, { cause: e });
  }
}
