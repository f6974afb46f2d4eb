/**
 * Revokes a certificate the internal CA issued, with a CRLReason (RFC 5280 5.3.1).
 * The certificate and its key stay in the store: revocation stops new use, it does
 * not make old mail unreadable. The next CRL and every OCSP answer report it.
 */
import { KakitomeError } from '../errors.ts';
import type { Store, CertificateRecord } from '../store/store.ts';

export const REVOCATION_REASONS = {
  unspecified: 0,
  keyCompromise: 1,
  cACompromise: 2,
  affiliationChanged: 3,
  superseded: 4,
  cessationOfOperation: 5,
  certificateHold: 6,
  removeFromCRL: 8,
  privilegeWithdrawn: 9,
  aACompromise: 10,
} as const;

export type RevocationReasonName = keyof typeof REVOCATION_REASONS;

export async function revokeIssuedCertificate(store: Store, fingerprint: string, reason: RevocationReasonName | number = 'unspecified', at?: Date): Promise<CertificateRecord> {
  const code = typeof reason === 'number' ? reason : REVOCATION_REASONS[reason];
  if (code === undefined) throw new KakitomeError('INVALID_ARGUMENT', `Unknown revocation reason ${String(reason)}.`);
  // BR 4.9: certificateHold is not allowed for S/MIME; removeFromCRL only undoes a hold.
  if (code === 6 || code === 8) throw new KakitomeError('INVALID_ARGUMENT', 'certificateHold and removeFromCRL are not used by this CA (S/MIME BR 7.2.2).');
  const rec = await store.findCertificateByFingerprint(fingerprint);
  if (!rec) throw new KakitomeError('INVALID_ARGUMENT', `No certificate ${fingerprint} in the store.`);
  const issued = await store.engine.all('SELECT ca_id FROM issued_certificates WHERE certificate_id = ?', [rec.id]);
  if (!issued.length) throw new KakitomeError('INVALID_ARGUMENT', 'This certificate was not issued by the internal CA.');
  return store.revokeCertificate(rec.certificate.fingerprint256, code, at);
}
