/**
 * One page of the certificate inventory (the console's Certificates screen), for
 * a store of tens of thousands of certificates: never loads them all. The page is
 * found by indexed queries only (certificates_not_after for the order,
 * certificate_emails_email for an address prefix, the unique fingerprint),
 * newest expiry first, and continued by a cursor (keyset paging: the last row's
 * notAfter and id), so page 400 costs what page 1 costs. Only the page's rows are
 * then read whole.
 */
import { KakitomeError } from '../errors.ts';
import { prefixEnd, readCursor, writeCursor } from './page-cursor.ts';
import type { SqlValue } from './sql-engine.ts';
import type { CertificateRecord, Store } from './store.ts';

export interface CertificatePageQuery {
  /** An address or the start of one ("tanaka@", "tanaka"), or a SHA-256 fingerprint (64 hex digits, colons allowed). */
  search?: string;
  /** 'issued' (default): the mailbox certificates the internal CA issued (no CA certificates); 'all': every certificate in the store. */
  kind?: 'issued' | 'all';
  /** The cursor of the page before (CertificatePage.next). */
  after?: string;
  /** Rows per page (1..200, default 50). */
  limit?: number;
}

export interface CertificatePage {
  records: CertificateRecord[];
  /** The cursor of the next page, when there is one. */
  next?: string;
}

const FINGERPRINT = /^[0-9a-f]{64}$/;

export async function listCertificatePage(store: Store, q: CertificatePageQuery = {}): Promise<CertificatePage> {
  const limit = Math.min(Math.max(Math.trunc(q.limit ?? 50), 1), 200);
  const where: string[] = [];
  const params: SqlValue[] = [];
  const search = (q.search ?? '').trim().toLowerCase();
  if (search.length > 320) throw new KakitomeError('INVALID_ARGUMENT', 'The search is longer than a mail address can be.');
  const fingerprint = search.replaceAll(':', '');
  if (FINGERPRINT.test(fingerprint)) {
    where.push('c.fingerprint = ?');
    params.push(fingerprint);
  } else if (search) {
    where.push('c.id IN (SELECT certificate_id FROM certificate_emails WHERE email >= ? AND email < ?)');
    params.push(search, prefixEnd(search));
  }
  if (q.after) {
    const [notAfter, id] = readCursor(q.after);
    where.push('c.not_after <= ? AND (c.not_after < ? OR c.id < ?)');
    params.push(notAfter, notAfter, id);
  }
  const issued = (q.kind ?? 'issued') === 'issued';
  if (issued) where.push('c.is_ca = 0');
  const join = issued ? 'JOIN issued_certificates i ON i.certificate_id = c.id' : '';
  const rows = await store.engine.all(
    `SELECT c.id, c.not_after FROM certificates c ${join} ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
     ORDER BY c.not_after DESC, c.id DESC LIMIT ?`,
    [...params, limit + 1],
  );
  const page = rows.slice(0, limit);
  const records: CertificateRecord[] = [];
  for (const r of page) {
    const rec = await store.findCertificateById(String(r.id));
    if (rec) records.push(rec);
  }
  const last = page.at(-1);
  return rows.length > limit && last ? { records, next: writeCursor(String(last.not_after), String(last.id)) } : { records };
}
