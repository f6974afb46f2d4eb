/**
 * `kakitome backup -o FILE`: an online, consistent copy of the SQLite store (keys
 * stay sealed in it). PostgreSQL stores are backed up with pg_dump (docs/store.md).
 */
import type { Command } from 'commander';
import { join } from 'node:path';
import { KakitomeError } from '../../errors.ts';
import { resolveKakitomeHome } from '../../keys/master-key.ts';
import { commandAction } from './message-options.ts';
import { addStoreOptions, printResult, type StoreCliOptions } from './store-options.ts';

interface BackupOpts extends StoreCliOptions { out: string }

export function register(program: Command): void {
  const cmd = program.command('backup')
    .summary('copy the SQLite store while it is in use (back up the master key separately)')
    .requiredOption('-o, --out <file>', 'backup file (must not exist)');
  addStoreOptions(cmd).action(commandAction('backup', async (o: BackupOpts) => {
    if (o.databaseUrl ?? process.env.KAKITOME_DATABASE_URL) throw new KakitomeError('INVALID_ARGUMENT', 'This store is PostgreSQL: back it up with pg_dump (see docs/store.md).');
    const source = join(o.home ?? resolveKakitomeHome(), 'kakitome.db');
    const { backupSqliteStore } = await import('../../store/backup-store.ts');
    const pages = await backupSqliteStore(source, o.out);
    printResult(o, { status: 'ok', source, out: o.out, pages }, () => [`Backed up ${source} to ${o.out}. The master key is not in it: keep a copy of it elsewhere.`]);
    return 0;
  }));
}
