/**
 * Reads a file in chunks that reuse three fixed buffers, for the file helpers.
 *
 * Why not fs.createReadStream: every chunk it yields is a fresh buffer, and V8 frees
 * such external memory only when a garbage collection happens to run, which it
 * postpones until tens of MiB have piled up; peak RSS then grows by about 64 MiB
 * whatever the chunk size. Reusing buffers keeps the helpers' footprint flat
 * (docs/performance.md). The contract: a chunk is valid until the consumer asks
 * for the chunk after the next one, so consumers must finish with each chunk
 * (hash it, decipher it, await its write) before moving on.
 */
import { open } from 'node:fs/promises';

export const FILE_CHUNK_SIZE = 256 * 1024;

export async function* readFileChunks(path: string, size = FILE_CHUNK_SIZE): AsyncGenerator<Buffer> {
  const fh = await open(path, 'r');
  // Three buffers: the chunk the consumer holds, the one before it (still valid by
  // the contract above), and the one being read ahead while the consumer works, so
  // reading overlaps hashing, deciphering and writing.
  const ring = [Buffer.allocUnsafe(size), Buffer.allocUnsafe(size), Buffer.allocUnsafe(size)];
  const readInto = (i: number) => fh.read(ring[i % 3]!, 0, size, null).then(({ bytesRead }) => ({ buf: ring[i % 3]!, bytesRead }));
  let ahead: Promise<{ buf: Buffer; bytesRead: number }> | undefined;
  try {
    ahead = readInto(0);
    for (let i = 1; ; i++) {
      const { buf, bytesRead } = await ahead;
      ahead = undefined;
      if (bytesRead === 0) return;
      ahead = readInto(i);
      yield bytesRead === size ? buf : buf.subarray(0, bytesRead);
    }
  } finally {
    // Never close the handle under an outstanding read.
    if (ahead) await ahead.catch(() => undefined);
    await fh.close();
  }
}
