/**
 * The service's JSON log lines, written once per turn of the event loop: the lines
 * of every request and message answered in that turn go out in one write (one
 * syscall, or one message from a serving thread to the coordinator) instead of one
 * each. `flush` writes what is pending at once (before the last line at stop).
 */
import type { LogEntry } from './service-context.ts';

export interface LineLog {
  log(entry: LogEntry | Record<string, unknown>): void;
  flush(): void;
}

export function createLineLog(write: (text: string) => void): LineLog {
  let lines: string[] = [];
  const flush = () => {
    if (!lines.length) return;
    const text = `${lines.join('\n')}\n`;
    lines = [];
    write(text);
  };
  return {
    log(entry) {
      if (!lines.length) setImmediate(flush);
      lines.push(JSON.stringify(entry));
    },
    flush,
  };
}
