/**
 * Inputs and outputs of the command line. IN and OUT default to standard input and
 * output ("-" says so explicitly). A file output is written atomically: to a
 * temporary file in the same directory, fsync'd, then renamed over OUT, so a
 * failed or interrupted command never leaves a partial OUT (and an existing OUT
 * stays as it was). Outputs are created mode 0600: a decrypted message is private.
 */
import { open, rename, unlink, readFile, stat, lstat, realpath, writeFile } from 'node:fs/promises';
import { closeSync, constants, fstatSync, openSync, readSync, unlinkSync, type Stats } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join, sep } from 'node:path';
import { KakitomeError, diskFullCause } from '../errors.ts';
import { writevFully } from '../cms/stream/writev-fully.ts';

/**
 * Largest single message read into memory. The S/MIME operations take whole
 * messages; this bound keeps a hostile or mistaken input (a disk image on stdin)
 * from exhausting memory.
 */
export const MAX_MESSAGE_BYTES = 512 * 1024 * 1024;

export function isStdio(path: string | undefined): boolean {
  return path === undefined || path === '-';
}

function tooLarge(what: string): never {
  throw new KakitomeError('LIMIT', `${what} is larger than ${MAX_MESSAGE_BYTES / (1024 * 1024)} MiB, the most one command reads into memory.`);
}

/** Reads a whole stream, failing with LIMIT past `max` bytes. */
export async function readStream(stream: AsyncIterable<Buffer | string | Uint8Array>, what: string, max = MAX_MESSAGE_BYTES): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
    size += b.length;
    if (size > max) tooLarge(what);
    chunks.push(b);
  }
  return Buffer.concat(chunks, size);
}

/** Reads IN: a file, or standard input when absent or "-". */
export async function readInput(path: string | undefined): Promise<Buffer> {
  if (isStdio(path)) {
    if (process.stdin.isTTY) {
      throw new KakitomeError('INVALID_ARGUMENT', 'No input: give a message with -i FILE or pipe one into standard input.');
    }
    return readStream(process.stdin, 'Standard input');
  }
  return readFileBounded(path!, `Input ${path}`);
}

/** Reads a named file (credential or message), with a size bound and a clear error. */
export async function readFileBounded(path: string, what: string, max = MAX_MESSAGE_BYTES): Promise<Buffer> {
  const info = await stat(path).catch((e: NodeJS.ErrnoException) => {
    throw new KakitomeError('INVALID_ARGUMENT', `${what}: ${describeFsError(e)}.`, { cause: e });
  });
  if (info.isDirectory()) throw new KakitomeError('INVALID_ARGUMENT', `${what} is a directory, a file was expected.`);
  if (info.size > max) tooLarge(what);
  return readFile(path).catch((e: NodeJS.ErrnoException) => {
    throw new KakitomeError('INVALID_ARGUMENT', `${what}: ${describeFsError(e)}.`, { cause: e });
  });
}

/**
 * readFileBounded for a batch worker, which reads one file after another and has
 * nothing else to do meanwhile: synchronous calls, one open and one fstat, no
 * thread-pool round trips. O_NONBLOCK: a FIFO put in place of a listed file is
 * refused instead of blocking the worker forever.
 */
export function readFileBoundedSync(path: string, what: string, max = MAX_MESSAGE_BYTES): Buffer {
  const unreadable = (e: unknown) => new KakitomeError('INVALID_ARGUMENT', `${what}: ${describeFsError(e as NodeJS.ErrnoException)}.`, { cause: e });
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    throw unreadable(e);
  }
  try {
    const info = fstatSync(fd);
    if (info.isDirectory()) throw new KakitomeError('INVALID_ARGUMENT', `${what} is a directory, a file was expected.`);
    if (!info.isFile()) throw new KakitomeError('INVALID_ARGUMENT', `${what} is not a regular file (a device, pipe or socket).`);
    if (info.size > max) tooLarge(what);
    const data = Buffer.allocUnsafe(info.size);
    let got = 0;
    for (let n = 1; got < data.length && n > 0; got += n) n = readSync(fd, data, got, data.length - got, got);
    return data.subarray(0, got);
  } catch (e) {
    throw e instanceof KakitomeError ? e : unreadable(e);
  } finally {
    closeSync(fd);
  }
}

