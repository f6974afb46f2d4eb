/**
 * Keyset paging's cursor (the last row's sort value and id, opaque to the reader)
 * and the index range of a prefix, shared by the console's paged lists
 * (list-certificate-page.ts, list-audit-page.ts).
 */
import { KakitomeError } from '../errors.ts';
import type { Row } from './sql-engine.ts';
import type { CertificateRecord, Store } from './store.ts';

export function writeCursor(value: string, id: string): string {
  return Buffer.from(JSON.stringify([value, id])).toString('base64url');
}

export function readCursor(cursor: string): [string, string] {
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(v) && v.length === 2 && typeof v[0] === 'string' && typeof v[1] === 'string' && v[0].length <= 40 && v[1].length <= 100) return [v[0], v[1]];
  } catch {
    // falls through to the one refusal
  }
  throw new KakitomeError('INVALID_ARGUMENT', 'The page cursor is not one this console made.');
}

/** The smallest string greater than every string starting with `prefix` (an index range for a prefix). */
export function prefixEnd(prefix: string): string {
  return prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
}

/**
 * A page of certificates from the ids a keyset query found (asked for limit + 1
 * rows, sorted by `sortColumn` then id): the page's records read whole, and the
 * cursor of the next page when the query found more. The records are read
 * together (Store.findCertificatesByIds), not one by one.
 */
export async function certificatePageOf(store: Store, rows: readonly Row[], limit: number, sortColumn: string): Promise<{ records: CertificateRecord[]; next?: string }> {
  const page = rows.slice(0, limit);
  const records = await store.findCertificatesByIds(page.map((r) => String(r.id)));
  const last = page.at(-1);
  return rows.length > limit && last ? { records, next: writeCursor(String(last[sortColumn]), String(last.id)) } : { records };
}
