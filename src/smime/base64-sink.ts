/**
 * A ByteSink that base64-encodes what it receives (RFC 2045 section 6.8, 76
 * characters a line) into a Writable, honouring its backpressure: the body of a
 * streamed application/pkcs7-mime entity. It copies synchronously, so once write()
 * returned it holds no chunk (producers may release or reuse them).
 */
import type { Writable } from 'node:stream';
import type { ByteSink } from '../cms/stream/byte-sink.ts';
import { writeChunk } from '../cms/stream/write-chunk.ts';
import { Base64LineEncoder } from '../mime/encode-base64-lines.ts';

export function createBase64Sink(target: Writable): ByteSink {
  const encoder = new Base64LineEncoder();
  return {
    write: (...chunks) => {
      let wait: Promise<void> | undefined;
      for (const c of chunks) {
        const lines = encoder.push(c);
        if (lines) wait = writeChunk(target, lines) ?? wait;
      }
      return wait;
    },
    end: async () => {
      const last = encoder.end();
      if (last) await writeChunk(target, last);
    },
  };
}
