/**
 * `kakitome init`: creates the Kakitome home (mode 0700), a master key file unless
 * one is configured (KAKITOME_MASTER_KEY or the file exists), and the store schema.
 */
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createMasterKeyFile, resolveKakitomeHome } from '../../keys/master-key.ts';
import { commandAction } from './message-options.ts';
import { addStoreOptions, printResult, withStore, type StoreCliOptions } from './store-options.ts';

export function register(program: Command): void {
  const cmd = program
    .command('init')
    .summary('create the key store (SQLite in the home, or PostgreSQL) and its master key')
    .description('Create the Kakitome home, a random master key (master.key, mode 0600) unless KAKITOME_MASTER_KEY is set, and the store. Back up master.key apart from the store: without it no stored key can be opened.');
  addStoreOptions(cmd);
  cmd.action(commandAction('init', async (opts: StoreCliOptions) => {
    const home = opts.home ?? resolveKakitomeHome();
    const keyFile = process.env.KAKITOME_MASTER_KEY_FILE ?? join(home, 'master.key');
    let created = false;
    if (!process.env.KAKITOME_MASTER_KEY && !existsSync(keyFile)) {
      createMasterKeyFile(keyFile);
      created = true;
    }
    const masterKeyId = await withStore({ ...opts, home }, async (s) => {
      await s.audit('store.init', undefined, created ? `master key created at ${keyFile}` : 'existing master key');
      return (await s.engine.all("SELECT value FROM settings WHERE name = 'master_key_id'"))[0]?.value;
    });
    const engine = opts.databaseUrl ?? process.env.KAKITOME_DATABASE_URL ? 'postgres' : 'sqlite';
    printResult(opts, { status: 'ok', home, engine, masterKeyFile: process.env.KAKITOME_MASTER_KEY ? null : keyFile, masterKeyCreated: created, masterKeyId }, () => [
      `Store ready (${engine}) in ${home}.`,
      created ? `Master key created: ${keyFile}. Back it up apart from the store.` : 'Using the configured master key.',
    ]);
    return 0;
  }));
}
