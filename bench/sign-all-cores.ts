/**
 * 2 KB RSA-2048 signing throughput on one worker and on one worker per core
 * (worker_threads), to show how signing scales across cores (brief: "linear across cores").
 */
import { availableParallelism } from 'node:os';
import { median } from './harness/measure.ts';
import { runWorkers } from './harness/run-workers.ts';

const SIGN_WORKER = new URL('./sign-worker.ts', import.meta.url);

export interface ScalingFigures {
  cores: number;
  oneWorkerPerSec: number;
  allWorkersPerSec: number;
  scaling: number;
}

export async function measureSigningScaling(certPath: string, keyPath: string, quick: boolean): Promise<ScalingFigures> {
  const cores = availableParallelism();
  const ms = quick ? 500 : 2000;
  const rounds = quick ? 1 : 3;
  const one: number[] = [];
  const all: number[] = [];
  for (let r = 0; r < rounds; r++) {
    one.push(await runWorkers(SIGN_WORKER, 1, { certPath, keyPath, ms, warmupMs: 300 }));
    all.push(await runWorkers(SIGN_WORKER, cores, { certPath, keyPath, ms, warmupMs: 300 }));
  }
  const oneWorkerPerSec = median(one);
  const allWorkersPerSec = median(all);
  return { cores, oneWorkerPerSec, allWorkersPerSec, scaling: allWorkersPerSec / oneWorkerPerSec };
}
