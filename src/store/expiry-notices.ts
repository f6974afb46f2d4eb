/**
 * Expiry notices (issue 11): a person whose certificate expires within 30, 14 or
 * 7 days gets one mail per threshold. Which notices are due is read from the
 * certificates (mailbox certificates, not CA, not revoked, addressed to an
 * enabled person, with no later certificate of theirs outlasting the 30 days: a
 * renewed person is not told), and each is claimed by inserting its row
 * (certificate, threshold) into expiry_notices (migration 14): the insert that
 * wins sends, so nodes sharing one PostgreSQL never both send. A claim not marked
 * sent within CLAIM_TIMEOUT_MS (its node died, or the relay refused and the claim
 * was released) is taken again.
 */
import type { Store } from './store.ts';

export const THRESHOLDS = [7, 14, 30] as const;
export const CLAIM_TIMEOUT_MS = 10 * 60_000;
const DAY = 86_400_000;

export interface DueNotice {
  certificateId: string;
  email: string;
  language?: 'ja' | 'en';
  notAfter: Date;
  /** The threshold this notice is for (the smallest one the days left fall under). */
  threshold: number;
  daysLeft: number;
}

/** The smallest threshold `daysLeft` falls under, or undefined beyond 30 days. */
export function thresholdFor(daysLeft: number): number | undefined {
  return THRESHOLDS.find((t) => daysLeft <= t);
}

export async function findDueNotices(store: Store, now: Date): Promise<DueNotice[]> {
  const horizon = new Date(now.getTime() + THRESHOLDS[THRESHOLDS.length - 1]! * DAY).toISOString();
  const rows = await store.engine.all(
    `SELECT c.id, c.not_after, e.email, p.language FROM certificates c
       JOIN certificate_emails e ON e.certificate_id = c.id
       JOIN people p ON p.email = e.email
      WHERE c.is_ca = 0 AND c.revoked_at IS NULL AND p.disabled_at IS NULL AND c.not_after > ? AND c.not_after <= ?
        AND NOT EXISTS (SELECT 1 FROM certificates c2 JOIN certificate_emails e2 ON e2.certificate_id = c2.id
                         WHERE e2.email = e.email AND c2.is_ca = 0 AND c2.revoked_at IS NULL AND c2.not_after > ?)`,
    [now.toISOString(), horizon, horizon],
  );
  const due: DueNotice[] = [];
  for (const r of rows) {
    const notAfter = new Date(String(r.not_after));
    const daysLeft = Math.ceil((notAfter.getTime() - now.getTime()) / DAY);
    const threshold = thresholdFor(daysLeft);
    if (threshold === undefined) continue;
    due.push({ certificateId: String(r.id), email: String(r.email), notAfter, threshold, daysLeft, ...(r.language === 'ja' || r.language === 'en' ? { language: r.language } : {}) });
  }
  return due;
}

/** True for the one caller that claimed this notice (a fresh row, or a stale unsent claim taken over). */
export async function claimNotice(store: Store, n: DueNotice, now: Date): Promise<boolean> {
  const at = now.toISOString();
  if ((await store.engine.run('INSERT INTO expiry_notices (certificate_id, threshold, claimed_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING', [n.certificateId, n.threshold, at])) === 1) return true;
  return (await store.engine.run('UPDATE expiry_notices SET claimed_at = ? WHERE certificate_id = ? AND threshold = ? AND sent_at IS NULL AND claimed_at < ?', [at, n.certificateId, n.threshold, new Date(now.getTime() - CLAIM_TIMEOUT_MS).toISOString()])) === 1;
}

export async function markNoticeSent(store: Store, n: DueNotice, now: Date): Promise<void> {
  await store.engine.run('UPDATE expiry_notices SET sent_at = ? WHERE certificate_id = ? AND threshold = ?', [now.toISOString(), n.certificateId, n.threshold]);
}

/** The relay refused: the claim goes, so the next run tries again. */
export async function releaseNotice(store: Store, n: DueNotice): Promise<void> {
  await store.engine.run('DELETE FROM expiry_notices WHERE certificate_id = ? AND threshold = ? AND sent_at IS NULL', [n.certificateId, n.threshold]);
}