/**
 * `name` (one file name, no separator) in directory `dir`: what path.join gives for
 * it, without normalising the whole path again for every file of a batch (path.join
 * was 4% of a directory batch's main thread).
 */
export function childPath(dir: string, name: string): string {
  return dir.endsWith(sep) ? dir + name : dir + sep + name;
}

/** The one error for an OUT that cannot be written (the cause kept, the file-system reason said plainly). */
export function cannotWrite(path: string, cause: unknown): KakitomeError {
  // A full disk is not a wrong argument: its own code and remedy, so a script can tell it apart.
  if (diskFullCause(cause)) return new KakitomeError('NO_SPACE', `Cannot write ${path}: ${describeFsError(cause as NodeJS.ErrnoException)}.`, { cause, remedy: 'diskSpace' });
  return new KakitomeError('INVALID_ARGUMENT', `Cannot write ${path}: ${describeFsError(cause as NodeJS.ErrnoException)}.`, { cause });
}

/** cannotWrite for a file being created beside OUT, where ENOENT can only mean that OUT's directory is missing. */
function cannotCreate(path: string, cause: unknown): KakitomeError {
  if ((cause as NodeJS.ErrnoException)?.code !== 'ENOENT') return cannotWrite(path, cause);
  return new KakitomeError('INVALID_ARGUMENT', `Cannot write ${path}: the directory ${dirname(path)} does not exist; create it first (mkdir -p ${dirname(path)}).`, { cause });
}

export function describeFsError(e: NodeJS.ErrnoException): string {
  switch (e.code) {
    case 'ENOENT': return 'no such file or directory';
    case 'EACCES': case 'EPERM': return 'permission denied';
    case 'EISDIR': return 'is a directory';
    case 'ENOTDIR': return 'a parent of the path is not a directory';
    case 'ENOSPC': return 'no space left on the device';
    case 'EDQUOT': return 'the disk quota is used up';
    case 'EROFS': return 'read-only file system';
    default: return e.code ?? e.message;
  }
}

/**
 * Ctrl-C or a kill during a write would otherwise leave temporary files behind:
 * on SIGINT, SIGTERM or SIGHUP every registered clean-up runs (synchronously),
 * then the process ends by that signal (endBySignal): status 128+signal.
 */
const interruptCleanups = new Set<() => void>();
let signalHandlersInstalled = false;

/** Registers a clean-up for an interruption; returns its removal. */
export function onInterrupt(cleanup: () => void): () => void {
  interruptCleanups.add(cleanup);
  if (!signalHandlersInstalled) {
    signalHandlersInstalled = true;
    for (const [signal, status] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]] as const) {
      process.once(signal, () => {
        for (const c of interruptCleanups) {
          try { c(); } catch { /* clean up what can be */ }
        }
        endBySignal(signal, status);
      });
    }
  }
  return () => { interruptCleanups.delete(cleanup); };
}

/**
 * Ends the process by `signal` itself, as if it had not been caught: the kernel
 * ends every thread at once. process.exit() first joins every thread (the batch
 * workers, libuv's thread pool, V8's), and one that never returns kept the process
 * alive after its clean-up, for ever: an mbox batch's read of a FIFO whose writer
 * stalled (test/cli/cli-batch-crash.test.ts), or Node's own shutdown deadlock
 * (nodejs/node#54918). A shell sees the same status (128+signal); systemd counts a
 * service stopped by SIGTERM as a clean stop (an exit with 143 is a failure to it).
 */
function endBySignal(signal: NodeJS.Signals, status: number): never {
  // With no listener left, Node gives the signal its default action again.
  process.removeAllListeners(signal);
  process.kill(process.pid, signal);
  return process.exit(status); // only if the signal was not delivered at once
}

/** Temporary files not yet renamed, removed on an interruption. */
const pendingTemporaryFiles = new Set<string>();

function trackTemporaryFile(tmp: string): void {
  if (pendingTemporaryFiles.size === 0) onInterrupt(removePendingTemporaryFiles);
  pendingTemporaryFiles.add(tmp);
}

function removePendingTemporaryFiles(): void {
  for (const f of pendingTemporaryFiles) {
    try { unlinkSync(f); } catch { /* already gone */ }
  }
}

