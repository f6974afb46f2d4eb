/**
 * The certificate to encrypt to an address, validated when it is used (issue 9,
 * item 1): the store's candidates (Store.findRecipientCertificates: filed as
 * current under the address, best ranked first) are each checked by the PKI
 * layer's SignerValidator for usage "encryption" (a path to a trust anchor,
 * key-management key usage, revocation now, the address named in the certificate)
 * and the first that passes is used. A certificate harvested a year ago and revoked
 * since is refused here, not encrypted to.
 *
 * @example
 * const validate = createSignerValidator({ trustStore: createStoreTrustStore(store) });
 * const to = await findTrustedRecipientCertificate(store, 'bob@example.com', validate);
 * if (to) encryptMessage(eml, { recipients: [{ certificate: to.record.certificate }] });
 */
import { KakitomeError, type ErrorCode, type Remedy } from '../errors.ts';
import type { SignerValidator, TrustReport } from '../pki/types.ts';
import { encryptionKeyProblem, encryptionProblem } from './harvest-signer.ts';
import type { CertificateRecord, Store } from './store.ts';

/**
 * The codes findTrustedRecipientCertificate throws when the store's certificates
 * may not be used (revoked, expired, untrusted...), as opposed to a broken store:
 * callers that can do without encryption (a Sent copy, a gateway's signed copy)
 * carry on without it.
 */
export const CERTIFICATE_REFUSALS: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['CERT_UNTRUSTED', 'CERT_EXPIRED', 'CERT_REVOKED', 'CERT_USAGE', 'WEAK_ALG', 'IDENTITY_MISMATCH', 'REVOCATION_UNKNOWN']);

export interface TrustedRecipient {
  record: CertificateRecord;
  /** The validation that passed (its warnings, e.g. revocation unknown, are the caller's to show). */
  report: TrustReport;
}

/**
 * Undefined when the store has no current certificate for the address. When it has
 * some and none validates, throws the best-ranked one's failure (CERT_REVOKED,
 * CERT_UNTRUSTED, CERT_EXPIRED, CERT_USAGE, WEAK_ALG, IDENTITY_MISMATCH, REVOCATION_UNKNOWN).
 */
export async function findTrustedRecipientCertificate(store: Store, address: string, validate: SignerValidator, now: Date = store.now()): Promise<TrustedRecipient | undefined> {
  let first: KakitomeError | undefined;
  for (const record of await store.findRecipientCertificates(address, now)) {
    // A key no encryption would take is refused without validating it: a refusal, not a broken store.
    let problem: { code: ErrorCode; reason: string; remedy?: Remedy } | undefined = encryptionKeyProblem(record.certificate);
    if (!problem) {
      const carried = await store.findIssuerChain(record.certificate);
      const report = await validate({ certificate: record.certificate, carried, usage: 'encryption', from: [address] });
      problem = encryptionProblem(report, address);
      if (!problem) return { record, report };
    }
    first ??= new KakitomeError(problem.code, `Will not encrypt to ${address} with certificate ${record.certificate.fingerprint256.slice(0, 16)} ("${record.certificate.subjectText}", ${record.trust}): ${problem.reason}`, problem.remedy ? { remedy: problem.remedy } : undefined);
  }
  if (first) throw first;
  return undefined;
}
