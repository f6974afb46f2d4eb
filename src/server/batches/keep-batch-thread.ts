/**
 * Keeps a server's batch thread (start-batch-thread.ts) running: a thread that
 * dies (an uncaught error, its heap exhausted, a crash in a native call) is logged
 * with its cause and started again after a back-off (1 s, doubling, at most 1
 * minute), at most RESTART_LIMIT times in RESTART_WINDOW_MS; past that it stays
 * stopped and /healthz answers 503, so a load balancer sends this node nothing more
 * and an orchestrator restarts the process. While no thread runs, uploads are cut
 * into chunks on the serving thread and queued as before; the chunks the dead
 * thread held are given back to the queue at once (their attempt counted: the
 * death may have been the chunk's), to be claimed by any node, the new thread too;
 * if the store refuses that, when their lease runs out (--batch-lease, 30 s).
 *
 * The dead thread's counters are kept as it last reported them, so /metrics never
 * goes backwards (what it counted after the last scrape is lost).
 */
import { Metrics, type MetricsSnapshot } from '../metrics.ts';
import type { BatchHealth, LogEntry } from '../service-context.ts';
import type { BatchThread } from './start-batch-thread.ts';

/** Restarts allowed in RESTART_WINDOW_MS: a chunk that kills the thread does so at most MAX_ATTEMPTS (5) times before it is given up. */
export const RESTART_LIMIT = 10;
export const RESTART_WINDOW_MS = 15 * 60_000;
/** The restarts' bound and back-off: RESTART_LIMIT in RESTART_WINDOW_MS, waiting 1 s, doubling, at most 1 minute. */
export const RESTARTS = { limit: RESTART_LIMIT, windowMs: RESTART_WINDOW_MS, firstDelayMs: 1000, maxDelayMs: 60_000 };


export interface KeptBatchThread {
  /** The thread running now, or undefined between a death and its restart (and for good once stopped). */
  current(): BatchThread | undefined;
  /** What /healthz says of the batch side: running, starting again after a death, or stopped for good (503). */
  state(): BatchHealth;
  /** The store's passing trouble the running thread's workers report (batch-worker.ts), for /healthz. */
  storeTrouble(): string | undefined;
  restarts(): number;
  /** The counters of the running thread with those of the threads before it. */
  snapshot(): Promise<MetricsSnapshot | undefined>;
  stop(): Promise<void>;
}

/**
 * `release` gives back at once the chunks a dead thread held (BatchQueue.releaseNode): it
 * is gone (released once its 'exit' came), its store connection with it, so nothing it held can be
 * completed any more; a completion it had committed is left alone (the chunk is done).
 */
export async function keepBatchThread(start: () => Promise<BatchThread>, log: (e: LogEntry) => void, release: (node: string) => Promise<number>, bounds = RESTARTS): Promise<KeptBatchThread> {
  let thread: BatchThread | undefined = await start();
  let state: BatchHealth = { state: 'running' };
  let stopping = false;
  let restarts = 0;
  const recent: number[] = [];
  let timer: NodeJS.Timeout | undefined;
  // The last counters each thread reported; a dead one's are kept.
  let last: MetricsSnapshot | undefined;
  let retired: MetricsSnapshot[] = [];
  const entry = (level: string, msg: string, fields: LogEntry) => log({ time: new Date().toISOString(), level, msg, ...fields });

  const restart = async (): Promise<void> => {
    timer = undefined;
    if (stopping) return;
    try {
      const next = await start();
      if (stopping) {
        await next.stop();
        return;
      }
      thread = next;
      state = { state: 'running' };
      restarts++;
      entry('info', 'batch thread restarted', { restarts });
      watch(next);
    } catch (e) {
      died(e instanceof Error ? e : new Error(String(e)));
    }
  };

  const died = (e: Error): void => {
    const now = Date.now();
    while (recent.length && recent[0]! <= now - bounds.windowMs) recent.shift();
    recent.push(now);
    const cause = `${e.name}: ${e.message}`;
    if (recent.length > bounds.limit) {
      state = { state: 'stopped', reason: `The batch thread died ${recent.length} times in ${Math.round(bounds.windowMs / 60_000)} minutes (last: ${cause}); this node signs no batch chunks until it is restarted.` };
      entry('error', 'batch thread failed', { error: cause, restart: false, deaths: recent.length });
      return;
    }
    const delay = Math.min(bounds.maxDelayMs, bounds.firstDelayMs * 2 ** (recent.length - 1));
    state = { state: 'restarting', reason: `The batch thread died (${cause}); it starts again in ${delay / 1000} s.` };
    entry('error', 'batch thread failed', { error: cause, restart: true, retryMs: delay, deaths: recent.length });
    timer = setTimeout(() => void restart(), delay);
  };

  const watch = (t: BatchThread): void => {
    void t.failed.then((e) => {
      if (stopping || thread !== t) return;
      thread = undefined;
      if (last) retired.push({ ...last, inFlight: 0, batch: { threadsRunning: 0, threadRestarts: 0, storeTrouble: last.batch?.storeTrouble ?? 0, waitingForStore: 0 } });
      last = undefined;
      died(e);
      t.exited.then(() => release(t.node)).then(
        (n) => entry('info', 'batch chunks released', { node: t.node, chunks: n }),
        // The store's own trouble: the chunks come back when their lease lapses.
        (err) => entry('error', 'batch chunks not released', { node: t.node, error: err instanceof Error ? err.message : String(err) }),
      );
    });
  };
  watch(thread);

  return {
    current: () => thread,
    state: () => state,
    storeTrouble: () => thread?.storeTrouble(),
    restarts: () => restarts,
    async snapshot() {
      const t = thread;
      const mine = t ? await t.snapshot() : undefined;
      if (mine && t === thread) last = mine;
      if (retired.length > 1) retired = [retired.reduce(sum)];
      const all = [...retired, ...(mine ? [mine] : [])];
      return all.length ? all.reduce(sum) : undefined;
    },
    async stop() {
      stopping = true;
      clearTimeout(timer);
      await thread?.stop();
    },
  };
}

function sum(a: MetricsSnapshot, b: MetricsSnapshot): MetricsSnapshot {
  return new Metrics().absorb(a).absorb(b).snapshot();
}