/**
 * Where an output really goes. Only a regular file (or a new name) is replaced by
 * rename(2): renaming over a device such as /dev/null, a FIFO or a socket would
 * replace the special file itself (as root, it would break /dev/null for the whole
 * machine), so those are written in place. A symbolic link is never replaced:
 * when it resolves to a regular file, that file is replaced atomically; otherwise
 * (/dev/stdout, a dangling link) it is written through in place.
 */
/**
 * A symbolic link, FIFO or socket at OUT that belongs to another account (neither
 * this user nor root) is refused, as the kernel's fs.protected_symlinks and
 * protected_fifos refuse them in a sticky directory such as /tmp, but in every
 * directory and whatever those settings: another local user who planted
 * `/tmp/key.pem -> /etc/shadow` would have had the file replaced by the output (the
 * link is resolved here, out of the kernel's sight), and one who planted a FIFO
 * would have read the private key or the plaintext out of it (or made the command
 * wait forever). Devices (/dev/null, a terminal) are written as before.
 */
export function refusePlanted(path: string, info: Stats): void {
  const uid = process.getuid?.();
  if (uid === undefined || info.uid === uid || info.uid === 0) return;
  if (!info.isSymbolicLink() && !info.isFIFO() && !info.isSocket()) return;
  const what = info.isSymbolicLink() ? 'a symbolic link' : info.isFIFO() ? 'a FIFO' : 'a socket';
  throw new KakitomeError('INVALID_ARGUMENT', `Cannot write ${path}: it is ${what} that belongs to uid ${info.uid}, not to this user (uid ${uid}) or root; another account may have planted it to receive the output. Remove it, or write elsewhere.`);
}

type OutputTarget = { kind: 'atomic'; path: string } | { kind: 'direct'; path: string };

async function resolveOutputTarget(path: string): Promise<OutputTarget> {
  let info;
  try {
    info = await lstat(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'atomic', path };
    throw cannotWrite(path, e);
  }
  refusePlanted(path, info);
  if (info.isSymbolicLink()) {
    // A link is never replaced: /dev/stdout is one (to /proc/self/fd/1, which
    // realpath cannot resolve for a pipe). Unresolvable or dangling links are
    // written through, in place.
    const target = await realpath(path).catch(() => undefined);
    const targetInfo = target === undefined ? undefined : await stat(target).catch(() => undefined);
    if (target === undefined || targetInfo === undefined || !targetInfo.isFile()) return { kind: 'direct', path };
    info = targetInfo;
    path = target;
  }
  if (info.isDirectory()) throw new KakitomeError('INVALID_ARGUMENT', `Cannot write ${path}: it is a directory (a file was expected).`);
  return info.isFile() ? { kind: 'atomic', path } : { kind: 'direct', path };
}

/**
 * Writes `data` to `path` atomically: temporary file beside it (same file system,
 * so rename(2) is atomic), fsync, rename, then fsync the directory so the rename
 * itself survives a crash. On any failure the temporary file is removed.
 */
export async function writeFileAtomic(path: string, data: Uint8Array, options: { mode?: number; syncDirectory?: boolean } = {}): Promise<void> {
  const mode = options.mode ?? 0o600;
  const target = await resolveOutputTarget(path);
  if (target.kind === 'direct') {
    await writeFile(target.path, data).catch((e: NodeJS.ErrnoException) => {
      throw cannotWrite(path, e);
    });
    return;
  }
  path = target.path;
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  let handle;
  try {
    // 'wx': never follow or reuse an existing file at the temporary name.
    trackTemporaryFile(tmp);
    handle = await open(tmp, 'wx', mode);
    await handle.writeFile(data);
    await handle.sync();
    await handle.close();
    handle = undefined;
    await rename(tmp, path);
    pendingTemporaryFiles.delete(tmp);
  } catch (e) {
    await handle?.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    pendingTemporaryFiles.delete(tmp);
    throw cannotCreate(path, e);
  }
  // A batch writing many files into one directory syncs it once at the end instead.
  if (options.syncDirectory !== false) await syncDirectory(dir);
}

/** Best effort: some file systems refuse fsync on a directory; the data is already safe. */
export async function syncDirectory(dir: string): Promise<void> {
  try {
    const h = await open(dir, 'r');
    try { await h.sync(); } finally { await h.close(); }
  } catch { /* not supported here: nothing more we can do */ }
}

