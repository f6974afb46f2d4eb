// Bounds Node's module compile cache (bin/kakitome.js enables it). Node keys its
// entries by file path under a directory per Node version, architecture and V8
// flags, and removes nothing: every checkout (each worktree, each CI clone) and
// every Node upgrade added ~35 MiB that stayed. The launcher gives each
// installation a directory of its own and, once a day, removes what no process
// has used for MAX_AGE_DAYS: other installations' directories, this one's
// directories of other Node versions or flags, and the layout before
// installations had their own (version directories at the top).
//
// Safe to run while other processes use the cache: only directories (never a
// symbolic link, never followed) with the names the launcher and Node give are
// removed, and only those older than the limit. Each process keeps its own
// directories fresh (touchInUse, at most once a day), so a directory in use is
// never that old; a process started longer ago that still reads one only
// compiles its modules again. Any failure leaves the cache as it is.
import { chmodSync, lstatSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const MAX_AGE_DAYS = 7;
const DAY_MS = 24 * 3600_000;
/** Where the last prune is recorded (its mtime). */
const MARKER = '.pruned';
/** Node's directory for one version, architecture, V8 flags hash and user: v24.21.0-x64-964aae3f-0. */
const NODE_TAG = /^v\d+\.\d+\.\d+-[\w.]+-[0-9a-f]+-\d+$/;
/** An installation's directory (installationDirectory in bin/kakitome.js): readable tail of its path, hash. */
const INSTALLATION = /^[\w.-]*-[0-9a-f]{8}$/;

/**
 * Makes the launcher's cache directories under `base` private again when this user
 * owns them but others could write there (made under umask 000 by an earlier
 * version, whose launcher let Node create them): their group and other write bits
 * are dropped, and this installation's directory, whose contents another account
 * could have planted, is removed (the launcher makes it anew, 0700). A directory
 * another user owns, or a link, is left alone: the cache is then not used.
 */
export function repairCacheDirectory(base, cacheDir) {
  const uid = process.getuid?.();
  let open = false;
  for (const d of [join(base, 'kakitome'), join(base, 'kakitome', 'node-compile-cache')]) {
    const st = lstatSync(d);
    if (!st.isDirectory() || st.uid !== uid) return;
    if (st.mode & 0o022) {
      chmodSync(d, st.mode & 0o7755);
      open = true;
    }
  }
  const st = lstatSync(cacheDir, { throwIfNoEntry: false });
  if (st !== undefined && (open || !st.isDirectory() || st.uid !== uid || (st.mode & 0o022) !== 0)) rmSync(cacheDir, { recursive: true, force: true });
}

const olderThan = (path, ms, now) => now - statSync(path).mtimeMs > ms;

/**
 * Marks this installation's directory and this process's tag directory as used
 * (their mtime), when it is more than a day old: one stat a start, a write a day.
 */
export function touchInUse(installation, tagged, now = Date.now()) {
  if (!olderThan(tagged, DAY_MS, now)) return;
  const at = new Date(now);
  utimesSync(tagged, at, at);
  utimesSync(installation, at, at);
}

/** Whether a day passed since the last prune of `root` (or none was made). */
export function pruneDue(root, now = Date.now()) {
  try {
    return olderThan(join(root, MARKER), DAY_MS, now);
  } catch {
    return true;
  }
}

/**
 * Removes the stale directories under `root` (the cache's top) and `installation`
 * (this installation's), never `installation` itself nor `tagged` (this
 * process's). Returns the paths removed.
 */
export function pruneCompileCache(root, installation, tagged, now = Date.now()) {
  writeFileSync(join(root, MARKER), '');
  const removed = [];
  const sweep = (dir, named) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, e.name);
      if (!e.isDirectory() || !named.test(e.name) || path === installation || path === tagged) continue;
      try {
        if (!olderThan(path, MAX_AGE_DAYS * DAY_MS, now)) continue;
        rmSync(path, { recursive: true, force: true });
        removed.push(path);
      } catch {
        // Removed by another process meanwhile, or not ours to remove: left.
      }
    }
  };
  sweep(root, new RegExp(`${INSTALLATION.source}|${NODE_TAG.source}`));
  sweep(installation, NODE_TAG);
  return removed;
}
