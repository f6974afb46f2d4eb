/**
 * 2 KB RSA-2048 signing throughput on one worker and on one worker per core
 * (worker_threads), to show how signing scales across cores (brief: "linear across cores").
 */
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { median } from './harness/measure.ts';

export interface ScalingFigures {
  cores: number;
  oneWorkerPerSec: number;
  allWorkersPerSec: number;
  scaling: number;
}

async function runWorkers(count: number, certPath: string, keyPath: string, ms: number): Promise<number> {
  const url = new URL('./sign-worker.ts', import.meta.url);
  const workers = Array.from({ length: count }, () => new Worker(url, { workerData: { certPath, keyPath, ms, warmupMs: 300 } }));
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

export async function measureSigningScaling(certPath: string, keyPath: string, quick: boolean): Promise<ScalingFigures> {
  const cores = availableParallelism();
  const ms = quick ? 500 : 2000;
  const rounds = quick ? 1 : 3;
  const one: number[] = [];
  const all: number[] = [];
  for (let r = 0; r < rounds; r++) {
    one.push(await runWorkers(1, certPath, keyPath, ms));
    all.push(await runWorkers(cores, certPath, keyPath, ms));
  }
  const oneWorkerPerSec = median(one);
  const allWorkersPerSec = median(all);
  return { cores, oneWorkerPerSec, allWorkersPerSec, scaling: allWorkersPerSec / oneWorkerPerSec };
}
