/**
 * New keys waiting for an administrator (Store.harvestCertificate files a new key
 * for an address already known as "pending"): each with the certificates that
 * stay in use for the address meanwhile. The dashboard counts them; the external
 * certificate directory lists them for acceptance (Store.acceptCertificate, as
 * `kakitome certs accept`) or rejection (rejectPendingCertificate).
 */
import type { CertificateRecord, Store } from './store.ts';

export interface PendingKeyChange {
  address: string;
  record: CertificateRecord;
  filedAt: Date;
  /** The certificates mail to the address is encrypted to meanwhile (current, other keys). */
  inUse: CertificateRecord[];
}

export async function countPendingKeyChanges(store: Store): Promise<number> {
  const rows = await store.engine.all("SELECT COUNT(*) AS n FROM certificate_emails WHERE filing = 'pending'");
  return Number(rows[0]?.n ?? 0);
}

/** The oldest `limit` pending key changes (at most 200). */
export async function listPendingKeyChanges(store: Store, limit = 100): Promise<PendingKeyChange[]> {
  const rows = await store.engine.all("SELECT certificate_id, email, filed_at FROM certificate_emails WHERE filing = 'pending' ORDER BY filed_at, email LIMIT ?", [Math.min(Math.max(limit, 1), 200)]);
  const out: PendingKeyChange[] = [];
  for (const r of rows) {
    const record = await store.findCertificateById(String(r.certificate_id));
    if (!record) continue;
    const address = String(r.email);
    const inUse = (await store.listCertificates({ email: address })).filter((c) => c.id !== record.id && c.filings.some((f) => f.email === address && f.filing === 'current'));
    out.push({ address, record, filedAt: new Date(String(r.filed_at)), inUse });
  }
  return out;
}
