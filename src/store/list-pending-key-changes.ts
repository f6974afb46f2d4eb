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
  if (rows.length === 0) return [];
  // The certificates in use for these addresses, found in one query on the address index (address,
  // filing, certificate: migration 22; the filing index alone would read every current row); then
  // every record shown is read together.
  const addresses = [...new Set(rows.map((r) => String(r.email)))];
  const current = await store.engine.all(`SELECT certificate_id, email FROM certificate_emails WHERE email IN (${addresses.map(() => '?').join(', ')}) AND filing = 'current'`, addresses);
  const records = new Map((await store.findCertificatesByIds([...new Set([...rows, ...current].map((r) => String(r.certificate_id)))])).map((r) => [r.id, r]));
  const out: PendingKeyChange[] = [];
  for (const r of rows) {
    const record = records.get(String(r.certificate_id));
    if (!record) continue;
    const address = String(r.email);
    const inUse = current.filter((c) => String(c.email) === address && String(c.certificate_id) !== record.id).flatMap((c) => records.get(String(c.certificate_id)) ?? [])
      .sort((a, b) => b.certificate.notBefore.getTime() - a.certificate.notBefore.getTime());
    out.push({ address, record, filedAt: new Date(String(r.filed_at)), inUse });
  }
  return out;
}
