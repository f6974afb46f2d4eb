/**
 * `kakitome init`: creates the Kakitome home (mode 0700), a master key file unless
 * one is configured (KAKITOME_MASTER_KEY, KAKITOME_MASTER_KEY_FD, a systemd
 * credential, or the file exists), protected by a passphrase with --master-pass, and
 * the store schema (the SQLite file mode 0600). With PostgreSQL it says so: the home
 * then holds only the master key file, and the database's URL is shown without its password.
 */
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { ensurePrivateDirectory } from '../../keys/check-file-permissions.ts';
import { createMasterKeyFile, MASTER_KEY_CREDENTIAL, resolveKakitomeHome, type MasterKey } from '../../keys/master-key.ts';
import { describeDatabaseUrl } from '../describe-database-url.ts';
import { resolveNewPassphrase } from '../pass-spec.ts';
import { commandAction } from './message-options.ts';
import { addStoreOptions, printResult, withStore, type StoreCliOptions } from './store-options.ts';

export function register(program: Command): void {
  const cmd = program
    .command('init')
    .summary('create the key store (SQLite in the home, or PostgreSQL) and its master key')
    .description('Create the Kakitome home, a random master key (master.key, mode 0600; protected by a passphrase with --master-pass) unless one is configured, and the store. Back up master.key apart from the store: without it no stored key can be opened.')
    .option('--master-pass <spec>', 'protect the new master.key with a passphrase: prompt (asked twice), file:PATH, fd:N or env:VAR');
  addStoreOptions(cmd);
  cmd.action(commandAction('init', async (opts: StoreCliOptions & { masterPass?: string }) => {
    const home = opts.home ?? resolveKakitomeHome();
    const keyFile = process.env.KAKITOME_MASTER_KEY_FILE ?? join(home, 'master.key');
    const env = process.env;
    // Read before the store is opened: opening removes KAKITOME_MASTER_KEY from the environment.
    const configured = Boolean(env.KAKITOME_MASTER_KEY || env.KAKITOME_MASTER_KEY_FD || (env.CREDENTIALS_DIRECTORY && existsSync(join(env.CREDENTIALS_DIRECTORY, MASTER_KEY_CREDENTIAL))));
    let created: MasterKey | undefined;
    if (!configured && !existsSync(keyFile)) {
      // Created (0700) and judged before the key is written there, not only when the store
      // opens after it: a directory another account owns or can write to got the key,
      // then was refused; and judged after it is created, never before (she could make
      // it in between).
      ensurePrivateDirectory(dirname(keyFile), 'The master key\'s directory');
      const passphrase = opts.masterPass === undefined ? undefined : await resolveNewPassphrase(opts.masterPass, 'New master key passphrase: ');
      created = createMasterKeyFile(keyFile, passphrase === undefined ? {} : { passphrase });
    }
    const masterKeyId = await withStore({ ...opts, home }, async (s) => {
      await s.audit('store.init', undefined, created ? `master key created at ${keyFile}` : 'existing master key');
      return (await s.engine.all("SELECT value FROM settings WHERE name = 'master_key_id'"))[0]?.value;
    }, created);
    const databaseUrl = opts.databaseUrl ?? (process.env.KAKITOME_DATABASE_URL || undefined);
    const engine = databaseUrl ? 'postgres' : 'sqlite';
    // Where the store is: the SQLite file in the home, or the PostgreSQL database (its URL without the password).
    const database = databaseUrl ? describeDatabaseUrl(databaseUrl) : join(home, 'kakitome.db');
    const keyInHome = !configured && resolve(dirname(keyFile)) === resolve(home);
    printResult(opts, { status: 'ok', home, engine, database, masterKeyFile: configured ? null : keyFile, masterKeyCreated: created !== undefined, masterKeyProtected: created !== undefined && opts.masterPass !== undefined, masterKeyId }, () => [
      databaseUrl ? `Store ready (postgres) in the database ${database}.` : `Store ready (sqlite) in ${home}.`,
      created ? `Master key created: ${keyFile}. Back it up apart from the store.` : 'Using the configured master key.',
      ...(databaseUrl ? [keyInHome ? `${home} holds only the master key: keys, certificates and the audit log are in the database.` : `Keys, certificates and the audit log are in the database; ${home} holds none of the store.`] : []),
    ]);
    return 0;
  }));
}
