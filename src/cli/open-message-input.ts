/**
 * Opens IN for a single-message command: small messages are read whole (the
 * in-memory APIs handle every S/MIME form), larger ones are handed on as a stream
 * for the streaming APIs, so a message with a 1 GiB attachment never sits in
 * memory. A regular file is sized with stat; standard input (or a pipe) is read up
 * to the threshold and, if it goes on, streamed from there with what was already
 * read in front.
 */
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { readFileChunks } from '../cms/stream/read-file-chunks.ts';
import { KakitomeError } from '../errors.ts';
import { describeFsError, isStdio } from './io.ts';
import { looksLikeMbox } from '../mime/mbox.ts';

/**
 * Above this many bytes a message is streamed. Well under io.ts's MAX_MESSAGE_BYTES: the
 * in-memory path holds a few copies of a message (input, canonical form, output).
 */
export const STREAM_THRESHOLD = 32 * 1024 * 1024;

const READ_CHUNK = 1024 * 1024;

/**
 * 'stream': `open(reuseBuffers)` starts reading. A consumer that copies what it keeps
 * (verifyMessageStream, decryptMessageStream) may take chunks that reuse three fixed
 * buffers (readFileChunks): a stream of fresh buffers leaves up to ~64 MiB of dead
 * ones for V8 to collect late, and costs that much peak RSS.
 */
export type MessageInput = { kind: 'whole'; data: Buffer } | { kind: 'stream'; open(reuseBuffers: boolean): AsyncIterable<Buffer> };

export async function openMessageInput(path: string | undefined, threshold = STREAM_THRESHOLD): Promise<MessageInput> {
  if (isStdio(path)) {
    if (process.stdin.isTTY) throw new KakitomeError('INVALID_ARGUMENT', 'No input: give a message with -i FILE or pipe one into standard input.');
    return readUpTo(process.stdin, threshold);
  }
  const what = `Input ${path}`;
  const fsError = (e: NodeJS.ErrnoException) => new KakitomeError('INVALID_ARGUMENT', `${what}: ${describeFsError(e)}.`, { cause: e });
  const info = await stat(path!).catch((e: NodeJS.ErrnoException) => {
    throw fsError(e);
  });
  if (info.isDirectory()) throw new KakitomeError('INVALID_ARGUMENT', `${what} is a directory, a file was expected.`);
  if (info.isFile() && info.size > threshold) {
    // Readable? Say so now, with the usual message, rather than at the first read.
    await (await open(path!, 'r').catch((e: NodeJS.ErrnoException) => {
      throw fsError(e);
    })).close();
    return {
      kind: 'stream',
      open: (reuseBuffers) => withoutEnvelopeLine(reuseBuffers ? readFileChunks(path!, READ_CHUNK) : createReadStream(path!, { highWaterMark: READ_CHUNK })),
    };
  }
  // A FIFO or device has no size: read it like standard input.
  const stream = createReadStream(path!, { highWaterMark: READ_CHUNK });
  await new Promise<void>((resolve, reject) => {
    stream.once('open', () => resolve());
    stream.once('error', (e: NodeJS.ErrnoException) => reject(fsError(e)));
  });
  return readUpTo(stream, threshold);
}

/** Reads up to `threshold` bytes; past it, returns a stream of everything (what was read first, then the rest). */
async function readUpTo(source: NodeJS.ReadableStream, threshold: number): Promise<MessageInput> {
  const it = (source as AsyncIterable<Buffer | string>)[Symbol.asyncIterator]();
  const head: Buffer[] = [];
  let size = 0;
  for (;;) {
    const r = await it.next();
    if (r.done) return { kind: 'whole', data: Buffer.concat(head, size) };
    const b = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
    head.push(b);
    size += b.length;
    if (size > threshold) break;
  }
  const all = (async function* () {
    yield* head;
    head.length = 0;
    for (let r = await it.next(); !r.done; r = await it.next()) yield Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
  })();
  return { kind: 'stream', open: () => withoutEnvelopeLine(all) };
}

/**
 * QUIRK: one leading mbox "From " line is dropped, as for whole messages
 * (stripEnvelopeLine): mail clients write it on saved .eml files. The line is
 * looked for in the first 1 KiB only. Input that started with one is an mbox: a
 * further "From " line starts another message, which is refused as stripEnvelopeLine
 * refuses it (an mbox is a batch: -i FILE -o FILE), before the job can keep any
 * output. A chunk is held no longer than the next one (the readFileChunks contract):
 * the head is copied when it spans chunks, and only 5 bytes carry over between chunks.
 */
async function* withoutEnvelopeLine(chunks: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  let head: Buffer | undefined = Buffer.alloc(0);
  let mbox = false;
  let tail = Buffer.alloc(0);
  const refuseSecondMessage = (chunk: Buffer): void => {
    const seam = Buffer.concat([tail, chunk.subarray(0, FROM_LINE.length)]);
    if (seam.includes(FROM_LINE) || chunk.includes(FROM_LINE)) {
      throw new KakitomeError('INVALID_ARGUMENT', 'The input is an mbox with several messages: give it as -i FILE -o FILE to process every message in it.');
    }
    tail = Buffer.from(chunk.subarray(Math.max(0, chunk.length - (FROM_LINE.length - 1))));
  };
  for await (const chunk of chunks) {
    if (head === undefined) {
      if (mbox) refuseSecondMessage(chunk);
      yield chunk;
      continue;
    }
    head = head.length ? Buffer.concat([head, chunk]) : chunk;
    if (head.length < 1024 && head.indexOf(0x0a) < 0) continue;
    const first: Buffer = head;
    head = undefined;
    const nl = first.indexOf(0x0a);
    mbox = looksLikeMbox(first) && nl >= 0;
    const rest = mbox ? first.subarray(nl) : first;
    if (mbox) refuseSecondMessage(rest);
    yield mbox ? rest.subarray(1) : rest;
  }
  if (head !== undefined && head.length) yield looksLikeMbox(head) ? Buffer.alloc(0) : head;
}

const FROM_LINE = Buffer.from('\nFrom ');
