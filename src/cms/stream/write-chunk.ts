/**
 * Writes to a Node Writable and waits for 'drain' when write() says its buffer is
 * full (style guide, "Streaming": ignoring write() results lets one big message
 * exhaust memory). Rejects if the stream errors or closes while we wait.
 */
import type { Writable } from 'node:stream';

export function writeChunk(w: Writable, chunk: Uint8Array): Promise<void> | undefined {
  if (w.destroyed) return Promise.reject(new Error('output stream destroyed'));
  if (w.write(chunk)) return undefined;
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      w.off('drain', onDrain);
      w.off('error', onError);
      w.off('close', onClose);
    };
    const onDrain = () => {
      cleanup();
      resolve();
    };
    const onError = (e: Error) => {
      cleanup();
      reject(e);
    };
    const onClose = () => {
      cleanup();
      reject(new Error('output stream closed'));
    };
    w.on('drain', onDrain);
    w.on('error', onError);
    w.on('close', onClose);
  });
}

/** Ends a Writable and waits until everything written has been flushed. */
export function endWritable(w: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    w.once('error', reject);
    w.end(() => {
      w.off('error', reject);
      resolve();
    });
  });
}
