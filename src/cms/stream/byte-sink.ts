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

