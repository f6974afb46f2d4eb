/**
 * Benchmark inputs, generated at run time into a temporary directory (never
 * committed): a throwaway PKI (test/helpers/pki.ts) and a random MIME-like body of
 * the requested size, written in 1 MiB pieces so the generator itself stays small.
 */
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomFillSync } from 'node:crypto';
import { once } from 'node:events';

export interface BenchDir {
  dir: string;
  file(name: string): string;
  cleanup(): Promise<void>;
}

/** A fresh directory in `parent` (default the system's temporary directory). */
export async function createBenchDir(parent = tmpdir()): Promise<BenchDir> {
  const dir = await mkdtemp(join(parent, 'kakitome-bench-'));
  return { dir, file: (name) => join(dir, name), cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** Writes `bytes` of base64-looking text in CRLF lines (what a large signed attachment is). */
export async function writeContentFile(path: string, bytes: number): Promise<void> {
  const out = createWriteStream(path);
  const piece = Buffer.allocUnsafe(1 << 20);
  const raw = Buffer.allocUnsafe(((1 << 20) / 78) * 57 + 57);
  let left = bytes;
  while (left > 0) {
    randomFillSync(raw);
    const b64 = raw.toString('base64');
    let p = 0;
    let q = 0;
    while (p < piece.length) {
      const line = b64.slice(q, q + 76);
      q += 76;
      p += piece.write(line, p, 'latin1');
      if (p < piece.length) p += piece.write('\r\n', p, 'latin1');
    }
    const n = Math.min(left, piece.length);
    if (!out.write(piece.subarray(0, n))) await once(out, 'drain');
    left -= n;
  }
  out.end();
  await once(out, 'finish');
}
