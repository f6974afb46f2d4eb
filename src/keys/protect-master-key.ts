/**
 * A master key file protected by a passphrase (format 2), for a person's own store
 * or a host where the key file may be copied with the disk. Format 1 (the 32 bytes
 * in base64 or hex) stays readable; `kakitome master-key protect` turns one into
 * the other without changing the key (the store's sealed keys are untouched).
 *
 *   kakitome-master-key 2
 *   id 3f2a9c...                         the key's public id (names it without the passphrase)
 *   kdf argon2id m=65536 t=3 p=4          or: kdf scrypt N=131072 r=8 p=1
 *   salt <base64, 16 bytes>
 *   wrapped <base64: nonce(12) || AES-256-GCM(kek, key)(32) || tag(16)>
 *
 * The wrapping key comes from the passphrase (UTF-8, NFC) through Argon2id (RFC 9106,
 * its second recommended setting: 64 MiB, 3 passes, 4 lanes) from node:crypto, or
 * scrypt (N=2^17, r=8, p=1) where Argon2 is missing. Every line above `wrapped` is the
 * GCM additional data, so lowering the parameters or swapping the id breaks the tag.
 * A hostile file cannot demand more than 1 GiB or unbounded passes.
 */
import * as nodeCrypto from 'node:crypto';
import { createCipheriv, createDecipheriv, randomBytes, scryptSync } from 'node:crypto';
import { KakitomeError } from '../errors.ts';
import { masterKeyFromBytes, type MasterKey } from './master-key-bytes.ts';

export type MasterKeyKdf =
  | { name: 'argon2id'; memoryKiB: number; passes: number; parallelism: number }
  | { name: 'scrypt'; N: number; r: number; p: number };

const HEADER = 'kakitome-master-key 2';
const MAX_MEMORY = 1024 ** 3;

type Argon2Sync = (algorithm: 'argon2id', p: { message: Buffer; nonce: Buffer; parallelism: number; tagLength: number; memory: number; passes: number }) => Buffer;
/** node:crypto's Argon2 (Node 24.7 and later; package.json allows any Node 24). */
const argon2Sync = (nodeCrypto as { argon2Sync?: Argon2Sync }).argon2Sync;

/** Argon2id when this Node has it, else scrypt. */
export function defaultMasterKeyKdf(): MasterKeyKdf {
  return argon2Sync ? { name: 'argon2id', memoryKiB: 65536, passes: 3, parallelism: 4 } : { name: 'scrypt', N: 1 << 17, r: 8, p: 1 };
}

function kdfLine(k: MasterKeyKdf): string {
  return k.name === 'argon2id' ? `kdf argon2id m=${k.memoryKiB} t=${k.passes} p=${k.parallelism}` : `kdf scrypt N=${k.N} r=${k.r} p=${k.p}`;
}

function damaged(origin: string, what: string): never {
  throw new KakitomeError('KEY_INVALID', `The master key file ${origin} is damaged (${what}).`);
}

function parseKdf(line: string, origin: string): MasterKeyKdf {
  const m = /^kdf (argon2id|scrypt) ([A-Za-z]=\d{1,10}) ([a-z]=\d{1,10}) ([a-z]=\d{1,10})$/.exec(line) ?? damaged(origin, 'kdf line');
  const v = (s: string, name: string) => (s.startsWith(`${name}=`) ? Number(s.slice(name.length + 1)) : damaged(origin, `kdf parameter ${name}`));
  const inRange = (n: number, lo: number, hi: number) => Number.isSafeInteger(n) && n >= lo && n <= hi;
  if (m[1] === 'argon2id') {
    const k = { name: 'argon2id', memoryKiB: v(m[2]!, 'm'), passes: v(m[3]!, 't'), parallelism: v(m[4]!, 'p') } as const;
    if (!inRange(k.parallelism, 1, 16) || !inRange(k.passes, 1, 16) || !inRange(k.memoryKiB, 8 * k.parallelism, MAX_MEMORY / 1024)) damaged(origin, 'argon2id parameters out of range');
    return k;
  }
  const k = { name: 'scrypt', N: v(m[2]!, 'N'), r: v(m[3]!, 'r'), p: v(m[4]!, 'p') } as const;
  if (!inRange(k.N, 1024, 1 << 20) || (k.N & (k.N - 1)) !== 0 || !inRange(k.r, 1, 16) || !inRange(k.p, 1, 4) || 128 * k.N * k.r > MAX_MEMORY) damaged(origin, 'scrypt parameters out of range');
  return k;
}

