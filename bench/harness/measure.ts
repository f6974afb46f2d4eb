/**
 * Timing for in-process benchmarks: repeat an operation for a time budget, several
 * rounds, and report the median rate (medians resist GC pauses and noisy neighbours
 * on a shared VM better than means).
 */
import { performance } from 'node:perf_hooks';

export interface Rate {
  /** Median operations per second over the rounds. */
  opsPerSec: number;
  rounds: number[];
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Runs `op` repeatedly for `ms` per round, `rounds` times (after a warm-up round). */
export function measureSync(op: () => unknown, opts: { ms: number; rounds: number }): Rate {
  const once = (ms: number): number => {
    let n = 0;
    const t0 = performance.now();
    let t = t0;
    while (t - t0 < ms) {
      for (let i = 0; i < 8; i++) op();
      n += 8;
      t = performance.now();
    }
    return (n * 1000) / (t - t0);
  };
  once(Math.min(200, opts.ms));
  const rounds = Array.from({ length: opts.rounds }, () => once(opts.ms));
  return { opsPerSec: median(rounds), rounds };
}

/**
 * Measures several operations in alternating rounds, so that a noisy neighbour
 * slows all of them alike and their ratios stay meaningful on a shared VM.
 */
export function measureInterleaved<K extends string>(ops: Record<K, () => unknown>, opts: { ms: number; rounds: number }): Record<K, Rate> {
  const keys = Object.keys(ops) as K[];
  const rounds = new Map<K, number[]>(keys.map((k) => [k, []]));
  for (const k of keys) measureSync(ops[k], { ms: Math.min(200, opts.ms), rounds: 1 }); // warm-up
  for (let r = 0; r < opts.rounds; r++) {
    for (const k of keys) rounds.get(k)!.push(measureSync(ops[k], { ms: opts.ms, rounds: 1 }).opsPerSec);
  }
  const out = {} as Record<K, Rate>;
  for (const k of keys) out[k] = { opsPerSec: median(rounds.get(k)!), rounds: rounds.get(k)! };
  return out;
}

/** Same for asynchronous operations, `concurrency` in flight. */
export async function measureAsync(op: () => Promise<unknown>, opts: { ms: number; rounds: number; concurrency?: number }): Promise<Rate> {
  const c = opts.concurrency ?? 1;
  const once = async (ms: number): Promise<number> => {
    let n = 0;
    const t0 = performance.now();
    const worker = async () => {
      while (performance.now() - t0 < ms) {
        await op();
        n++;
      }
    };
    await Promise.all(Array.from({ length: c }, worker));
    return (n * 1000) / (performance.now() - t0);
  };
  await once(Math.min(200, opts.ms));
  const rounds: number[] = [];
  for (let r = 0; r < opts.rounds; r++) rounds.push(await once(opts.ms));
  return { opsPerSec: median(rounds), rounds };
}

/** Median wall time in seconds of `rounds` runs of an async operation. */
export async function medianSeconds(op: () => Promise<unknown>, rounds: number): Promise<{ seconds: number; rounds: number[] }> {
  const xs: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    await op();
    xs.push((performance.now() - t0) / 1000);
  }
  return { seconds: median(xs), rounds: xs };
}
