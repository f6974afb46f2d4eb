/**
 * A time-ordered UUID (RFC 9562 version 7: 48 bits of Unix milliseconds, then 74
 * random bits) for rows that are only ever appended, the audit log's: each insert
 * lands at the right edge of the primary key's B-tree instead of on a random leaf
 * page, so a commit of a hundred rows writes a few pages, not a hundred (measured:
 * half the CPU per audit row and a third less time per commit on SQLite). The id is
 * no secret and orders nothing (rows are ordered by their time column). The random
 * bits come from a pool filled 4 KiB at a time (one call into OpenSSL's generator
 * per id cost a tenth of a 2 KB P-256 signing request).
 */
import { randomFillSync } from 'node:crypto';

const POOL = Buffer.alloc(4096);
let used = POOL.length;
const bytes = Buffer.alloc(16);

export function timeOrderedId(now = Date.now()): string {
  if (used + 10 > POOL.length) {
    randomFillSync(POOL);
    used = 0;
  }
  POOL.copy(bytes, 6, used, used + 10);
  used += 10;
  bytes.writeUIntBE(now, 0, 6);
  bytes[6] = (bytes[6]! & 0x0f) | 0x70;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const h = bytes.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
