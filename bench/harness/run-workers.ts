/**
 * Runs `count` copies of a benchmark worker at once and returns their summed rate.
 * Protocol: each worker posts one message when warmed up, waits for 'go', then
 * posts { n, seconds } (operations done and the time they took).
 */
import { Worker } from 'node:worker_threads';

export async function runWorkers(url: URL, count: number, workerData: unknown): Promise<number> {
  const workers = Array.from({ length: count }, () => new Worker(url, { workerData }));
  try {
    await Promise.all(workers.map((w) => new Promise<void>((resolve, reject) => {
      w.once('error', reject);
      w.once('message', () => resolve());
    })));
    const results = workers.map((w) => new Promise<{ n: number; seconds: number }>((resolve, reject) => {
      w.once('error', reject);
      w.once('message', resolve);
    }));
    for (const w of workers) w.postMessage('go');
    const r = await Promise.all(results);
    return r.reduce((s, x) => s + x.n / x.seconds, 0);
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
