/**
 * The certificates taken from received mail or a directory (trust "harvested"),
 * newest first, at most 200: the console's external certificate directory.
 */
import type { CertificateRecord, Store } from './store.ts';

export async function listHarvestedCertificates(store: Store, limit = 100): Promise<CertificateRecord[]> {
  const rows = await store.engine.all("SELECT id FROM certificates WHERE trust = 'harvested' ORDER BY added_at DESC, id LIMIT ?", [Math.min(Math.max(limit, 1), 200)]);
  const out: CertificateRecord[] = [];
  for (const r of rows) {
    const rec = await store.findCertificateById(String(r.id));
    if (rec) out.push(rec);
  }
  return out;
}
