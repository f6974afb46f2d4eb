/**
 * What the store remembers of a CA's last published CRL (its number, thisUpdate
 * and nextUpdate), so the dashboard can say when the next one is due and whether
 * it is overdue: a relying party that fetched the last CRL treats every
 * certificate of that CA as of unknown status once nextUpdate has passed (RFC
 * 5280 6.3.3). Written by publishCrl in the transaction that takes the number,
 * kept in `settings` under `crl_status:<CA id>`.
 */
import type { SqlExecutor } from '../store/sql-engine.ts';
import type { Store } from '../store/store.ts';

export interface CrlStatus {
  crlNumber: number;
  thisUpdate: Date;
  nextUpdate: Date;
}

const key = (caId: string) => `crl_status:${caId}`;

export async function recordCrlStatus(tx: SqlExecutor, caId: string, s: CrlStatus): Promise<void> {
  const value = JSON.stringify({ crlNumber: s.crlNumber, thisUpdate: s.thisUpdate.toISOString(), nextUpdate: s.nextUpdate.toISOString() });
  await tx.run('INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value', [key(caId), value]);
}

/** The CA's last published CRL, or undefined when none was published (or the record is unreadable). */
export async function readCrlStatus(store: Store, caId: string): Promise<CrlStatus | undefined> {
  const row = (await store.engine.all('SELECT value FROM settings WHERE name = ?', [key(caId)]))[0];
  if (!row) return undefined;
  try {
    const v = JSON.parse(String(row.value)) as { crlNumber: unknown; thisUpdate: unknown; nextUpdate: unknown };
    const s = { crlNumber: Number(v.crlNumber), thisUpdate: new Date(String(v.thisUpdate)), nextUpdate: new Date(String(v.nextUpdate)) };
    return Number.isSafeInteger(s.crlNumber) && !Number.isNaN(s.thisUpdate.getTime()) && !Number.isNaN(s.nextUpdate.getTime()) ? s : undefined;
  } catch {
    return undefined;
  }
}
