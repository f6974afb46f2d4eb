/**
 * Opens the configured store: PostgreSQL when a connection URL is configured
 * (KAKITOME_DATABASE_URL, or `databaseUrl`), otherwise the SQLite file
 * <KAKITOME_HOME>/kakitome.db (default ~/.kakitome/kakitome.db).
 */
import { dirname, join, resolve } from 'node:path';
import { KakitomeError } from '../errors.ts';
import { ensurePrivateDirectory } from '../keys/check-file-permissions.ts';
import { credentialPassphrase, openMasterKeyText, readMasterKeyText, resolveKakitomeHome, type MasterKey } from '../keys/master-key.ts';
import { isProtectedMasterKey } from '../keys/protect-master-key.ts';
import { openSqliteEngine } from './sqlite-engine.ts';
import { Store } from './store.ts';
import type { SqlEngine } from './sql-engine.ts';
import type { AuditWriter } from './record-key-use.ts';

export interface StoreConfig {
  /** postgres://... or postgresql://...; or a path to a SQLite file. */
  databaseUrl?: string;
  home?: string;
  masterKey?: MasterKey;
  masterKeyFile?: string;
  actor?: string;
  env?: NodeJS.ProcessEnv;
  /**
   * The passphrase of a protected master key file, or a function asked for it only
   * when the key turns out to be protected (a prompt, a pass spec). Without it, the
   * systemd credential kakitome-master-pass is used when present.
   */
  masterKeyPassphrase?: string | (() => Promise<string>);
  /**
   * Open the store without its master key: certificates and trust anchors are read
   * (verify, validate, list, harvest) and no master key or passphrase is asked for;
   * every operation that opens or seals a private key is refused (INVALID_ARGUMENT).
   */
  withoutMasterKey?: boolean;
  /** StoreOptions.auditWriter: the audit rows go to another thread's store. */
  auditWriter?: AuditWriter;
  /** StoreOptions.auditGroupMs: the least time between two commits of audit rows. */
  auditGroupMs?: number;
}

/**
 * The configured master key (see keys/master-key.ts for the sources), asking for the
 * passphrase only when the key file is protected. KAKITOME_MASTER_KEY is removed
 * from process.env once read: a process that opens stores again passes the key on.
 */
export async function resolveMasterKey(config: StoreConfig = {}): Promise<MasterKey> {
  if (config.masterKey) return config.masterKey;
  const env = config.env ?? process.env;
  const t = readMasterKeyText({ env, ...(config.home ? { home: config.home } : {}), ...(config.masterKeyFile ? { file: config.masterKeyFile } : {}) });
  if (!isProtectedMasterKey(t.text)) return openMasterKeyText(t);
  const given = config.masterKeyPassphrase;
  const passphrase = typeof given === 'string' ? given : (credentialPassphrase(env) ?? (given ? await given() : undefined));
  return openMasterKeyText(t, passphrase);
}

/**
 * The SQLite file `config` names (a path or file:// URL, else <home>/kakitome.db), or
 * undefined for PostgreSQL; another URL scheme is refused.
 */
export function sqliteStorePath(config: Pick<StoreConfig, 'databaseUrl' | 'home' | 'env'> = {}): string | undefined {
  const env = config.env ?? process.env;
  const url = config.databaseUrl ?? env.KAKITOME_DATABASE_URL;
  if (url && /^postgres(ql)?:\/\//i.test(url)) return undefined;
  if (url && /^[a-z][a-z0-9+.-]*:\/\//i.test(url) && !url.startsWith('file://')) {
    throw new KakitomeError('INVALID_ARGUMENT', 'The database URL must be postgres:// (or a SQLite file path).');
  }
  return url ? url.replace(/^file:\/\//, '') : join(config.home ?? resolveKakitomeHome(env), 'kakitome.db');
}

/** The engine for `config`; the PostgreSQL driver is loaded only when it is used (it costs ~100 ms per CLI start). */
export async function openEngine(config: StoreConfig = {}): Promise<SqlEngine> {
  const file = sqliteStorePath(config);
  if (file === undefined) return (await import('./postgres-engine.ts')).openPostgresEngine((config.databaseUrl ?? (config.env ?? process.env).KAKITOME_DATABASE_URL)!);
  if (file === ':memory:') return openSqliteEngine(file);
  // The SQLite file's directory, the home's or the one a path names, holds the store,
  // its -wal and -shm and the batch files (batch-blobs.ts): created 0700 if missing,
  // then judged (another account's, or writable by others: refused) before anything
  // is written there.
  ensurePrivateDirectory(dirname(resolve(file)), config.databaseUrl ?? (config.env ?? process.env).KAKITOME_DATABASE_URL ? 'The directory of the SQLite store' : 'The Kakitome home');
  return openSqliteEngine(file);
}

export async function openStore(config: StoreConfig = {}): Promise<Store> {
  const masterKey = config.withoutMasterKey ? undefined : await resolveMasterKey(config);
  const engine = await openEngine(config);
  try {
    return await Store.open(engine, { ...(masterKey ? { masterKey } : {}), ...(config.actor ? { actor: config.actor } : {}), ...(config.auditWriter ? { auditWriter: config.auditWriter } : {}), ...(config.auditGroupMs ? { auditGroupMs: config.auditGroupMs } : {}) });
  } catch (e) {
    await engine.close();
    throw e;
  }
}
