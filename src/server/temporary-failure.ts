/**
 * Whether a failure that is not one of ours (no KakitomeError) is the service's
 * passing trouble with where it keeps things: the disk full, the store locked,
 * busy, read-only or out of reach, its connection cut (PostgreSQL restarted,
 * pg_terminate_backend). The request was fine and nothing of it was released (a
 * signature leaves only once its audit row is committed; a broken upload is
 * abandoned), so the client should send it again later: HTTP 503 with Retry-After,
 * where a 500 would tell it the request broke the service. The SMTP front ends
 * answer every such failure 451 already.
 *
 * Returns the system's name for the failure, a plain token for the detail and the
 * log (ENOSPC, SQLITE_FULL, PostgreSQL's SQLSTATE 57P01), or undefined.
 */

/** node:sqlite's primary result codes (https://sqlite.org/rescode.html) that are the store's state, not the request's. */
const SQLITE: Record<number, string> = { 5: 'SQLITE_BUSY', 6: 'SQLITE_LOCKED', 8: 'SQLITE_READONLY', 10: 'SQLITE_IOERR', 13: 'SQLITE_FULL', 14: 'SQLITE_CANTOPEN' };

/** Node's system error codes for a full or read-only disk, exhausted descriptors, and a store that cannot be reached. */
const SYSTEM = new Set(['ENOSPC', 'EDQUOT', 'EROFS', 'EIO', 'EMFILE', 'ENFILE', 'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'EAI_AGAIN']);

/**
 * PostgreSQL SQLSTATEs (Appendix A): class 08 connection exception, 53 insufficient
 * resources (53100 disk full), 57P01-57P03 shutdown or not yet accepting, 40001
 * and 40P01 serialization failure and deadlock, 55P03 lock not available, 25006 a
 * read-only transaction (a standby after a failover).
 */
const POSTGRES = /^(?:08[0-9A-Z]{3}|53[0-9A-Z]{3}|57P0[1-3]|40001|40P01|55P03|25006)$/;

/** node-postgres's own errors when the server went away, which carry no code. */
const POSTGRES_CLIENT = /^(?:Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error)/;

export function temporaryFailureCause(e: unknown): string | undefined {
  const err = e as { code?: unknown; errcode?: unknown; message?: unknown } | undefined;
  if (!err || typeof err !== 'object') return undefined;
  if (typeof err.errcode === 'number' && SQLITE[err.errcode & 0xff]) return SQLITE[err.errcode & 0xff];
  if (typeof err.code === 'string' && (SYSTEM.has(err.code) || POSTGRES.test(err.code))) return err.code;
  if (typeof err.message === 'string' && POSTGRES_CLIENT.test(err.message)) return 'CONNECTION_LOST';
  return undefined;
}
