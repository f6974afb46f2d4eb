/**
 * Opens the configured store: PostgreSQL when a connection URL is configured
 * (KAKITOME_DATABASE_URL, or `databaseUrl`), otherwise the SQLite file
 * <KAKITOME_HOME>/kakitome.db (default ~/.kakitome/kakitome.db).
 */
import { join } from 'node:path';
import { KakitomeError } from '../errors.ts';
import { loadMasterKey, resolveKakitomeHome, type MasterKey } from '../keys/master-key.ts';
import { openSqliteEngine } from './sqlite-engine.ts';
import { Store } from './store.ts';
import type { SqlEngine } from './sql-engine.ts';

export interface StoreConfig {
  /** postgres://... or postgresql://...; or a path to a SQLite file. */
  databaseUrl?: string;
  home?: string;
  masterKey?: MasterKey;
  masterKeyFile?: string;
  actor?: string;
  env?: NodeJS.ProcessEnv;
}

/** The engine for `config`; the PostgreSQL driver is loaded only when it is used (it costs ~100 ms per CLI start). */
export async function openEngine(config: StoreConfig = {}): Promise<SqlEngine> {
  const env = config.env ?? process.env;
  const url = config.databaseUrl ?? env.KAKITOME_DATABASE_URL;
  if (url && /^postgres(ql)?:\/\//i.test(url)) return (await import('./postgres-engine.ts')).openPostgresEngine(url);
  if (url && /^[a-z][a-z0-9+.-]*:\/\//i.test(url) && !url.startsWith('file://')) {
    throw new KakitomeError('INVALID_ARGUMENT', 'The database URL must be postgres:// (or a SQLite file path).');
  }
  const path = url ? url.replace(/^file:\/\//, '') : join(config.home ?? resolveKakitomeHome(env), 'kakitome.db');
  return openSqliteEngine(path);
}

export async function openStore(config: StoreConfig = {}): Promise<Store> {
  const env = config.env ?? process.env;
  const masterKey = config.masterKey ?? loadMasterKey({ env: config.home ? { ...env, KAKITOME_HOME: config.home } : env, file: config.masterKeyFile });
  const engine = await openEngine(config);
  try {
    return await Store.open(engine, { masterKey, actor: config.actor });
  } catch (e) {
    await engine.close();
    throw e;
  }
}