function deriveKek(kdf: MasterKeyKdf, passphrase: string, salt: Buffer): Buffer {
  const message = Buffer.from(passphrase.normalize('NFC'), 'utf8');
  try {
    if (kdf.name === 'argon2id') {
      if (!argon2Sync) throw new KakitomeError('UNSUPPORTED_ALG', 'This master key file uses Argon2id, which this Node.js lacks (24.7 or later has it).');
      return argon2Sync('argon2id', { message, nonce: salt, parallelism: kdf.parallelism, tagLength: 32, memory: kdf.memoryKiB, passes: kdf.passes });
    }
    return scryptSync(message, salt, 32, { N: kdf.N, r: kdf.r, p: kdf.p, maxmem: 128 * kdf.N * kdf.r + 16 * 1024 * 1024 });
  } finally {
    message.fill(0);
  }
}

/** True when `text` is a passphrase-protected master key file (format 2). */
export function isProtectedMasterKey(text: string): boolean {
  return text.startsWith(`${HEADER}\n`);
}

/** The file text of `master` protected by `passphrase` (never empty). */
export function protectMasterKey(master: MasterKey, passphrase: string, kdf: MasterKeyKdf = defaultMasterKeyKdf()): string {
  if (passphrase === '') throw new KakitomeError('INVALID_ARGUMENT', 'A master key passphrase cannot be empty.');
  const salt = randomBytes(16);
  const head = `${HEADER}\nid ${master.id}\n${kdfLine(kdf)}\nsalt ${salt.toString('base64')}\n`;
  parseKdf(kdfLine(kdf), 'being written'); // the same bounds as reading: never write a file we would refuse
  const kek = deriveKek(kdf, passphrase, salt);
  const raw = master.key.export();
  try {
    const nonce = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', kek, nonce);
    c.setAAD(Buffer.from(head, 'utf8'));
    const wrapped = Buffer.concat([nonce, c.update(raw), c.final(), c.getAuthTag()]);
    return `${head}wrapped ${wrapped.toString('base64')}\n`;
  } finally {
    kek.fill(0);
    raw.fill(0);
  }
}

/** Opens a format-2 file; a wrong passphrase or an altered file is KEY_INVALID naming `origin`, never the passphrase. */
export function unprotectMasterKey(text: string, passphrase: string, origin: string): MasterKey {
  const lines = text.split('\n');
  if (lines.length !== 6 || lines[0] !== HEADER || lines[5] !== '') damaged(origin, 'not 5 lines');
  const id = /^id ([0-9a-f]{16})$/.exec(lines[1]!)?.[1] ?? damaged(origin, 'id line');
  const kdf = parseKdf(lines[2]!, origin);
  const salt = Buffer.from(/^salt ([A-Za-z0-9+/]{22}==)$/.exec(lines[3]!)?.[1] ?? damaged(origin, 'salt line'), 'base64');
  const wrapped = Buffer.from(/^wrapped ([A-Za-z0-9+/]{80})$/.exec(lines[4]!)?.[1] ?? damaged(origin, 'wrapped line'), 'base64');
  const head = `${lines.slice(0, 4).join('\n')}\n`;
  const kek = deriveKek(kdf, passphrase, salt);
  let raw: Buffer;
  try {
    const d = createDecipheriv('aes-256-gcm', kek, wrapped.subarray(0, 12));
    d.setAAD(Buffer.from(head, 'utf8'));
    d.setAuthTag(wrapped.subarray(44));
    raw = Buffer.concat([d.update(wrapped.subarray(12, 44)), d.final()]);
  } catch {
    throw new KakitomeError('KEY_INVALID', `The master key in ${origin} did not open: wrong passphrase, or the file was altered.`);
  } finally {
    kek.fill(0);
  }
  try {
    const master = masterKeyFromBytes(raw);
    if (master.id !== id) damaged(origin, 'the key does not match its id');
    return master;
  } finally {
    raw.fill(0);
  }
}
