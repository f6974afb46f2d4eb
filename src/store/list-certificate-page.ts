/**
 * One page of the certificate inventory (the console's Certificates screen), for
 * a store of tens of thousands of certificates: never loads them all. The page is
 * found by indexed queries only (certificates_not_after for the order,
 * certificate_emails_email for an address prefix, people_name for a name prefix,
 * certificates_serial for a serial number, the unique fingerprint),
 * newest expiry first, and continued by a cursor (keyset paging: the last row's
 * notAfter and id), so page 400 costs what page 1 costs. Only the page's rows are
 * then read whole.
 */
import { KakitomeError } from '../errors.ts';
import { certificatePageOf, prefixEnd, readCursor } from './page-cursor.ts';
import type { SqlValue } from './sql-engine.ts';
import type { CertificateRecord, Store } from './store.ts';

export interface CertificatePageQuery {
  /** The start of an address ("tanaka@", "tanaka") or of a person's name ("田中", "tanaka h"), a serial number (hex, colons allowed), or a SHA-256 fingerprint (64 hex digits, colons allowed). */
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
/** A serial number as people copy it: hex digits, maybe in pairs with colons or spaces. */
const SERIAL = /^(?:[0-9a-f]{2}(?:[: ]?[0-9a-f]{2})*|[0-9a-f]+)$/;

/**
 * The certificate ids a search finds, each way on its own index: the start of an
 * address (certificate_emails_email), the start of a person's name on People
 * (people_name: the database lower-cases the name as the search is lower-cased
 * here, so case is ignored for ASCII letters), and, when the search reads as a
 * serial number, that serial (certificates_serial; stored as the DER integer's
 * bytes, so with or without the leading 00 of a serial whose first bit is set).
 */
function searchQuery(search: string): { sql: string; params: SqlValue[] } {
  const parts = [
    'SELECT certificate_id FROM certificate_emails WHERE email >= ? AND email < ?',
    'SELECT e.certificate_id FROM people p JOIN certificate_emails e ON e.email = p.email WHERE lower(p.display_name) >= ? AND lower(p.display_name) < ?',
  ];
  const params: SqlValue[] = [search, prefixEnd(search), search, prefixEnd(search)];
  if (SERIAL.test(search)) {
    let serial = search.replace(/[: ]/g, '');
    if (serial.length % 2) serial = `0${serial}`;
    const bare = serial.replace(/^(?:00)+(?=..)/, '');
    parts.push('SELECT id FROM certificates WHERE serial_hex IN (?, ?)');
    params.push(bare, `00${bare}`);
  }
  return { sql: parts.join(' UNION '), params };
}

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
    const found = searchQuery(search);
    where.push(`c.id IN (${found.sql})`);
    params.push(...found.params);
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
  return certificatePageOf(store, rows, limit, 'not_after');
}
