/**
 * Reads a file in chunks that reuse two fixed buffers, for the file helpers.
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
  try {
    const ring = [Buffer.allocUnsafe(size), Buffer.allocUnsafe(size)];
    for (let i = 0; ; i++) {
      const buf = ring[i & 1]!;
      const { bytesRead } = await fh.read(buf, 0, size, null);
      if (bytesRead === 0) return;
      yield bytesRead === size ? buf : buf.subarray(0, bytesRead);
    }
  } finally {
    await fh.close();
  }
}
