/**
 * The master key that seals every private key in the store (see seal-private-key.ts).
 *
 * Sources, first found wins: the KAKITOME_MASTER_KEY environment variable, an
 * explicit key file, KAKITOME_MASTER_KEY_FILE, then <KAKITOME_HOME>/master.key.
 * The value is 32 random bytes written as base64 or hex. A passphrase is not
 * accepted: a gateway starts unattended, and a low-entropy secret stretched by a KDF
 * would be the weakest link of the whole store.
 *
 * The key never leaves this module's KeyObject except when a new key file is
 * written; it is never logged (errors name the source, never the value).
 */
import { createHash, createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { homedir } from 'node:os';
import { KakitomeError } from '../errors.ts';

export interface MasterKey {
  /** A public identifier of the key (not derived reversibly): lets a wrong key be named. */
  readonly id: string;
  readonly key: KeyObject;
}

/** KAKITOME_HOME, default ~/.kakitome. */
export function resolveKakitomeHome(env: NodeJS.ProcessEnv = process.env): string {
  return env.KAKITOME_HOME || join(homedir(), '.kakitome');
}

function parseMasterKey(text: string, source: string): MasterKey {
  const t = text.trim();
  let raw: Buffer | undefined;
  if (/^[0-9a-fA-F]{64}$/.test(t)) raw = Buffer.from(t, 'hex');
  else if (/^[A-Za-z0-9+/]{43}=?$/.test(t)) raw = Buffer.from(t, 'base64');
  if (!raw || raw.length !== 32) {
    throw new KakitomeError('KEY_INVALID', `The master key from ${source} is not 32 bytes in base64 or hex.`);
  }
  return masterKeyFromBytes(raw);
}

export function masterKeyFromBytes(raw: Uint8Array): MasterKey {
  if (raw.length !== 32) throw new KakitomeError('KEY_INVALID', 'A master key is 32 bytes.');
  const id = createHash('sha256').update('kakitome master key id\0').update(raw).digest('hex').slice(0, 16);
  return { id, key: createSecretKey(Buffer.from(raw)) };
}

export interface MasterKeySource {
  env?: NodeJS.ProcessEnv;
  /** An explicit key file (from configuration). */
  file?: string;
}

/** Loads the master key, or fails with KEY_INVALID naming where it looked. */
export function loadMasterKey(source: MasterKeySource = {}): MasterKey {
  const env = source.env ?? process.env;
  if (env.KAKITOME_MASTER_KEY) return parseMasterKey(env.KAKITOME_MASTER_KEY, 'KAKITOME_MASTER_KEY');
  const file = source.file ?? env.KAKITOME_MASTER_KEY_FILE ?? join(resolveKakitomeHome(env), 'master.key');
  if (!existsSync(file)) {
    throw new KakitomeError('KEY_INVALID', `No master key: set KAKITOME_MASTER_KEY or create ${file} (kakitome init).`);
  }
  return parseMasterKey(readFileSync(file, 'latin1'), file);
}

/** Writes a fresh random master key file (mode 0600); refuses to overwrite one. */
export function createMasterKeyFile(file: string): MasterKey {
  if (existsSync(file)) throw new KakitomeError('INVALID_ARGUMENT', `${file} exists; a master key is never overwritten.`);
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const raw = randomBytes(32);
  writeFileSync(file, `${raw.toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
  return masterKeyFromBytes(raw);
}
