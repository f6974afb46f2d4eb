/**
 * The mailbox certificates the internal CA issued for one address (profile
 * mailbox-strict-*), newest first, whatever their state: what a person may renew,
 * revoke as lost, or take the keys of (the console's "my certificate" pages).
 * Certificates of the address that the CA did not issue (harvested, imported)
 * are not among them.
 */
import { normalizeAddress, type CertificateRecord, type Store } from '../store/store.ts';

export async function listIssuedMailboxCertificates(store: Store, email: string): Promise<CertificateRecord[]> {
  const rows = await store.engine.all(
    `SELECT i.certificate_id FROM issued_certificates i JOIN certificate_emails e ON e.certificate_id = i.certificate_id
     WHERE e.email = ? AND i.profile LIKE 'mailbox-strict-%'`,
    [normalizeAddress(email)],
  );
  const out: CertificateRecord[] = [];
  for (const r of rows) {
    const rec = await store.findCertificateById(String(r.certificate_id));
    if (rec) out.push(rec);
  }
  return out.sort((a, b) => b.certificate.notBefore.getTime() - a.certificate.notBefore.getTime() || b.certificate.notAfter.getTime() - a.certificate.notAfter.getTime());
}

/** Not revoked and within its validity at `now`. */
export function isCurrent(rec: CertificateRecord, now: Date): boolean {
  return !rec.revokedAt && rec.certificate.notBefore <= now && now < rec.certificate.notAfter;
}
