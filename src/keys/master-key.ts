/**
 * The master key that seals every private key in the store (see seal-private-key.ts).
 *
 * Sources, first found wins:
 * 1. the KAKITOME_MASTER_KEY environment variable, removed from process.env as soon
 *    as it is read (child processes and later code do not see it; the kernel's copy
 *    of the initial environment, /proc/PID/environ, stays readable by the same user
 *    until exit: prefer the sources below);
 * 2. KAKITOME_MASTER_KEY_FD=N: the contents of file descriptor N (closed after reading);
 * 3. systemd credentials: $CREDENTIALS_DIRECTORY/kakitome-master-key
 *    (LoadCredential= or LoadCredentialEncrypted= in the unit);
 * 4. an explicit key file, KAKITOME_MASTER_KEY_FILE, then <KAKITOME_HOME>/master.key.
 *    A key file is refused when group or others have any permission on it, or when
 *    its directory is writable by group or others (check-file-permissions.ts).
 *
 * Contents: format 1 is the 32 bytes in base64 or hex (for unattended gateways,
 * with the file's permissions or the service manager as protection); format 2 is the
 * key wrapped under a passphrase (protect-master-key.ts), whose passphrase comes from
 * the caller or from $CREDENTIALS_DIRECTORY/kakitome-master-pass.
 *
 * The key never leaves a KeyObject except when a key file is written; it is never
 * logged (errors name the source, never the value).
 */
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { homedir } from 'node:os';
import { KakitomeError } from '../errors.ts';
import { assertPrivateDirectory, assertPrivateFile } from './check-file-permissions.ts';
import { masterKeyFromBytes, type MasterKey } from './master-key-bytes.ts';
import { isProtectedMasterKey, protectMasterKey, unprotectMasterKey, type MasterKeyKdf } from './protect-master-key.ts';

export { masterKeyFromBytes, type MasterKey } from './master-key-bytes.ts';

/** A key file longer than this is not a key file. */
const MAX_KEY_FILE_BYTES = 64 * 1024;
export const MASTER_KEY_CREDENTIAL = 'kakitome-master-key';
export const MASTER_PASS_CREDENTIAL = 'kakitome-master-pass';

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
    throw new KakitomeError('KEY_INVALID', `The master key from ${source} is not 32 bytes in base64 or hex, nor a passphrase-protected key file.`);
  }
  try {
    return masterKeyFromBytes(raw);
  } finally {
    raw.fill(0);
  }
}

export interface MasterKeySource {
  env?: NodeJS.ProcessEnv;
  /** An explicit key file (from configuration). */
  file?: string;
  /** The Kakitome home whose master.key is the last resort (default: KAKITOME_HOME, else ~/.kakitome). */
  home?: string;
  /** The passphrase of a protected key (format 2). */
  passphrase?: string;
}

/** A master key's text and where it came from (for messages). */
export interface MasterKeyText {
  text: string;
  origin: string;
}

/** Set once this process has moved KAKITOME_MASTER_KEY (or its descriptor) out of its environment. */
let consumed: string | undefined;

function readKeyFile(file: string): MasterKeyText {
  assertPrivateDirectory(dirname(file), 'The directory of the master key,');
  assertPrivateFile(file, 'The master key file');
  if (statSync(file).size > MAX_KEY_FILE_BYTES) throw new KakitomeError('KEY_INVALID', `${file} is too large to be a master key file.`);
  return { text: readFileSync(file, 'latin1'), origin: file };
}

function readDescriptor(value: string, env: NodeJS.ProcessEnv): MasterKeyText {
  const fd = Number(value);
  if (!/^[0-9]+$/.test(value) || !Number.isSafeInteger(fd) || fd < 3) {
    throw new KakitomeError('INVALID_ARGUMENT', 'KAKITOME_MASTER_KEY_FD must name a file descriptor above 2 (0-2 are standard input, output and error).');
  }
  let data: Buffer;
  try {
    data = readFileSync(fd);
  } catch (e) {
    throw new KakitomeError('KEY_INVALID', `KAKITOME_MASTER_KEY_FD=${fd}: cannot read the master key from that descriptor (${(e as NodeJS.ErrnoException).code ?? 'error'}).`, { cause: e });
  } finally {
    try {
      closeSync(fd);
    } catch {
      // already closed: nothing left to protect
    }
  }
  if (env === process.env) {
    delete process.env.KAKITOME_MASTER_KEY_FD; // the descriptor is gone; children must not look for it
    consumed = `file descriptor ${fd}`;
  }
  if (data.length > MAX_KEY_FILE_BYTES) throw new KakitomeError('KEY_INVALID', `File descriptor ${fd} holds too much to be a master key.`);
  const text = data.toString('latin1');
  data.fill(0);
  return { text, origin: `file descriptor ${fd}` };
}

