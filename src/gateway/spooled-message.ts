/**
 * A message too large to hold in memory, in the gateway (issue 13: "large messages
 * stream"): its bytes in a ContentSpool (memory up to a threshold, then a file in the
 * gateway's spool directory, 0600 in a 0700 directory, unlinked the moment it is
 * opened, so that nothing can open it and nothing is left behind, even after kill -9:
 * src/cms/stream/content-spool.ts), its header section in memory. Header edits (the
 * Authentication-Results field, removed fields, subject tags, trigger edits, DKIM
 * signatures) replace the header section only: `withHead` is a view of the same
 * bytes under another header section, and the body streams after it from the spool.
 *
 * The received message, each outbound copy and the decrypted form of an inbound one
 * are SpooledMessages; the one who made a spool disposes of it (handle-message.ts,
 * after the reply, whatever happened).
 */
import { Readable, Writable } from 'node:stream';
import { ContentSpool } from '../cms/stream/content-spool.ts';
import { ScavengePrompter } from '../cms/stream/prompt-scavenge.ts';
import { resolveLimits, type Limits } from '../limits.ts';
import type { RelayBody } from '../smtp/relay-message.ts';
import { readHeaderSection } from '../smime/read-header-section-stream.ts';

export interface SpoolPlace {
  /** The spool directory (a private one under it is made per file). */
  dir: string;
  /** The largest file one spool may grow to (the message limit, with room for base64 and signatures). */
  maxBytes: number;
}

/** Bytes an output spool keeps in memory before it goes to a file. */
const OUTPUT_MEMORY_BYTES = 1024 * 1024;

export class SpooledMessage {
  readonly spool: ContentSpool;
  /** The header section with its blank line (the whole message when it has none). */
  readonly head: Buffer;
  /** Where the body starts in the spool. */
  readonly #bodyStart: number;

  private constructor(spool: ContentSpool, head: Buffer, bodyStart: number) {
    this.spool = spool;
    this.head = head;
    this.#bodyStart = bodyStart;
  }

  /** The message in `spool`, its header section read (LIMIT past limits.maxHeaderBytes without a blank line). */
  static async read(spool: ContentSpool, limits: Limits = resolveLimits()): Promise<SpooledMessage> {
    const it = spool.replay()[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    try {
      const { head } = await readHeaderSection({ next: async () => {
        const r = await it.next();
        return r.done ? r : { done: false, value: asBuffer(r.value) };
      } }, limits);
      return new SpooledMessage(spool, head, head.length);
    } finally {
      await it.return?.();
    }
  }

  /** Bytes in all, under this view's header section. */
  get size(): number {
    return this.head.length + this.spool.size - this.#bodyStart;
  }

  /** The same body under another header section (a rewritten one). */
  withHead(head: Buffer): SpooledMessage {
    return new SpooledMessage(this.spool, head, this.#bodyStart);
  }

  /**
   * The bytes after the header section, in fresh buffers (a consumer may keep them),
   * or with `reuse` in three buffers used in turn (ContentSpool.replay: for consumers
   * done with each chunk before the chunk after the next, as verifyMessageStream and
   * decryptMessageStream are).
   */
  async *body(opts: { reuse?: boolean } = {}): AsyncGenerator<Buffer> {
    let seen = 0;
    const scavenge = new ScavengePrompter();
    for await (const c of this.spool.replay(opts)) {
      const b = asBuffer(c);
      scavenge.passed(b.length);
      if (seen + b.length <= this.#bodyStart) {
        seen += b.length;
        continue;
      }
      yield seen >= this.#bodyStart ? b : b.subarray(this.#bodyStart - seen);
      seen += b.length;
    }
  }

  /** The whole message: header section, then body (`reuse`: see body()). */
  async *bytes(opts: { reuse?: boolean } = {}): AsyncGenerator<Buffer> {
    yield this.head;
    yield* this.body(opts);
  }

  /** For the relay: the message as a stream, its size announced. */
  relayBody(): RelayBody {
    return { size: this.size, stream: () => Readable.from(this.bytes(), { objectMode: false }) };
  }
}

function asBuffer(c: Uint8Array): Buffer {
  return Buffer.isBuffer(c) ? c : Buffer.from(c.buffer, c.byteOffset, c.byteLength);
}

/** An empty spool for one output (a copy, a decrypted message) in `place`. */
export function outputSpool(place: SpoolPlace): ContentSpool {
  return new ContentSpool({ dir: place.dir, memoryBytes: OUTPUT_MEMORY_BYTES, maxBytes: place.maxBytes });
}

/** A Writable into `spool` (the streaming signers and decrypters write to it): each chunk is copied in before the next is asked for. */
export function spoolWritable(spool: ContentSpool): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      spool.write(chunk).then(() => callback(), callback);
    },
  });
}

/**
 * Reads an SMTP DATA stream into `spool`, one chunk at a time (the socket is not read
 * while a chunk is being stored: Postfix waits). Past `limit` bytes it reads on without
 * storing (smtp-server answers 552): undefined then.
 */
export async function spoolSmtpData(stream: AsyncIterable<Buffer> & { sizeExceeded?: boolean }, limit: number, spool: ContentSpool): Promise<number | undefined> {
  let size = 0;
  const scavenge = new ScavengePrompter();
  for await (const chunk of stream) {
    size += chunk.length;
    scavenge.passed(chunk.length);
    if (size <= limit) await spool.write(chunk);
  }
  return stream.sizeExceeded || size > limit ? undefined : size;
}
