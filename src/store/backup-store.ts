/**
 * Online backup of a SQLite store: a consistent copy taken while gateways keep
 * running (SQLite's backup API through node:sqlite, https://sqlite.org/backup.html),
 * never a file copy of a live WAL database. Keys stay sealed in the copy: the
 * backup is useless without the master key, which must be backed up apart
 * (docs/store.md). PostgreSQL stores are backed up with pg_dump.
 */
import { backup, DatabaseSync } from 'node:sqlite';
import { existsSync, rmSync } from 'node:fs';
import { KakitomeError, diskFullCause } from '../errors.ts';
import { BUSY_TIMEOUT_MS, createPrivateFile } from './sqlite-engine.ts';

export async function backupSqliteStore(sourcePath: string, destinationPath: string): Promise<number> {
  if (existsSync(destinationPath)) throw new KakitomeError('INVALID_ARGUMENT', `${destinationPath} exists; a backup never overwrites a file.`);
  // Not node:sqlite's "unable to open database file", reported as a bug in Kakitome.
  if (!existsSync(sourcePath)) throw new KakitomeError('NOT_FOUND', `There is no store at ${sourcePath} to back up: name the store's home or database file, or create the store first.`);
  // Waits (as the store's own connections do, sqlite-engine.ts) for a lock another
  // process holds for a moment: the last connection of a command closing (it
  // checkpoints the WAL and removes it) or WAL recovery. Without a busy timeout the
  // backup failed at once, as an internal error ("database is locked", or
  // node:sqlite's "not an error"): 1,028 of 1,152 backups beside a process opening,
  // writing and closing the store (test/store/backup-store.test.ts).
  const db = new DatabaseSync(sourcePath, { readOnly: true, timeout: BUSY_TIMEOUT_MS });
  try {
    createPrivateFile(destinationPath); // mode 0600, like the store itself
    return await backup(db, destinationPath);
  } catch (e) {
    // No partial copy is left, nor the rollback journal SQLite keeps beside it while it writes.
    for (const path of [destinationPath, `${destinationPath}-journal`]) rmSync(path, { force: true });
    const full = diskFullCause(e);
    if (full) throw new KakitomeError('NO_SPACE', `No space left for the backup at ${destinationPath} (${full}): nothing was kept there. Free space on that file system, or write the backup to another one.`, { cause: e, remedy: 'diskSpace' });
    throw e;
  } finally {
    db.close();
  }
}
