/**
 * Writes Node's module compile cache (bin/kakitome.js enables it) for the modules
 * this thread compiled so far. Node writes it when a thread ends, and each thread
 * of `kakitome serve` compiled the server's modules: with a cold cache (the first
 * start after an install or an upgrade) every serving thread and batch thread wrote
 * some 200 files as it was terminated, which held SIGTERM up 4.6 to 7 s (past 10 s
 * on a loaded machine) after every request was already answered. Written once a
 * thread has started, before it answers: what is written is skipped at the end, and
 * the threads started after the first one find the cache warm. Nothing without a
 * cache (NODE_DISABLE_COMPILE_CACHE), nothing to write when it was warm.
 */
import { flushCompileCache } from 'node:module';

export function persistCompileCache(): void {
  flushCompileCache();
}