/** Reads the master key's text from the first source that has one (see the module comment). */
export function readMasterKeyText(source: MasterKeySource = {}): MasterKeyText {
  const env = source.env ?? process.env;
  const fromEnv = env.KAKITOME_MASTER_KEY;
  if (fromEnv) {
    if (env === process.env) {
      delete process.env.KAKITOME_MASTER_KEY;
      consumed = 'KAKITOME_MASTER_KEY';
    }
    return { text: fromEnv, origin: 'KAKITOME_MASTER_KEY' };
  }
  if (env.KAKITOME_MASTER_KEY_FD) return readDescriptor(env.KAKITOME_MASTER_KEY_FD, env);
  const credential = env.CREDENTIALS_DIRECTORY ? join(env.CREDENTIALS_DIRECTORY, MASTER_KEY_CREDENTIAL) : undefined;
  // systemd makes the credentials directory private to the service; its modes are systemd's.
  if (credential && existsSync(credential)) return { text: readFileSync(credential, 'latin1'), origin: `systemd credential ${MASTER_KEY_CREDENTIAL}` };
  const file = source.file ?? env.KAKITOME_MASTER_KEY_FILE ?? join(source.home ?? resolveKakitomeHome(env), 'master.key');
  if (!existsSync(file)) {
    const earlier = consumed && env === process.env ? ` (${consumed} was read and removed from the environment when this process first opened the store: pass the MasterKey on instead of opening it again)` : '';
    throw new KakitomeError('KEY_INVALID', `No master key: create ${file} (initialising the store does), or give it by KAKITOME_MASTER_KEY_FD, a systemd credential ${MASTER_KEY_CREDENTIAL}, or KAKITOME_MASTER_KEY${earlier}.`, { remedy: 'masterKey' });
  }
  return readKeyFile(file);
}

/** The passphrase from systemd credentials ($CREDENTIALS_DIRECTORY/kakitome-master-pass, first line), if there is one. */
export function credentialPassphrase(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const file = env.CREDENTIALS_DIRECTORY ? join(env.CREDENTIALS_DIRECTORY, MASTER_PASS_CREDENTIAL) : undefined;
  if (!file || !existsSync(file)) return undefined;
  return readFileSync(file, 'utf8').split(/\r?\n/)[0];
}

/** The key in `t`; a protected one needs `passphrase` (KEY_INVALID without it or when it is wrong). */
export function openMasterKeyText(t: MasterKeyText, passphrase?: string): MasterKey {
  if (!isProtectedMasterKey(t.text)) return parseMasterKey(t.text, t.origin);
  if (passphrase === undefined) {
    throw new KakitomeError('KEY_INVALID', `The master key in ${t.origin} is protected by a passphrase: give it (a command reads it as KAKITOME_MASTER_PASS_SPEC says, e.g. file:PATH or fd:N, else asks on the terminal; a service can use the systemd credential ${MASTER_PASS_CREDENTIAL}).`);
  }
  return unprotectMasterKey(t.text, passphrase, t.origin);
}

/** Loads the master key, or fails with KEY_INVALID naming where it looked. */
export function loadMasterKey(source: MasterKeySource = {}): MasterKey {
  const t = readMasterKeyText(source);
  return openMasterKeyText(t, source.passphrase ?? (isProtectedMasterKey(t.text) ? credentialPassphrase(source.env) : undefined));
}

/**
 * Writes `text` as the key file `file`, mode 0600, all or nothing: a temporary file
 * beside it is written and synced, then linked into place (refusing an existing
 * file) or, with `replace`, renamed over it. A crash leaves the old file or the new
 * one, never a part of either.
 */
export function writeMasterKeyFile(file: string, text: string, options: { replace?: boolean } = {}): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  if (!options.replace && existsSync(file)) throw new KakitomeError('INVALID_ARGUMENT', `${file} exists; a master key is never overwritten.`);
  const tmp = join(dirname(file), `.${basename(file)}.${randomBytes(6).toString('hex')}.partial`);
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeSync(fd, text, 0, 'latin1');
    fsyncSync(fd);
    closeSync(fd);
    if (options.replace) renameSync(tmp, file);
    else linkSync(tmp, file); // EEXIST if another process created it meanwhile
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new KakitomeError('INVALID_ARGUMENT', `${file} exists; a master key is never overwritten.`, { cause: e });
    throw e;
  } finally {
    rmSync(tmp, { force: true });
  }
}

/**
 * Writes a fresh random master key file (mode 0600); refuses to overwrite one. With
 * `passphrase` the file is format 2 (protected), else format 1.
 */
export function createMasterKeyFile(file: string, options: { passphrase?: string; kdf?: MasterKeyKdf } = {}): MasterKey {
  const raw = randomBytes(32);
  try {
    const master = masterKeyFromBytes(raw);
    const text = options.passphrase !== undefined ? protectMasterKey(master, options.passphrase, options.kdf) : `${raw.toString('base64')}\n`;
    writeMasterKeyFile(file, text);
    return master;
  } finally {
    raw.fill(0);
  }
}
