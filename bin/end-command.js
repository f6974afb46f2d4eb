// How a message command's process ends once its work is done (bin/kakitome.js).
import { accessSync, constants, writeSync } from 'node:fs';
import module from 'node:module';

/** How long the process may stay alive after the command's work and output are done (endIfStillAlive). */
export const EXIT_BOUND_MS = 5_000;

/**
 * Ends the command with `code` by a natural end: process.exitCode set, the event
 * loop left to drain, and Node then tears the process down by itself.
 *
 * Not process.exit(): it can hang for ever (nodejs/node#54918; seen once in a
 * benchmark's mbox batch, 2026-12-07). process.exit() shuts V8's platform down,
 * joining its worker threads, before the isolate is torn down; a V8 thread that is
 * waiting for a garbage collection (a concurrent Sparkplug or Maglev compile whose
 * allocation reached the heap's limit), which only the main thread runs, then waits
 * for ever, and so does the main thread that joins it. A natural end tears the
 * isolate down first (Heap::StartTearDown wakes every thread waiting for a
 * collection), then the platform. With V8's own --stress-concurrent-allocation (a
 * thread that keeps asking for collections) and a main thread held in the exit path,
 * process.exit() hung in every run and this end in none
 * (test/cli/launcher-natural-end.test.ts). It costs the freeing of the heap, about
 * 7-9 ms of a 2,000-message batch's end (docs/performance.md, "Session 15").
 *
 * What waits to go out on standard output and error goes out first: a pipe to a slow
 * reader is written asynchronously and rightly keeps the process alive until it is
 * taken (a batch's notes of failed messages and its summary line), so the bound
 * starts only after. The compile cache is written now rather than at the end.
 */
export async function endCommand(code) {
  module.flushCompileCache?.();
  // An empty write's callback runs once everything written before it went out, or the
  // stream failed: a reader that left (`| head`) gets EPIPE, and the command's exit code
  // stands (no unhandled 'error' with its stack trace).
  await Promise.all([process.stdout, process.stderr].map((s) => new Promise((resolve) => {
    if (s.writableLength === 0 || s.destroyed) return resolve();
    s.on('error', () => {});
    s.write('', resolve);
  })));
  process.exitCode = code;
  endIfStillAlive(code, EXIT_BOUND_MS);
}

/**
 * The bound on a natural end: if something unexpected still keeps the event loop
 * alive (a handle left open) after `ms`, the process ends anyway, by a way that
 * waits for no thread. The timer is unref'd: it keeps nothing alive, and on a
 * natural end it never fires. First choice: execve(2) of /bin/sh to `exit CODE`, so
 * a caller still sees the command's exit status (the kernel ends every thread of the
 * old image at once; nothing of Node runs again, not even its restoring of the
 * standard streams' modes). Last resort, where /bin/sh cannot be run or the
 * permission model forbids it: SIGKILL, which a caller sees as death by signal 9 (a
 * shell: status 137). Not process.exit(): the very deadlock this avoids.
 */
function endIfStillAlive(code, ms) {
  setTimeout(() => {
    const note = `kakitome: the command ended with status ${code}, but something kept the process alive ${ms / 1000} s longer; ending it now.\n`;
    // On a pipe or a file only: a write to a terminal can block while its output is suspended (Ctrl-S).
    if (!process.stderr.isTTY) try { writeSync(2, note); } catch { /* a full or closed pipe: end without it */ }
    try {
      accessSync('/bin/sh', constants.X_OK);
      if (process.permission && !process.permission.has('child')) throw new Error('the permission model forbids child processes');
      process.execve('/bin/sh', ['sh', '-c', `exit ${code}`], {});
    } catch { /* no shell to become: the signal */ }
    process.kill(process.pid, 'SIGKILL');
  }, ms).unref();
}
