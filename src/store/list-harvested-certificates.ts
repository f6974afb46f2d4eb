/**
 * The certificates taken from received mail or a directory (trust "harvested"),
 * newest first, a page at a time: the console's external certificate directory.
 * Found on the certificates_trust_added index and continued by a cursor (the last
 * row's added_at and id: keyset paging), so the 100th page costs what the first
 * does; only the page's rows are read whole.
 */
import { certificatePageOf, readCursor } from './page-cursor.ts';
import type { SqlValue } from './sql-engine.ts';
import type { CertificateRecord, Store } from './store.ts';

export interface HarvestedPage {
  records: CertificateRecord[];
  /** The cursor of the next page, when there is one. */
  next?: string;
}

export async function listHarvestedCertificates(store: Store, o: { limit?: number; after?: string } = {}): Promise<HarvestedPage> {
  const limit = Math.min(Math.max(Math.trunc(o.limit ?? 50), 1), 200);
  const params: SqlValue[] = [];
  let after = '';
  if (o.after) {
    const [addedAt, id] = readCursor(o.after);
    after = 'AND added_at <= ? AND (added_at < ? OR id < ?)';
    params.push(addedAt, addedAt, id);
  }
  const rows = await store.engine.all(`SELECT id, added_at FROM certificates WHERE trust = 'harvested' ${after} ORDER BY added_at DESC, id DESC LIMIT ?`, [...params, limit + 1]);
  return certificatePageOf(store, rows, limit, 'added_at');
}
