/**
 * Where streaming producers write: a Node Writable (backpressure via 'drain') or a
 * file we own whose writes are awaited to completion. The second is what lets the
 * file helpers reuse their input buffers (read-file-chunks.ts): once write() has
 * resolved, nothing refers to the chunk any more.
 */
import type { Writable } from 'node:stream';
import { endWritable, writeChunk } from './write-chunk.ts';

export interface ByteSink {
  /** Resolves when the sink can take more; for owned files, when the bytes are written. */
  write(chunk: Uint8Array): Promise<void> | undefined;
  end(): Promise<void>;
}

export function writableSink(w: Writable, end: boolean): ByteSink {
  return {
    write: (c) => writeChunk(w, c),
    end: () => (end ? endWritable(w) : Promise.resolve()),
  };
}
