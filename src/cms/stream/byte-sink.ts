/**
 * Where streaming producers write: a Node Writable (backpressure via 'drain') or a
 * file we own whose writes are awaited to completion. The second is what lets the
 * file helpers reuse their input buffers (read-file-chunks.ts): once write() has
 * resolved, nothing refers to the chunk any more.
 */
import type { Writable } from 'node:stream';
import { endWritable, writeChunk } from './write-chunk.ts';

export interface ByteSink {
  /** Writes the chunks in order. Resolves when the sink can take more; for owned files, when the bytes are written. */
  write(...chunks: Uint8Array[]): Promise<void> | undefined;
  end(): Promise<void>;
}

/** A sink over a file we own: each write is one writev(2), awaited. */
export function fileSink(file: { write(...chunks: Uint8Array[]): Promise<void> }): ByteSink {
  return { write: (...chunks) => file.write(...chunks), end: () => Promise.resolve() };
}

export function writableSink(w: Writable, end: boolean): ByteSink {
  return {
    write: (...chunks) => {
      let wait: Promise<void> | undefined;
      for (const c of chunks) wait = writeChunk(w, c) ?? wait;
      return wait;
    },
    end: () => (end ? endWritable(w) : Promise.resolve()),
  };
}


/**
 * A fresh copy of `bytes` for a Writable (which keeps what it is given, so reused
 * buffers cannot be handed to it), made through a Latin-1 string on purpose.
 *
 * Why: V8 frees ArrayBuffers only at a garbage collection, and a stream of fresh
 * buffers alone does not trigger one until about 64 MiB of them are dead (its
 * external-memory limit); peak RSS then exceeds the 128 MiB target at 1 GiB. The
 * short-lived strings fill V8's young generation and make it collect every few MiB,
 * taking the dead buffers with it: +16 MiB instead of +60 MiB, for about 0.2 s of
 * CPU per GiB (measured, docs/performance.md). Pieces stay under 128 KiB so the
 * strings are ordinary young objects.
 */
export function freshCopy(bytes: Uint8Array, start = 0, end = bytes.length): Buffer {
  const b = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Buffer.from(b.toString('latin1', start, end), 'latin1');
}

/**
 * Writes to `w` with backpressure checked once per `batch` bytes instead of once per
 * chunk: with a 16 KiB highWaterMark (fs.WriteStream's default) waiting for 'drain'
 * after every small chunk made one round trip to the file system per chunk, about a
 * third of a 1 GiB decryption's time. At most `batch` bytes beyond the stream's own
 * buffer are queued; the stream writes what is queued in one writev(2).
 */
export function batchedWriter(w: Writable, batch = 256 * 1024): { write(chunk: Uint8Array): Promise<void>; flush(): Promise<void> } {
  let pending: Promise<void> | undefined;
  let queued = 0;
  return {
    async write(chunk) {
      if (pending) {
        if (w.destroyed) throw new Error('output stream destroyed');
        w.write(chunk);
      } else {
        pending = writeChunk(w, chunk);
        // Awaited below or in flush(); an error meanwhile must not go unhandled.
        pending?.catch(() => undefined);
      }
      queued += chunk.length;
      if (pending && queued >= batch) await this.flush();
    },
    async flush() {
      const p = pending;
      pending = undefined;
      queued = 0;
      if (p) await p;
    },
  };
}
