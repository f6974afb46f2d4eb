/**
 * Online backup of a SQLite store: a consistent copy taken while gateways keep
 * running (SQLite's backup API through node:sqlite, https://sqlite.org/backup.html),
 * never a file copy of a live WAL database. Keys stay sealed in the copy: the
 * backup is useless without the master key, which must be backed up apart
 * (docs/store.md). PostgreSQL stores are backed up with pg_dump.
 */
import { backup, DatabaseSync } from 'node:sqlite';
import { existsSync, rmSync } from 'node:fs';
import { KakitomeError } from '../errors.ts';
import { createPrivateFile } from './sqlite-engine.ts';

export async function backupSqliteStore(sourcePath: string, destinationPath: string): Promise<number> {
  if (existsSync(destinationPath)) throw new KakitomeError('INVALID_ARGUMENT', `${destinationPath} exists; a backup never overwrites a file.`);
  const db = new DatabaseSync(sourcePath, { readOnly: true });
  try {
    createPrivateFile(destinationPath); // mode 0600, like the store itself
    return await backup(db, destinationPath);
  } catch (e) {
    rmSync(destinationPath, { force: true });
    throw e;
  } finally {
    db.close();
  }
}
