/**
 * One page of the audit log, newest first, filtered by who (the start of the
 * actor: "console:", "console:tanaka@"), what (the start of the action:
 * "certificate.", "key.use") and a date range (UTC days), continued by a cursor
 * (the last row's time and id: keyset paging), so no page reads the whole log.
 * The order and the date range run on audit_log_at; the actor and action are
 * checked on the rows that range yields.
 */
import { KakitomeError } from '../errors.ts';
import { prefixEnd, readCursor, writeCursor } from './page-cursor.ts';
import type { SqlValue } from './sql-engine.ts';
import type { AuditEntry, Store } from './store.ts';

export interface AuditQuery {
  actor?: string;
  action?: string;
  /** First day included, YYYY-MM-DD (UTC). */
  from?: string;
  /** Last day included, YYYY-MM-DD (UTC). */
  to?: string;
  after?: string;
  /** Rows per page (1..1000, default 50). */
  limit?: number;
}

export interface AuditPage {
  entries: AuditEntry[];
  next?: string;
}

const DAY = /^\d{4}-\d{2}-\d{2}$/;

function day(text: string, name: string): Date {
  const d = new Date(`${text}T00:00:00.000Z`);
  if (!DAY.test(text) || Number.isNaN(d.getTime()) || d.toISOString().slice(0, 10) !== text) throw new KakitomeError('INVALID_ARGUMENT', `The ${name} date is not a day written YYYY-MM-DD.`);
  return d;
}

function prefix(where: string[], params: SqlValue[], column: string, text: string | undefined): void {
  const p = (text ?? '').trim();
  if (!p) return;
  if (p.length > 320) throw new KakitomeError('INVALID_ARGUMENT', `The ${column} filter is too long.`);
  where.push(`${column} >= ? AND ${column} < ?`);
  params.push(p, prefixEnd(p));
}

export async function listAuditPage(store: Store, q: AuditQuery = {}): Promise<AuditPage> {
  const limit = Math.min(Math.max(Math.trunc(q.limit ?? 50), 1), 1000);
  const where: string[] = [];
  const params: SqlValue[] = [];
  if (q.from) {
    where.push('at >= ?');
    params.push(day(q.from, 'from').toISOString());
  }
  if (q.to) {
    where.push('at < ?');
    params.push(new Date(day(q.to, 'to').getTime() + 86_400_000).toISOString());
  }
  prefix(where, params, 'actor', q.actor);
  prefix(where, params, 'action', q.action);
  if (q.after) {
    const [at, id] = readCursor(q.after);
    where.push('at <= ? AND (at < ? OR id < ?)');
    params.push(at, at, id);
  }
  const rows = await store.engine.all(
    `SELECT * FROM audit_log ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY at DESC, id DESC LIMIT ?`,
    [...params, limit + 1],
  );
  const entries = rows.slice(0, limit).map((r) => ({
    id: String(r.id), at: new Date(String(r.at)), actor: String(r.actor), action: String(r.action),
    ...(r.object !== null && r.object !== undefined ? { object: String(r.object) } : {}),
    ...(r.detail !== null && r.detail !== undefined ? { detail: String(r.detail) } : {}),
  }));
  const last = rows[limit - 1];
  return rows.length > limit && last ? { entries, next: writeCursor(String(last.at), String(last.id)) } : { entries };
}
