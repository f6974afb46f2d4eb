/**
 * The service's JSON log lines, written once per turn of the event loop: the lines
 * of every request and message answered in that turn go out in one write (one
 * syscall, or one message from a serving thread to the coordinator) instead of one
 * each. `append` adds lines already written elsewhere (a serving thread's, handed
 * over joined), so the coordinator's writes are one per turn too, whatever the
 * number of threads. `flush` writes what is pending at once (before the last line
 * at stop). `take` hands the pending lines to a caller that sends them with something
 * else (a serving thread's audit rows); `delayMs` waits that long for such a ride
 * instead of one turn.
 */
import type { LogEntry } from './service-context.ts';

export interface LineLog {
  log(entry: LogEntry | Record<string, unknown>): void;
  /** Whole lines, each ended by LF (another thread's, joined), written with this turn's. */
  append(text: string): void;
  flush(): void;
  /** The pending lines, now no longer pending: the caller sends them. */
  take(): string;
}

export function createLineLog(write: (text: string) => void, options: { delayMs?: number } = {}): LineLog {
  let pending = '';
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    if (!pending) return;
    const text = pending;
    pending = '';
    write(text);
  };
  const add = (text: string) => {
    pending += text;
    if (scheduled) return;
    scheduled = true;
    if (options.delayMs === undefined) setImmediate(flush);
    else setTimeout(flush, options.delayMs).unref();
  };
  return {
    log: (entry) => add(`${JSON.stringify(entry)}\n`),
    append: (text) => {
      if (text) add(text);
    },
    flush,
    take: () => {
      const text = pending;
      pending = '';
      return text;
    },
  };
}
