/**
 * The bytes of one batch chunk's input as stored (src/store/batch-blobs.ts): its
 * entries in upload order, each a message with its mbox separator text, or the
 * reason an upload entry could not be taken (too large, a line that is no JSON):
 * those are reported as failures when the chunk is processed, at their index.
 *
 * One record: kind (1 byte: 1 message, 2 failure), then two length-prefixed
 * fields (u32 big-endian): the envelope (latin1; empty when the upload had none)
 * and the message bytes, or for a failure its code and reason as JSON. Written
 * and read only by the service, but read as untrusted all the same: a record that
 * runs past the end is MALFORMED.
 */
import { KakitomeError, type ErrorCode } from '../../errors.ts';

export interface ChunkEntry {
  /** The mbox separator text without "From " (mbox uploads); empty otherwise. */
  envelope: string;
  message?: Buffer;
  /** Why the upload entry was not taken; the message is absent. */
  error?: { code: ErrorCode; reason: string };
}

const MESSAGE = 1;
const FAILURE = 2;

/** The encoded size of an entry, to cut chunks by bytes before encoding them. */
export function chunkEntryBytes(entry: ChunkEntry): number {
  return 9 + Buffer.byteLength(entry.envelope, 'latin1') + (entry.message ? entry.message.length : 256);
}

export function encodeChunk(entries: readonly ChunkEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const envelope = Buffer.from(e.envelope, 'latin1');
    const body = e.message ?? Buffer.from(JSON.stringify(e.error ?? { code: 'MALFORMED', reason: 'No message.' }), 'utf8');
    const head = Buffer.allocUnsafe(9);
    head[0] = e.message ? MESSAGE : FAILURE;
    head.writeUInt32BE(envelope.length, 1);
    head.writeUInt32BE(body.length, 5);
    parts.push(head, envelope, body);
  }
  return Buffer.concat(parts);
}

export function decodeChunk(bytes: Buffer): ChunkEntry[] {
  const chunk = readChunk(bytes);
  return Array.from({ length: chunk.length }, (_, i) => chunk.at(i)!);
}

/** A chunk's entries in order, each made when asked for (readChunk); an array is one too. */
export interface ChunkEntries {
  readonly length: number;
  at(index: number): ChunkEntry | undefined;
  /** The stored records' size (readChunk's), so that an output can be sized without making every entry first. */
  readonly storedBytes?: number;
}

/**
 * A stored chunk's records, checked whole first (a damaged chunk is MALFORMED before
 * anything in it is signed), each entry made only when asked for: the 500 entries of a
 * chunk made at once outlived several young-generation collections of the batch thread
 * while the chunk was signed, and were promoted (about 200 bytes a message for its full
 * collections to mark); made one at a time, each dies young with its message.
 */
export function readChunk(bytes: Buffer): ChunkEntries {
  const starts: number[] = [];
  const bad = () => new KakitomeError('MALFORMED', 'A stored batch chunk is damaged (a record runs past its end).');
  let at = 0;
  while (at < bytes.length) {
    if (at + 9 > bytes.length) throw bad();
    const kind = bytes[at]!;
    const end = at + 9 + bytes.readUInt32BE(at + 1) + bytes.readUInt32BE(at + 5);
    if (end > bytes.length || (kind !== MESSAGE && kind !== FAILURE)) throw bad();
    // A failure's record is read now, as when every entry was made at once (they are few).
    if (kind === FAILURE) entryAt(bytes, at);
    starts.push(at);
    at = end;
  }
  return new StoredChunk(bytes, starts);
}

class StoredChunk implements ChunkEntries {
  readonly #bytes: Buffer;
  readonly #starts: readonly number[];

  constructor(bytes: Buffer, starts: readonly number[]) {
    this.#bytes = bytes;
    this.#starts = starts;
  }

  get length(): number {
    return this.#starts.length;
  }

  get storedBytes(): number {
    return this.#bytes.length;
  }

  at(index: number): ChunkEntry | undefined {
    const start = this.#starts[index];
    return start === undefined ? undefined : entryAt(this.#bytes, start);
  }
}

/** The entry of the (checked) record at `at`. */
function entryAt(bytes: Buffer, at: number): ChunkEntry {
  const envelopeLength = bytes.readUInt32BE(at + 1);
  const end = at + 9 + envelopeLength + bytes.readUInt32BE(at + 5);
  const envelope = bytes.toString('latin1', at + 9, at + 9 + envelopeLength);
  const body = bytes.subarray(at + 9 + envelopeLength, end);
  if (bytes[at] === MESSAGE) return { envelope, message: body };
  const { code, reason } = JSON.parse(body.toString('utf8')) as { code: ErrorCode; reason: string };
  return { envelope, error: { code, reason } };
}
