/**
 * Issue 10, batches: a signing node's own work, without HTTP, a second node or the
 * upload in the figures. One SQLite store with an RSA-2048 (or P-256) tenant
 * identity; a batch of N 2 KB messages stored in chunks as an upload stores them
 * (storeUploadChunks), then signed by a BatchWorker in a worker thread made as the
 * server's batch thread is (its young generation, or --young-mb), after a first
 * batch of --warm-up messages that is not measured (the signing path compiled).
 * It reports, per message, the CPU of the batch thread, of each kind of thread
 * (V8's helpers, libuv's pool) and of the whole process, beside crypto.sign of the
 * same message with a key of the same type on that thread; the share of the
 * batch thread's wall time it was blocked (neither on a core nor waiting for one:
 * fsync, locks, nothing to do); and the collections it made (perf_hooks):
 *
 *   npx node bench/serve-batch-chunks.ts [--count=10000] [--warm-up=3000] [--key-type=rsa2048|p256] [--young-mb=3] [--dir=DIR]
 *
 * Under load, trust the CPU outside the signature (processMicrosOutsideSignature)
 * and the collections more than the rates. Instruction counts: run it twice under
 * `valgrind --tool=callgrind --smc-check=all` with two --count values (1000 and
 * 3000, --warm-up=1000) and divide the difference by the difference in messages
 * (the RSA functions, rsaz_* and bn_*, apart). It prints "bench: signing" and
 * "bench: signing done" on standard error, for a profiler (perf record -p) to
 * attach to the measured part only. Not run by the test suite.
 */
import { execFileSync } from 'node:child_process';
import { createPrivateKey, sign } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { PerformanceObserver } from 'node:perf_hooks';
import { BATCH_YOUNG_GENERATION_MB } from '../src/server/batches/start-batch-thread.ts';
import { benchMbox } from './harness/batch-mbox.ts';
import { createBenchDir } from './harness/bench-data.ts';
import { twoKilobyteEmail } from './messages.ts';

const BIN = fileURLToPath(new URL('../bin/kakitome.js', import.meta.url));
const arg = (name: string, fallback: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;

interface Job {
  home: string;
  count: number;
  warmUp: number;
  keyType: string;
  refKeyPem: string;
}

interface Figures {
  threadMicros: number;
  processMicros: number;
  rawMicros: number;
  gc: Record<string, { count: number; ms: number }>;
  threads: Record<string, number>;
  blockedShare: number;
  faults: number;
  runQueueShare: number;
  signed: number;
}

/** Page faults of the whole process so far that needed no reading (/proc/self/stat). */
function minorFaults(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[7]);
}

/** This thread's time on a core and waiting for one, ns (/proc/thread-self/schedstat). */
function schedstat(): [number, number] {
  const [run, wait] = readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ').map(Number);
  return [run!, wait!];
}

/** CPU of each thread of this process so far, µs, by thread id: [name, utime + stime]. */
function threadTimes(): Map<string, [string, number]> {
  const out = new Map<string, [string, number]>();
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(tid, [readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim(), (Number(f[11]) + Number(f[12])) * 10_000]);
    } catch {
      // The thread ended.
    }
  }
  return out;
}

