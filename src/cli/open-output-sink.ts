/**
 * Where a streamed command writes OUT, and how it keeps or discards it once the
 * job has decided: a file appears under its name only on keep() (the atomic writer
 * of io.ts), so a failed or untrusted run leaves no partial file; standard output
 * cannot be taken back, so what goes there is first kept in a temporary file
 * (mode 0600, removed on exit) and copied out on keep(). Decrypted output is the
 * exception: decryptMessageStream writes nothing before the content is
 * authenticated, and plaintext must not reach a temporary file, so it goes to
 * standard output directly.
 */
import { createReadStream } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { isStdio, openAtomicWriter, writeStdout, type AtomicFileWriter } from './io.ts';

export interface OutputSink {
  writable: Writable;
  /** Makes what was written visible (renames the file, or copies it to standard output). */
  keep(): Promise<void>;
  /** Removes every trace of what was written. */
  discard(): Promise<void>;
}

/** Small writes queued while one is under way go out in one writev(2), without a joined copy; 1 MiB buffered at most. */
function writableOf(writer: AtomicFileWriter): Writable {
  return new Writable({
    highWaterMark: 1024 * 1024,
    write(chunk: Buffer, _e, cb) {
      writer.write(chunk).then(() => cb(), cb);
    },
    writev(chunks, cb) {
      writer.writev(chunks.map((c) => c.chunk as Buffer)).then(() => cb(), cb);
    },
  });
}

/** Resolves once everything handed to `w` has been written. */
async function drained(w: Writable): Promise<void> {
  if (w.writableFinished) return;
  await new Promise<void>((resolve, reject) => {
    w.once('finish', () => resolve());
    w.once('error', reject);
    w.end();
  });
}

export async function openOutputSink(path: string | undefined, opts: { discardAll: boolean; directToStdout: boolean }): Promise<OutputSink> {
  if (opts.discardAll) {
    // --json without -o: standard output carries the verdict, the message is dropped.
    const writable = new Writable({ write: (_c, _e, cb) => cb() });
    return { writable, keep: async () => {}, discard: async () => {} };
  }
  if (isStdio(path) && opts.directToStdout) {
    const writable = new Writable({
      write(chunk: Buffer, _e, cb) {
        writeStdout(chunk).then(() => cb(), cb);
      },
    });
    return { writable, keep: () => drained(writable), discard: async () => {} };
  }
  const target = isStdio(path) ? join(tmpdir(), `kakitome-${process.pid}-${randomBytes(6).toString('hex')}.out`) : path!;
  const writer = await openAtomicWriter(target);
  const writable = writableOf(writer);
  return {
    writable,
    async keep() {
      await drained(writable);
      await writer.commit();
      if (!isStdio(path)) return;
      try {
        for await (const chunk of createReadStream(target, { highWaterMark: 1024 * 1024 })) await writeStdout(chunk as Buffer);
      } finally {
        await unlink(target).catch(() => {});
      }
    },
    async discard() {
      writable.destroy();
      await writer.abort();
    },
  };
}
