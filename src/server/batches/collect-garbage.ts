/**
 * V8's garbage collector, called at a point where much memory just died.
 *
 * Why: a batch upload passes gigabytes through a thread as Buffers (64 KiB a socket
 * read, a MiB a piece) whose JavaScript objects are tiny. V8 frees their memory
 * only when it collects those objects, and it collects the young generation when
 * that fills with JavaScript objects (4 MiB semi-spaces on a serving thread, up to 16 with --smtp), the
 * whole heap when external memory grew by about 64 MiB: so tens of MiB of dead
 * upload bytes were resident at any moment of an upload, in every isolate that
 * handled them. A young-generation collection every few MiB costs well under a
 * millisecond (almost nothing in it is alive) and frees them at once.
 *
 * The function is V8's own (`--expose-gc`), taken from a fresh context so that it
 * is not put on this thread's globalThis.
 */
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

type Gc = (options: { type: 'minor' | 'major'; execution: 'sync'; flavor?: 'regular' | 'last-resort' }) => void;
let gc: Gc | undefined;

function collector(): Gc {
  if (!gc) {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as Gc;
  }
  return gc;
}

/** A young-generation collection: the short-lived Buffers of the last few MiB are freed now. */
export function collectYoungGarbage(): void {
  collector()({ type: 'minor', execution: 'sync' });
}

/** Counts bytes passed through; every `every` bytes, a young-generation collection. */
export function garbageMeter(every: number): (bytes: number) => void {
  let since = 0;
  return (bytes) => {
    since += bytes;
    if (since < every) return;
    since = 0;
    collectYoungGarbage();
  };
}

/**
 * External memory this isolate held after its last whole-heap collection made here,
 * lowered whenever less is seen: about what is alive, which `collectGarbageAbove`
 * counts from. (V8 counts the Buffers a collection freed out of external memory
 * only at its next collection, young or full, so the figure just after one is
 * high; the next calls lower it.)
 */
let externalFloor = 0;

function external(): number {
  return getHeapStatistics().external_memory;
}

/**
 * A whole-heap collection when this isolate holds more than `limit` bytes of
 * external memory (Buffers) above what it held alive after its last one: after a
 * batch chunk, whose messages and output lived long enough to leave the young
 * generation, so only a full collection frees them. Below the limit nothing is
 * done (a full collection of a small heap costs a few milliseconds; a chunk,
 * hundreds). Counted from what was alive, not from zero: an isolate that holds
 * more than `limit` for good collected after every chunk and freed nothing (a
 * batch thread in bench/serve-batch-chunks.ts held 12.8 MiB at rest and ended
 * each 500-message chunk at 21 MiB, its chunk still in hand: a full collection
 * per chunk, 2 per 1,000 messages, now 0.9).
 */
export function collectGarbageAbove(limit: number): void {
  const now = external();
  if (now < externalFloor) externalFloor = now;
  if (now - externalFloor <= limit) return;
  collector()({ type: 'major', execution: 'sync' });
  externalFloor = external();
}

/**
 * A whole-heap collection that also hands back the heap V8 grew: its young
 * generation (V8 grows it to 16 MiB semi-spaces under a high allocation rate,
 * a server's start-up or a large upload, and shrinks it again only in a
 * collection that reduces memory: a full one keeps it) and the old generation's
 * free pages. V8's "last resort" flavour, what Isolate::LowMemoryNotification
 * runs. Tens of milliseconds: for the ends of phases that allocated a lot (a
 * server started, an upload of many MiB), never per request.
 */
export function releaseUnusedHeap(): void {
  collector()({ type: 'major', execution: 'sync', flavor: 'last-resort' });
  externalFloor = external();
}
