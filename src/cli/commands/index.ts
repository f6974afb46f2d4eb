/**
 * The command registry: each module adds one subcommand to the program. New
 * commands (store, CA) are added to this list. The message commands (sign, verify,
 * encrypt, decrypt, inspect) are also in main.ts's MESSAGE_COMMANDS, which loads
 * just the one a run names.
 */
import type { Command } from 'commander';
import { register as registerSign } from './sign.ts';
import { register as registerVerify } from './verify.ts';
import { register as registerEncrypt } from './encrypt.ts';
import { register as registerDecrypt } from './decrypt.ts';
import { register as registerInspect } from './inspect.ts';
import { register as registerStoreInit } from './store-init.ts';
import { register as registerStoreKeys } from './store-keys.ts';
import { register as registerStoreCerts } from './store-certs.ts';
import { register as registerCa } from './ca-authority.ts';
import { register as registerStoreBackup } from './store-backup.ts';
import { register as registerStoreMasterKey } from './store-master-key.ts';
import { register as registerTenant } from './tenant.ts';
import { register as registerServe } from './serve.ts';
import { register as registerGateway } from './gateway.ts';
import { register as registerPolicy } from './policy.ts';
import { register as registerDkim } from './dkim.ts';

export const COMMANDS: ReadonlyArray<(program: Command) => void> = [
  registerSign,
  registerVerify,
  registerEncrypt,
  registerDecrypt,
  registerInspect,
  registerStoreInit,
  registerStoreKeys,
  registerStoreCerts,
  registerCa,
  registerStoreBackup,
  registerStoreMasterKey,
  registerTenant,
  registerServe,
  registerGateway,
  registerPolicy,
  registerDkim,
];
