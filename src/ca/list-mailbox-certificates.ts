/**
 * The mailbox certificates the organisation's CA issued for one address (any
 * state), newest first: a person's certificates on the console's person page and
 * in the leaver flow. Read on certificate_emails_email.
 */
import { normalizeAddress, type CertificateRecord, type Store } from '../store/store.ts';

export async function listMailboxCertificates(store: Store, email: string): Promise<CertificateRecord[]> {
  const rows = await store.engine.all(
    `SELECT c.id FROM certificates c JOIN certificate_emails m ON m.certificate_id = c.id JOIN issued_certificates i ON i.certificate_id = c.id
     WHERE m.email = ? AND c.is_ca = 0 AND i.profile LIKE 'mailbox-%' ORDER BY c.not_after DESC, c.id LIMIT 200`,
    [normalizeAddress(email)],
  );
  const out: CertificateRecord[] = [];
  for (const r of rows) {
    const rec = await store.findCertificateById(String(r.id));
    if (rec) out.push(rec);
  }
  return out;
}
