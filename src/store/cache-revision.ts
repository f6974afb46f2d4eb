/**
 * The store's cache revision (migration 9): one number that triggers raise in the
 * transaction of every change to tenants, their domains, identities and API keys,
 * certificates (not their harvested capabilities), private keys and DKIM keys.
 * Whoever keeps what it read from those tables between requests reads this first:
 * unchanged, nothing it kept has changed; moved, it reads again. Reading the
 * revision before the data it guards makes a race harmless: a change committed in
 * between leaves newer data under an older revision, which the next read replaces.
 */
import type { SqlExecutor } from './sql-engine.ts';

export async function readCacheRevision(engine: SqlExecutor): Promise<number> {
  const rows = await engine.all('SELECT revision FROM cache_revision WHERE id = 1');
  return Number(rows[0]?.revision ?? 0);
}
