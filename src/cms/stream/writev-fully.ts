/**
 * writev(2) until every byte is out: a short write (a full disk being freed, a
 * signal) leaves the rest for another call. Shared by AtomicFile and the CLI's
 * output writers.
 */
import type { FileHandle } from 'node:fs/promises';

export async function writevFully(fh: FileHandle, chunks: readonly Uint8Array[]): Promise<void> {
  let todo = chunks.filter((c) => c.length > 0);
  while (todo.length > 0) {
    const { bytesWritten } = await fh.writev(todo);
    let left = bytesWritten;
    const rest: Uint8Array[] = [];
    for (const c of todo) {
      if (left >= c.length) left -= c.length;
      else {
        rest.push(left > 0 ? c.subarray(left) : c);
        left = 0;
      }
    }
    todo = rest;
  }
}
