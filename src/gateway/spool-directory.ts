/**
 * The gateway's spool directory (docs/gateway.md, "Large messages"): messages over
 * streamAboveBytes, their copies and decrypted forms wait there while they are
 * processed and relayed. Each spool file lives in a private directory of its own
 * (0700, file 0600) that is removed as soon as the file is open
 * (src/cms/stream/content-spool.ts): the open handle is the only way to the bytes,
 * and the kernel frees them when it closes, also when the process dies. What a crash
 * between creating and removing could leave (an empty private directory, or a file
 * in it) is removed at start, once it is a minute old.
 */
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { GatewayLog } from './gateway-log.ts';

/** ContentSpool's names for its private directories. */
const SPOOL_PREFIX = 'kakitome-spool-';
const STALE_MS = 60_000;

/** Creates `dir` (0700) if it is missing, removes what crashed spools left in it, and returns it. */
export async function prepareSpoolDirectory(dir: string, log: GatewayLog): Promise<string> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const now = Date.now();
  let removed = 0;
  for (const name of await readdir(dir)) {
    if (!name.startsWith(SPOOL_PREFIX)) continue;
    const path = join(dir, name);
    try {
      if (now - (await stat(path)).mtimeMs < STALE_MS) continue;
      await rm(path, { recursive: true, force: true });
      removed++;
    } catch {
      // Another process's, or gone already.
    }
  }
  if (removed) log('spool-swept', { removed });
  return dir;
}

/**
 * The most one spool may hold for a message of at most `limit` bytes: its copies are
 * larger (base64 is 4/3 of the bytes, plus line breaks, signatures and header fields).
 */
export function spoolBytesFor(limit: number): number {
  return Math.ceil(limit * 1.5) + 1024 * 1024;
}
