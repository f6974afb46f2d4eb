/**
 * Password hashes for people who sign in to the console: Argon2id from node:crypto
 * (RFC 9106, its second recommended setting: 64 MiB, 3 passes, 4 lanes, as the
 * master key file uses), run on libuv's thread pool so a sign-in never stalls the
 * event loop. Stored in the PHC string form other tools read:
 *
 *   $argon2id$v=19$m=65536,t=3,p=4$<salt, base64 without padding>$<hash, same>
 *
 * Verification reads the parameters from the string (a later default can raise
 * them; `needsRehash` says when to), within bounds, so a tampered row cannot make a
 * sign-in allocate more than 256 MiB or run unbounded passes. Passwords are NFC
 * normalised UTF-8, 8 to 1,024 characters (NIST SP 800-63B 5.1.1.2: at least 8, no
 * composition rules; the upper bound keeps hashing cost fixed).
 */
import * as nodeCrypto from 'node:crypto';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { KakitomeError } from '../errors.ts';

export interface Argon2Parameters {
  memoryKiB: number;
  passes: number;
  parallelism: number;
}

export const DEFAULT_PASSWORD_HASH: Argon2Parameters = { memoryKiB: 65536, passes: 3, parallelism: 4 };
export const MIN_PASSWORD_LENGTH = 8;
export const MAX_PASSWORD_LENGTH = 1024;
const MAX_MEMORY_KIB = 256 * 1024;
const SALT_BYTES = 16;
const TAG_BYTES = 32;

type Argon2 = (algorithm: 'argon2id', p: { message: Buffer; nonce: Buffer; parallelism: number; tagLength: number; memory: number; passes: number }, callback: (e: Error | null, key: Buffer) => void) => void;
/** node:crypto's Argon2 (Node 24.7 and later). */
const argon2 = (nodeCrypto as { argon2?: Argon2 }).argon2;

/** A 32-byte Argon2id key from a password (NFC) and salt; also the backup archive's key (store/encrypted-backup.ts). */
export function deriveArgon2id(password: string, salt: Buffer, p: Argon2Parameters): Promise<Buffer> {
  if (!argon2) return Promise.reject(new KakitomeError('UNSUPPORTED_ALG', 'Password hashing needs Argon2, which this Node.js lacks (24.7 or later has it).'));
  const message = Buffer.from(password.normalize('NFC'), 'utf8');
  return new Promise<Buffer>((resolve, reject) => {
    argon2('argon2id', { message, nonce: salt, parallelism: p.parallelism, tagLength: TAG_BYTES, memory: p.memoryKiB, passes: p.passes }, (e, key) => {
      message.fill(0);
      if (e) reject(e);
      else resolve(key);
    });
  });
}

/** INVALID_ARGUMENT unless the password's length is within bounds (in characters, after NFC). */
export function checkPasswordLength(password: string): void {
  const length = [...password.normalize('NFC')].length;
  if (length < MIN_PASSWORD_LENGTH) throw new KakitomeError('INVALID_ARGUMENT', `A password has at least ${MIN_PASSWORD_LENGTH} characters.`);
  if (length > MAX_PASSWORD_LENGTH) throw new KakitomeError('INVALID_ARGUMENT', `A password has at most ${MAX_PASSWORD_LENGTH} characters.`);
}

const b64 = (b: Buffer): string => b.toString('base64').replace(/=+$/, '');

/** The PHC string of a new random-salted Argon2id hash of `password`. */
export async function hashPassword(password: string, p: Argon2Parameters = DEFAULT_PASSWORD_HASH): Promise<string> {
  checkPasswordLength(password);
  const salt = randomBytes(SALT_BYTES);
  const tag = await deriveArgon2id(password, salt, p);
  return `$argon2id$v=19$m=${p.memoryKiB},t=${p.passes},p=${p.parallelism}$${b64(salt)}$${b64(tag)}`;
}

interface ParsedHash {
  params: Argon2Parameters;
  salt: Buffer;
  tag: Buffer;
}

const PHC = /^\$argon2id\$v=19\$m=(\d{1,7}),t=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/]{22,88})\$([A-Za-z0-9+/]{43,88})$/;

function parseHash(text: string): ParsedHash | undefined {
  const m = PHC.exec(text);
  if (!m) return undefined;
  const params = { memoryKiB: Number(m[1]), passes: Number(m[2]), parallelism: Number(m[3]) };
  if (params.parallelism < 1 || params.parallelism > 16 || params.passes < 1 || params.passes > 16) return undefined;
  if (params.memoryKiB < 8 * params.parallelism || params.memoryKiB > MAX_MEMORY_KIB) return undefined;
  return { params, salt: Buffer.from(m[4]!, 'base64'), tag: Buffer.from(m[5]!, 'base64') };
}

/** Stored hashes to spend the same time on when there is no one to check (unknown address), per cost: see verifyPassword. */
const decoys = new Map<string, Promise<string>>();

/**
 * True when `password` matches the PHC string `stored`. With `stored` undefined (no
 * such person, or no password set) a decoy hash of cost `decoyCost` (the cost of
 * the directory's own hashes) is computed and false returned, so the answer takes
 * as long as for a wrong password and does not tell who exists.
 * A malformed stored hash is false, never an exception a caller could leak.
 */
export async function verifyPassword(password: string, stored: string | undefined, decoyCost: Argon2Parameters = DEFAULT_PASSWORD_HASH): Promise<boolean> {
  const length = [...password.normalize('NFC')].length;
  const usable = length >= 1 && length <= MAX_PASSWORD_LENGTH;
  const parsed = stored === undefined ? undefined : parseHash(stored);
  if (!parsed || !usable) {
    const key = `${decoyCost.memoryKiB},${decoyCost.passes},${decoyCost.parallelism}`;
    if (!decoys.has(key)) decoys.set(key, hashPassword('decoy password, never matches', decoyCost));
    const d = parseHash(await decoys.get(key)!)!;
    await deriveArgon2id(usable ? password : 'x', d.salt, d.params);
    return false;
  }
  const tag = await deriveArgon2id(password, parsed.salt, parsed.params);
  return tag.length === parsed.tag.length && timingSafeEqual(tag, parsed.tag);
}

/** True when `stored` was made with weaker parameters than `p` (rehash at the next successful sign-in). */
export function needsRehash(stored: string, p: Argon2Parameters = DEFAULT_PASSWORD_HASH): boolean {
  const parsed = parseHash(stored);
  return !parsed || parsed.params.memoryKiB < p.memoryKiB || parsed.params.passes < p.passes || parsed.params.parallelism < p.parallelism;
}
