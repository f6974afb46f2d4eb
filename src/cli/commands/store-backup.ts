/**
 * `kakitome backup -o FILE`: an online, consistent copy of the SQLite store (keys
 * stay sealed in it). PostgreSQL stores are backed up with pg_dump (docs/store.md).
 *
 * `kakitome backup --passphrase SPEC -o FILE`: an encrypted archive of the store,
 * SQLite or PostgreSQL (store/encrypted-backup.ts: keys stay sealed, the archive
 * is encrypted under the passphrase), the one the console's Backup page makes;
 * `kakitome restore FILE --passphrase SPEC` restores it into an empty store.
 */
import type { Command } from 'commander';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { KakitomeError } from '../../errors.ts';
import { resolvePassSpec } from '../pass-spec.ts';
import { writeFileAtomic } from '../io.ts';
import { commandAction } from './message-options.ts';
import { addStoreOptions, printResult, withCertificateStore, type StoreCliOptions } from './store-options.ts';

interface BackupOpts extends StoreCliOptions { out: string; passphrase?: string }
interface RestoreOpts extends StoreCliOptions { passphrase: string }

/** The store the options name (--home, --database-url), for open-store.ts. */
const storeLocation = (o: StoreCliOptions) => ({ ...(o.home ? { home: o.home } : {}), ...(o.databaseUrl ? { databaseUrl: o.databaseUrl } : {}) });

export function register(program: Command): void {
  const cmd = program.command('backup')
    .summary('copy the store while it is in use, or write an encrypted archive of it (back up the master key separately)')
    .requiredOption('-o, --out <file>', 'backup file (must not exist)')
    .option('--passphrase <spec>', 'write an encrypted archive (SQLite or PostgreSQL) under this passphrase (pass SPEC: env:VAR, file:PATH, fd:N, prompt; at least 12 characters)');
  addStoreOptions(cmd).action(commandAction('backup', async (o: BackupOpts) => {
    if (existsSync(o.out)) throw new KakitomeError('INVALID_ARGUMENT', `${o.out} exists; a backup never overwrites a file.`);
    if (o.passphrase) {
      const passphrase = await resolvePassSpec(o.passphrase, { prompt: 'Backup passphrase: ' });
      const { createEncryptedBackup } = await import('../../store/encrypted-backup.ts');
      const summary = await withCertificateStore(o, async (store) => {
        const made = await createEncryptedBackup(store.engine, passphrase);
        await writeFileAtomic(o.out, made.archive);
        await store.audit('store.backup', o.out, `encrypted archive: ${made.summary.tables} tables, ${made.summary.rows} rows, ${made.summary.bytes} bytes`);
        return made.summary;
      });
      printResult(o, { status: 'ok', out: o.out, encrypted: true, ...summary }, () => [`Wrote an encrypted backup of ${summary.rows} rows to ${o.out}. Keys stay sealed in it: keep the master key and the passphrase apart from it.`]);
      return 0;
    }
    // The SQLite file of the home, or the one KAKITOME_DATABASE_URL names by its path.
    const { sqliteStorePath } = await import('../../store/open-store.ts');
    const source = sqliteStorePath(storeLocation(o));
    if (source === undefined) throw new KakitomeError('INVALID_ARGUMENT', 'This store is PostgreSQL: back it up with --passphrase (an encrypted archive) or with pg_dump (see docs/store.md).');
    const { backupSqliteStore } = await import('../../store/backup-store.ts');
    const pages = await backupSqliteStore(source, o.out);
    printResult(o, { status: 'ok', source, out: o.out, pages }, () => [`Backed up ${source} to ${o.out}. The master key is not in it: keep a copy of it elsewhere.`]);
    return 0;
  }));

  const restore = program.command('restore')
    .summary('restore an encrypted backup archive into an empty store (a new KAKITOME_HOME or an empty PostgreSQL database)')
    .argument('<file>', 'the archive (kakitome backup --passphrase, or the console\'s Backup page)')
    .requiredOption('--passphrase <spec>', 'the archive\'s passphrase (pass SPEC: env:VAR, file:PATH, fd:N, prompt)');
  addStoreOptions(restore).action(async (file: string, opts: RestoreOpts) => commandAction('restore', async (o: RestoreOpts) => {
    const { MAX_BACKUP_BYTES, restoreEncryptedBackup } = await import('../../store/encrypted-backup.ts');
    if (statSync(file).size > MAX_BACKUP_BYTES) throw new KakitomeError('LIMIT', `A backup archive is at most ${MAX_BACKUP_BYTES} bytes.`);
    const archive = readFileSync(file);
    const passphrase = await resolvePassSpec(o.passphrase, { prompt: 'Backup passphrase: ' });
    const { openEngine, sqliteStorePath } = await import('../../store/open-store.ts');
    const engine = await openEngine(storeLocation(o));
    let out;
    try {
      out = await restoreEncryptedBackup(engine, archive, passphrase);
    } finally {
      await engine.close();
    }
    const where = sqliteStorePath(storeLocation(o)) ?? 'the PostgreSQL database';
    printResult(o, { status: 'ok', ...out }, () => [
      `Restored ${out.rows} rows of ${out.tables} tables into ${where}.`,
      out.masterKeyId ? `Its keys are sealed with master key ${out.masterKeyId}: put that master.key in the home (or give KAKITOME_MASTER_KEY) before using it; another key is refused.` : 'It holds no sealed keys yet.',
    ]);
    return 0;
  })(opts));
}