async function runInThread(job: Job): Promise<Figures> {
  const { openStore } = await import('../src/store/open-store.ts');
  const { TenantDirectory } = await import('../src/store/tenant-directory.ts');
  const { BatchDirectory } = await import('../src/store/batch-directory.ts');
  const { openBatchBlobs } = await import('../src/store/batch-blobs.ts');
  const { ServiceCache } = await import('../src/server/service-cache.ts');
  const { Metrics } = await import('../src/server/metrics.ts');
  const { BatchWorker } = await import('../src/server/batches/batch-worker.ts');
  const { storeUploadChunks } = await import('../src/server/batches/store-upload-chunks.ts');
  const { DEFAULT_BATCH_CONFIG } = await import('../src/server/config.ts');
  const { releaseUnusedHeap } = await import('../src/server/batches/collect-garbage.ts');

  const store = await openStore({ home: job.home, actor: 'serve' });
  const tenants = new TenantDirectory(store);
  const batch = { ...DEFAULT_BATCH_CONFIG, pollMs: 50 };
  const ctx = {
    store, tenants, config: { batch } as never, metrics: new Metrics(), version: 'bench', cache: new ServiceCache(store, tenants),
    rateLimiter: { take: () => ({ allowed: true, retryAfter: 0 }) }, log: () => {}, shuttingDown: () => false,
  };
  const blobs = await openBatchBlobs(store.engine);
  const directory = new BatchDirectory(store, blobs);
  const keyId = String((await store.engine.all('SELECT id FROM api_keys LIMIT 1'))[0]!.id);
  const upload = async (count: number) => {
    const id = await directory.begin({ tenant: 'bench', keyId, mediaType: 'application/mbox', options: {}, leaseMs: 60_000 });
    const stored = await storeUploadChunks(directory, { batchId: id, contentType: 'application/mbox', maxMessageBytes: 50 * 1024 * 1024 }, benchMbox('news@bench.example', count), batch);
    await directory.finishUpload(id, { ...stored, receivedBytes: 0, fingerprint: 'bench' });
    return id;
  };
  const done = async (id: string) => {
    for (;;) {
      const view = await directory.find('bench', id);
      if (view?.state === 'done') return view;
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  // A first batch, not measured: the signing path compiled and V8's heap grown to its working size, as on a node that has signed a while.
  const warm = new BatchWorker(ctx as never, blobs);
  warm.start();
  await done(await upload(job.warmUp));
  await warm.stop();
  const id = await upload(job.count);
  const refKey = createPrivateKey(job.refKeyPem);
  const msg = twoKilobyteEmail('news@bench.example');
  const raw = () => {
    const t = process.threadCpuUsage();
    for (let i = 0; i < 300; i++) sign('sha256', msg, refKey);
    const d = process.threadCpuUsage(t);
    return (d.user + d.system) / 300;
  };
  raw();
  releaseUnusedHeap();
  const rawBefore = raw();

  const gc: Record<string, { count: number; ms: number }> = {};
  const kinds: Record<number, string> = { 1: 'minor', 4: 'major', 8: 'incremental', 16: 'weakcb' };
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = (e as unknown as { detail: { kind: number } }).detail.kind;
      const k = kinds[kind] ?? String(kind);
      (gc[k] ??= { count: 0, ms: 0 }).count++;
      gc[k]!.ms += e.duration;
    }
  });
  obs.observe({ entryTypes: ['gc'] });
  const t0 = process.threadCpuUsage();
  const p0 = process.cpuUsage();
  const tasks0 = threadTimes();
  const sched0 = schedstat();
  const faults0 = minorFaults();
  const wall0 = performance.now();
  process.stderr.write('bench: signing\n');
  const worker = new BatchWorker(ctx as never, blobs);
  worker.start();
  const view = await done(id);
  process.stderr.write('bench: signing done\n');
  const tasks1 = threadTimes();
  const sched1 = schedstat();
  const faults = minorFaults() - faults0;
  const wallMicros = (performance.now() - wall0) * 1000;
  // The batch thread's wall time: on a core, waiting for one (the load), and neither (blocked: fsync, locks, nothing to do).
  const blocked = wallMicros - (sched1[0] - sched0[0]) / 1000 - (sched1[1] - sched0[1]) / 1000;
  const t1 = process.threadCpuUsage(t0);
  const p1 = process.cpuUsage(p0);
  await worker.stop();
  obs.disconnect();
  const rawAfter = raw();
  await store.close();
  const threads: Record<string, number> = {};
  for (const [tid, [comm, t]] of tasks1) threads[comm] = (threads[comm] ?? 0) + (t - (tasks0.get(tid)?.[1] ?? 0)) / view.signed;
  return { faults: faults / view.signed, blockedShare: blocked / wallMicros, runQueueShare: (sched1[1] - sched0[1]) / 1000 / wallMicros, threads, threadMicros: (t1.user + t1.system) / view.signed, processMicros: (p1.user + p1.system) / view.signed, rawMicros: (rawBefore + rawAfter) / 2, gc, signed: view.signed };
}

if (!isMainThread) {
  parentPort!.postMessage(await runInThread(workerData as Job));
} else {
  const count = Number(arg('count', '10000'));
  const keyType = arg('key-type', 'rsa2048');
  const dir = await createBenchDir(arg('dir', '') || undefined);
  try {
    mkdirSync(dir.file('user'));
    const env: NodeJS.ProcessEnv = { ...process.env, KAKITOME_HOME: dir.file('home'), HOME: dir.file('user'), KAKITOME_DATABASE_URL: '' };
    delete env.KAKITOME_MASTER_KEY;
    const kakitome = (...args: string[]) => execFileSync(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] }).toString();
    kakitome('init');
    kakitome('ca', 'init', '--name', 'Bench Batch CA', '--key-type', 'p256', '-o', dir.file('root.pem'));
    kakitome('tenant', 'add', 'bench', '--domain', 'bench.example');
    kakitome('tenant', 'identity', 'bench', '--email', 'news@bench.example', '--key-type', keyType);
    kakitome('tenant', 'key', 'bench', '--scope', 'sign', '--json');
    const refKeyPem = execFileSync('openssl', keyType === 'p256' ? ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'] : ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
    process.env.KAKITOME_HOME = dir.file('home');
    const worker = new Worker(new URL(import.meta.url), { workerData: { home: dir.file('home'), count, warmUp: Number(arg('warm-up', '3000')), keyType, refKeyPem } satisfies Job, resourceLimits: { maxYoungGenerationSizeMb: Number(arg('young-mb', String(BATCH_YOUNG_GENERATION_MB))) } });
    const f = await new Promise<Figures>((resolve, reject) => worker.once('message', resolve).once('error', reject));
    await worker.terminate();
    const out = {
      count, keyType, cores: availableParallelism(), signed: f.signed,
      batchThreadMicrosPerMessage: Math.round(f.threadMicros), processMicrosPerMessage: Math.round(f.processMicros), rawMicrosPerSignature: Math.round(f.rawMicros),
      processMicrosOutsideSignature: Math.round(f.processMicros - f.rawMicros), threadMicrosOutsideSignature: Math.round(f.threadMicros - f.rawMicros),
      minorFaultsPerMessage: +f.faults.toFixed(2), batchThreadBlockedShare: +f.blockedShare.toFixed(3), batchThreadRunQueueShare: +f.runQueueShare.toFixed(3),
      threadMicrosPerMessage: Object.fromEntries(Object.entries(f.threads).map(([k, v]) => [k, Math.round(v)])),
      gcPerThousandMessages: Object.fromEntries(Object.entries(f.gc).map(([k, v]) => [k, { count: +(v.count * 1000 / f.signed).toFixed(1), ms: +(v.ms * 1000 / f.signed).toFixed(1) }])),
    };
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  } finally {
    await dir.cleanup();
  }
}
