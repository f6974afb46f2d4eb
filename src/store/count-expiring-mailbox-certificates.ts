/**
 * How many mailbox certificates expire within each of some windows (the
 * dashboard's 7, 14 and 30 days): the certificates `kakitome expiring` lists
 * (not revoked, expiring after now and within the window, their key in the
 * store), less CA certificates and those filed under no address. Counted by one
 * query on the certificates_not_after index, so a store of tens of thousands of
 * certificates reads none of them whole.
 */
import { KakitomeError } from '../errors.ts';
import type { Store } from './store.ts';

export async function countExpiringMailboxCertificates(store: Store, days: readonly number[], now: Date = store.now()): Promise<number[]> {
  if (!days.length || days.some((d) => !Number.isFinite(d) || d < 0)) throw new KakitomeError('INVALID_ARGUMENT', 'The expiry windows are non-negative numbers of days.');
  const until = days.map((d) => new Date(now.getTime() + d * 86_400_000).toISOString());
  const rows = await store.engine.all(
    `SELECT ${until.map((_, i) => `SUM(CASE WHEN c.not_after <= ? THEN 1 ELSE 0 END) AS n${i}`).join(', ')}
     FROM certificates c
     WHERE c.not_after > ? AND c.not_after <= ? AND c.revoked_at IS NULL AND c.is_ca = 0
       AND EXISTS (SELECT 1 FROM private_keys k WHERE k.spki_sha256 = c.spki_sha256)
       AND EXISTS (SELECT 1 FROM certificate_emails e WHERE e.certificate_id = c.id)`,
    [...until, now.toISOString(), until.reduce((a, b) => (a > b ? a : b))],
  );
  return until.map((_, i) => Number(rows[0]?.[`n${i}`] ?? 0));
}
