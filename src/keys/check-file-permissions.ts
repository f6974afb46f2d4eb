/**
 * Refusing secrets that others can read or replace, as ssh refuses a private key
 * file with group or other permissions ("UNPROTECTED PRIVATE KEY FILE") and, with
 * StrictModes, a home directory others can write to.
 *
 * - A master key file must be the user's (or root's) and carry no permission bits
 *   for group or others: a copy read by another account opens every stored key.
 * - The Kakitome home must be the user's (or root's) and not writable by group or
 *   others: whoever can write there can swap master.key or the database for their
 *   own (keys imported afterwards would be sealed under a key they hold) or plant
 *   them before `kakitome init`. A sticky world-writable directory (/tmp) is refused
 *   too: others cannot replace our files there, but they can create them first.
 *
 * POSIX only: on Windows (no uid, no mode bits) access is the ACLs' business and
 * nothing is checked.
 */
import { lstatSync, mkdirSync, statSync, type Stats } from 'node:fs';
import { KakitomeError } from '../errors.ts';

function ownerProblem(st: Stats): string | undefined {
  const uid = process.getuid?.();
  if (uid === undefined || st.uid === uid || st.uid === 0) return undefined;
  return `belongs to uid ${st.uid}, not to this user (uid ${uid})`;
}

const mode = (st: Stats) => (st.mode & 0o7777).toString(8).padStart(4, '0');

/** Refuses (KEY_INVALID) a secret file with any group/other permission or another owner. */
export function assertPrivateFile(path: string, what: string): void {
  if (process.platform === 'win32') return;
  const st = statSync(path);
  const owner = ownerProblem(st);
  if (owner) throw new KakitomeError('KEY_INVALID', `${what} ${path} ${owner}; refusing to use it.`);
  if (st.mode & 0o077) {
    throw new KakitomeError('KEY_INVALID', `${what} ${path} is accessible by group or others (mode ${mode(st)}); refusing to use it, as ssh refuses such a private key. Run: chmod 600 ${path}`, { remedy: 'permissions' });
  }
}

/**
 * Refuses (KEY_INVALID) a directory that group or others may write to, or another
 * user's, or a symbolic link to one that another user owns (she could point it
 * elsewhere once judged). A link of this user's own or root's is judged by where it leads.
 */
export function assertPrivateDirectory(path: string, what: string): void {
  if (process.platform === 'win32') return;
  const link = lstatSync(path);
  if (link.isSymbolicLink()) {
    const owner = ownerProblem(link);
    if (owner) throw new KakitomeError('KEY_INVALID', `${what} ${path} is a symbolic link that ${owner}; refusing to keep keys there.`, { remedy: 'permissions' });
  }
  const st = link.isSymbolicLink() ? statSync(path) : link;
  const owner = ownerProblem(st);
  if (owner) throw new KakitomeError('KEY_INVALID', `${what} ${path} ${owner}; refusing to keep keys there.`, { remedy: 'permissions' });
  if (!st.isDirectory()) throw new KakitomeError('KEY_INVALID', `${what} ${path} is not a directory.`, { remedy: 'permissions' });
  if (st.mode & 0o022) {
    throw new KakitomeError('KEY_INVALID', `${what} ${path} is writable by group or others (mode ${mode(st)}): anyone who can write there can replace the master key or the store. Run: chmod 700 ${path}`, { remedy: 'permissions' });
  }
}

/**
 * Creates `path` (mode 0700, with its missing parents) unless it exists, then judges
 * what is there (assertPrivateDirectory), before anything is written into it. In
 * that order: judged first and created after, a directory another account made in
 * between (mkdir tolerates it) was used as if it were new.
 */
export function ensurePrivateDirectory(path: string, what: string): void {
  mkdirSync(path, { recursive: true, mode: 0o700 });
  assertPrivateDirectory(path, what);
}
