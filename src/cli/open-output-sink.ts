/**
 * Where a streamed command writes OUT, and how it keeps or discards it once the
 * job has decided: a file appears under its name only on keep() (the atomic writer
 * of io.ts), so a failed or untrusted run leaves no partial file; standard output
 * cannot be taken back, so what goes there is first kept in a temporary file
 * (mode 0600, created `wx` and unlinked as soon as it is open) and copied out on
 * keep(), read back through the descriptor that wrote it: never by its name, which
 * whoever can write to the temporary directory could by then have given to a file
 * of theirs (the launcher also ignores a TMPDIR another account can write to:
 * bin/kakitome.js). Decrypted output is the
 * exception: decryptMessageStream writes nothing before the content is
 * authenticated, and plaintext must not reach a temporary file, so it goes to
 * standard output directly.
 */
import { open, unlink } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { writevFully } from '../cms/stream/writev-fully.ts';
import { cannotWrite, isStdio, openAtomicWriter, writeStdout, type AtomicFileWriter } from './io.ts';

export interface OutputSink {
  writable: Writable;
  /** Makes what was written visible (renames the file, or copies it to standard output). */
  keep(): Promise<void>;
  /** Removes every trace of what was written. */
  discard(): Promise<void>;
}

/** Small writes queued while one is under way go out in one writev(2), without a joined copy; 1 MiB buffered at most. */
function writableOf(writer: Pick<AtomicFileWriter, 'write' | 'writev'>): Writable {
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
  if (isStdio(path)) return openStagedStdout();
  const writer = await openAtomicWriter(path!);
  const writable = writableOf(writer);
  return {
    writable,
    async keep() {
      await drained(writable);
      await writer.commit();
    },
    async discard() {
      writable.destroy();
      await writer.abort();
    },
  };
}

/** Standard output staged in an unnamed file: written, then read back from its start through the same descriptor. */
async function openStagedStdout(): Promise<OutputSink> {
  const name = join(tmpdir(), `kakitome-${process.pid}-${randomBytes(6).toString('hex')}.out`);
  const handle = await open(name, 'wx+', 0o600).catch((e: unknown) => {
    throw cannotWrite(name, e);
  });
  // Nothing left behind by a crash or a kill -9; the descriptor keeps the file.
  await unlink(name).catch(() => {});
  let position = 0; // what was written: appended at the descriptor's offset, read back by position
  const failed = (e: unknown): never => { throw cannotWrite(name, e); };
  const writable = writableOf({
    write: (data) => writevFully(handle, [data]).then(() => { position += data.length; }, failed),
    writev: (data) => writevFully(handle, data).then(() => { position += data.reduce((n, d) => n + d.length, 0); }, failed),
  });
  return {
    writable,
    async keep() {
      try {
        await drained(writable);
        for (let at = 0; at < position;) {
          const size = Math.min(1024 * 1024, position - at);
          const { buffer, bytesRead } = await handle.read(Buffer.allocUnsafe(size), 0, size, at);
          if (bytesRead === 0) throw cannotWrite(name, new Error('the staged output was cut short'));
          await writeStdout(buffer.subarray(0, bytesRead));
          at += bytesRead;
        }
      } finally {
        await handle.close().catch(() => {});
      }
    },
    async discard() {
      writable.destroy();
      await handle.close().catch(() => {});
    },
  };
}
