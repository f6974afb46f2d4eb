/**
 * An administrator's "no" to a new key harvested for an address already known
 * (`kakitome certs reject`, the console's external directory): the pending
 * filing becomes superseded, so the certificate is kept as history and never used
 * to encrypt to that address, and harvesting the same certificate again does not
 * bring it back (its filing is kept: Store.harvestCertificate). The certificates
 * in use stay as they are. Audited as certificate.reject.
 */
import { KakitomeError } from '../errors.ts';
import { normalizeAddress, type CertificateRecord, type Store } from './store.ts';

export async function rejectPendingCertificate(store: Store, fingerprint: string, address: string): Promise<CertificateRecord> {
  const rec = await store.findCertificateByFingerprint(fingerprint);
  if (!rec) throw new KakitomeError('INVALID_ARGUMENT', `No certificate ${fingerprint} in the store.`);
  const email = normalizeAddress(address);
  await store.engine.transaction(async (tx) => {
    const n = await tx.run("UPDATE certificate_emails SET filing = 'superseded', preferred = 0 WHERE certificate_id = ? AND email = ? AND filing = 'pending'", [rec.id, email]);
    if (!n) throw new KakitomeError('INVALID_ARGUMENT', `Certificate ${rec.certificate.fingerprint256} is not waiting for a decision for ${email}; nothing was changed.`);
    await store.auditWithin(tx, 'certificate.reject', rec.certificate.fingerprint256, `${email}: new key rejected`);
  });
  return (await store.findCertificateById(rec.id))!;
}