/** Writes to standard output, honouring backpressure. */
export function writeStdout(data: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    process.stdout.write(data, (err) => (err ? reject(err) : resolve()));
  });
}

/** Writes OUT: atomically to a file, or to standard output when absent or "-". */
export async function writeOutput(path: string | undefined, data: Uint8Array): Promise<void> {
  if (isStdio(path)) return writeStdout(data);
  return writeFileAtomic(path!, data);
}

/**
 * OUT opened before the work that makes it, for a command whose work changes the
 * store (`ca init`, `ca issue`, `ca renew`): an OUT that cannot be written (its
 * directory missing, no permission) is refused before anything is created, not after
 * (a CA made whose root certificate was never written, and `ca init` again refused
 * because the CA exists). write() puts the data in place; abort() leaves no trace.
 */
export async function openOutputFirst(path: string | undefined): Promise<{ write(data: Uint8Array): Promise<void>; abort(): Promise<void> }> {
  if (path === undefined) return { write: async () => {}, abort: async () => {} };
  if (isStdio(path)) return { write: writeStdout, abort: async () => {} };
  const writer = await openAtomicWriter(path);
  return {
    async write(data) {
      await writer.write(data);
      await writer.commit();
    },
    abort: () => writer.abort(),
  };
}

/**
 * A file written piece by piece that appears under its name only on commit():
 * the mbox output of a batch. abort() removes every trace.
 */
export interface AtomicFileWriter {
  write(data: Uint8Array): Promise<void>;
  /** Several pieces in one writev(2): no joined copy (streamed output). */
  writev(data: Uint8Array[]): Promise<void>;
  /**
   * Starts flushing what was written so far to disk, in the background (at most
   * one flush at a time), so that commit() has less left to flush.
   */
  flushBehind(): void;
  commit(): Promise<void>;
  abort(): Promise<void>;
}

export async function openAtomicWriter(path: string, mode = 0o600): Promise<AtomicFileWriter> {
  const target = await resolveOutputTarget(path);
  if (target.kind === 'direct') return openDirectWriter(target.path);
  path = target.path;
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  trackTemporaryFile(tmp);
  const handle = await open(tmp, 'wx', mode).catch((e: NodeJS.ErrnoException) => {
    throw cannotCreate(path, e);
  });
  let done = false;
  let flushing: Promise<void> | undefined;
  let flushError: unknown;
  const abort = async (): Promise<void> => {
    if (done) return;
    done = true;
    await flushing;
    await handle.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    pendingTemporaryFiles.delete(tmp);
  };
  const failed = async (e: unknown): Promise<never> => {
    await abort();
    throw cannotWrite(path, e);
  };
  return {
    write: (data) => handle.write(data).then(() => undefined, failed),
    writev: (data) => writevFully(handle, data).catch(failed),
    flushBehind() {
      if (done || flushing !== undefined) return;
      // A failed flush fails commit(): Linux reports a write-back error to one fsync
      // only, so commit()'s own sync could pass after data was lost.
      flushing = handle.datasync().catch((e: unknown) => { flushError ??= e; }).finally(() => { flushing = undefined; });
    },
    async commit() {
      if (done) throw new KakitomeError('INVALID_ARGUMENT', `Cannot write ${path}: the output was already closed.`);
      try {
        await flushing;
        if (flushError !== undefined) throw flushError;
        await handle.sync();
        await handle.close();
        done = true;
        await rename(tmp, path);
        pendingTemporaryFiles.delete(tmp);
      } catch (e) {
        done = true;
        await unlink(tmp).catch(() => {});
        pendingTemporaryFiles.delete(tmp);
        throw cannotWrite(path, e);
      }
      await syncDirectory(dir);
    },
    abort,
  };
}

/** A device, FIFO or socket as OUT: written in place; nothing to rename or remove. */
async function openDirectWriter(path: string): Promise<AtomicFileWriter> {
  const handle = await open(path, 'w').catch((e: NodeJS.ErrnoException) => {
    throw cannotWrite(path, e);
  });
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await handle.close().catch(() => {});
  };
  const failed = async (e: unknown): Promise<never> => {
    await close();
    throw cannotWrite(path, e);
  };
  return {
    write: (data) => handle.write(data).then(() => undefined, failed),
    writev: (data) => writevFully(handle, data).catch(failed),
    flushBehind: () => {},
    commit: close,
    abort: close,
  };
}
