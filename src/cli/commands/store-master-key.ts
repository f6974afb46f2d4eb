/**
 * `kakitome master-key protect`: puts a passphrase on the master key file (or
 * changes it). The key itself is unchanged, so nothing in the store is touched:
 * only master.key is rewritten, atomically, in format 2 (keys/protect-master-key.ts).
 */
import type { Command } from 'commander';
import { join } from 'node:path';
import { KakitomeError } from '../../errors.ts';
import { resolveKakitomeHome } from '../../keys/master-key.ts';
import { resolveNewPassphrase } from '../pass-spec.ts';
import { commandAction } from './message-options.ts';
import { addStoreOptions, masterKeyPassphrase, printResult, type StoreCliOptions } from './store-options.ts';

interface ProtectOpts extends StoreCliOptions { newPass: string }

export function register(program: Command): void {
  const mk = program.command('master-key').summary('the master key file: protect it with a passphrase');
  const protect = mk.command('protect').description('Protect the master key file with a passphrase (Argon2id), or change its passphrase. The key stays the same; the store is not touched. The current passphrase, if any, is read as for every command (KAKITOME_MASTER_PASS_SPEC, else the terminal).')
    .option('--new-pass <spec>', 'the new passphrase: prompt (asked twice), file:PATH, fd:N or env:VAR', 'prompt');
  addStoreOptions(protect).action(commandAction('master-key protect', async (o: ProtectOpts) => {
    const env = process.env;
    if (env.KAKITOME_MASTER_KEY || env.KAKITOME_MASTER_KEY_FD || env.CREDENTIALS_DIRECTORY) {
      throw new KakitomeError('INVALID_ARGUMENT', 'The master key comes from the environment, a descriptor or systemd credentials here; `master-key protect` rewrites a key file: unset those and point KAKITOME_MASTER_KEY_FILE or --home at the file.');
    }
    const home = o.home ?? resolveKakitomeHome(env);
    const file = env.KAKITOME_MASTER_KEY_FILE ?? join(home, 'master.key');
    const [{ readMasterKeyText, openMasterKeyText, writeMasterKeyFile }, { isProtectedMasterKey, protectMasterKey }, { openStore }] = await Promise.all([
      import('../../keys/master-key.ts'),
      import('../../keys/protect-master-key.ts'),
      import('../../store/open-store.ts'),
    ]);
    const current = readMasterKeyText({ env, file });
    const master = openMasterKeyText(current, isProtectedMasterKey(current.text) ? await masterKeyPassphrase() : undefined);
    // The key must be this store's: protecting a stray file would hide a mistake.
    const store = await openStore({ ...(o.home ? { home: o.home } : {}), ...(o.databaseUrl ? { databaseUrl: o.databaseUrl } : {}), masterKey: master, actor: `cli:${env.USER ?? 'unknown'}` });
    try {
      const passphrase = await resolveNewPassphrase(o.newPass, 'New master key passphrase: ');
      writeMasterKeyFile(file, protectMasterKey(master, passphrase), { replace: true });
      await store.audit('master-key.protect', master.id, file);
    } finally {
      await store.close();
    }
    printResult(o, { status: 'ok', masterKeyFile: file, masterKeyId: master.id }, () => [`${file} is now protected by a passphrase (key ${master.id}, unchanged). Keep the passphrase as safe as the key: without it the store's keys cannot be opened.`]);
    return 0;
  }));
}
