/**
 * Issue 12 item 6: batch throughput end to end through the CLI. `kakitome sign -i
 * DIR -o OUTDIR` and `kakitome sign -i FILE.mbox -o OUT.mbox` on N realistic 2 KB
 * messages (20,000 by default), each a child process timed from spawn to exit
 * (start-up, credential check, workers, the final sync: everything a user waits
 * for), beside the references measured in the same round: raw RSA-2048
 * crypto.sign of the same 2 KB on one worker thread alone (the target is a
 * fraction of that × cores: the "raw × cores"), raw on one worker per core
 * at once (the same harness: their ratio says whether the cores are independent),
 * raw and signMessage on the bench's own thread, and signMessage on every core.
 * Rounds alternate the references and the batches so that a noisy neighbour slows
 * them alike; each round records the load average.
 *
 *   npx node bench/cli-batch.ts [--quick] [--count=N] [--rounds=R] [--batch-dir=DIR] [--out=FILE]
 *   npx node bench/run.ts --only=clibatch [--batch-dir=DIR]
 *
 * --batch-dir: where the messages and outputs go (a fresh directory made inside
 * it, removed afterwards; default the bench's temporary directory). It matters on
 * a shared machine: on this VM's journal-less ext4, creating a file costs 15-27 µs
 * of CPU in a quiet directory tree and 250-400 µs under /tmp while other test
 * suites create and delete thousands of files there (ext4 skips inodes freed in the
 * last 60-300 s when it has no journal); the batch creates one file per message.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { availableParallelism, loadavg } from 'node:os';
import { sign } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { signMessage } from '../src/smime/sign-message.ts';
import { formatMboxEntry } from '../src/mime/mbox.ts';
import type { TestPki } from '../test/helpers/pki.ts';
import { createBenchDir, type BenchDir } from './harness/bench-data.ts';
import { measureInterleaved, median } from './harness/measure.ts';
import { runMeasured } from './harness/child-process.ts';
import { runWorkers } from './harness/run-workers.ts';
import { twoKilobyteEmail } from './messages.ts';

const BIN = fileURLToPath(new URL('../bin/kakitome.js', import.meta.url));
const MESSAGE_WORKER = new URL('./message-worker.ts', import.meta.url);

export interface CliRun {
  /** msg/s from spawn to exit. */
  msgPerSec: number;
  wallSeconds: number;
  /** The batch's own time, from its summary line (without Node start-up and the credential check). */
  batchSeconds: number;
  /** msgPerSec / (rawOneCore × cores): the target's ratio (raw × cores, the definition). */
  ratio: number;
  /** msgPerSec / rawAllCores (raw measured on every core at once, same round). */
  ratioToRawAllCores: number;
  /** msgPerSec / (rawMainThread × cores): the reference of the runs before 2026-12-06 14:00. */
  ratioToMainThreadRaw: number;
  load: number;
  /** CPU time of the whole CLI process per message (user + system, all threads), µs. */
  cpuMicrosPerMessage: number;
  /**
   * Raw signing CPU ÷ the CLI's CPU per message: the share of the CPU the batch
   * spends signing. Steadier than msg/s on a busy machine; it bounds the ratio
   * the batch reaches on idle cores.
   */
  cpuEfficiency: number;
  maxRssMiB: number;
}

export interface CliBatchRound {
  loadBefore: number;
  /** Raw crypto.sign/s on one worker thread alone (mean of before and after the batches). */
  rawOneCore: number;
  /** Raw crypto.sign/s on the bench's own thread, in alternation with signMessage (signMessage's reference). */
  rawMainThread: number;
  /** CPU time of one raw crypto.sign, µs. */
  rawCpuMicros: number;
  /** Raw crypto.sign/s summed over one worker per core running at once (mean of before and after). */
  rawAllCores: number;
  /** rawAllCores / (rawOneCore × cores): 1 when the cores are independent. */
  coreIndependence: number;
  signMessageOneCore: number;
  signMessageAllCores: number;
  directory: CliRun;
  mbox: CliRun;
}

export interface CliBatchFigures {
  count: number;
  /** Where the inputs and outputs were (see --batch-dir). */
  batchDir: string;
  cores: number;
  rounds: CliBatchRound[];
  /** Medians over the rounds (each ratio is the median of the per-round ratios). */
  median: {
    rawOneCore: number;
    rawMainThread: number;
    rawAllCores: number;
    coreIndependence: number;
    signMessageOneCore: number;
    signMessageRatio: number;
    directoryMsgPerSec: number;
    directoryRatio: number;
    directoryRatioToRawAllCores: number;
    mboxMsgPerSec: number;
    mboxRatio: number;
    mboxRatioToRawAllCores: number;
    directoryCpuEfficiency: number;
    mboxCpuEfficiency: number;
  };
}

async function runCli(args: string[]): Promise<{ seconds: number; stderr: string; cpuSeconds: number; maxRssMiB: number }> {
  const r = await runMeasured(process.execPath, [BIN, ...args]);
  if (r.exitCode !== 0) throw new Error(`kakitome ${args.join(' ')} exited with ${r.exitCode}: ${r.stderr.slice(0, 600)}`);
  return { seconds: r.seconds, stderr: r.stderr, cpuSeconds: r.userSeconds + r.systemSeconds, maxRssMiB: r.maxRssMiB };
}

/** CPU time of one raw signature, µs (median of a few bursts). */
function rawCpuMicros(op: () => unknown): number {
  const bursts: number[] = [];
  for (let b = 0; b < 5; b++) {
    const c0 = process.cpuUsage();
    for (let i = 0; i < 200; i++) op();
    const c = process.cpuUsage(c0);
    bursts.push((c.user + c.system) / 200);
  }
  return median(bursts);
}

export async function measureCliBatch(bench: BenchDir, pki: TestPki, opts: { quick: boolean; count?: number; rounds?: number; batchDir?: string }): Promise<CliBatchFigures> {
  const dir = opts.batchDir === undefined ? bench : await createBenchDir(opts.batchDir);
  try {
    return await measure(dir, pki, opts);
  } finally {
    if (dir !== bench) await dir.cleanup();
  }
}

async function measure(dir: BenchDir, pki: TestPki, opts: { quick: boolean; count?: number; rounds?: number }): Promise<CliBatchFigures> {
  const count = opts.count ?? (opts.quick ? 2_000 : 20_000);
  const rounds = opts.rounds ?? (opts.quick ? 1 : 3);
  const cores = availableParallelism();
  const id = pki.identity('rsa2048', 'bench-batch-rsa');
  const inDir = dir.file('batch-in');
  const mboxPath = dir.file('batch-in.mbox');
  mkdirSync(inDir);
  const entries: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const m = twoKilobyteEmail(id.email);
    writeFileSync(join(inDir, `m${String(i).padStart(6, '0')}.eml`), m);
    entries.push(formatMboxEntry(`${id.email} Mon Nov 23 12:00:00 2026`, m));
  }
  writeFileSync(mboxPath, Buffer.concat(entries));
  entries.length = 0;
  // The kernel writes the inputs back in the background: let it finish before anything is timed.
  spawnSync('sync');
  const signer = ['sign', '--cert', id.certPath, '--key', id.keyPath];
  // Warm Node's module compile cache (as an installed CLI has it) and the page cache.
  const warmDir = dir.file('batch-warm');
  mkdirSync(warmDir);
  writeFileSync(join(warmDir, 'w.eml'), twoKilobyteEmail(id.email));
  await runCli([...signer, '-i', warmDir, '-o', dir.file('batch-warm-out')]);

  const msg = twoKilobyteEmail(id.email);
  const signOptions = { signers: [{ certificate: id.cert, key: id.key }] };
  const workerData = (op: 'raw' | 'sign') => ({ op, certPath: id.certPath, keyPath: id.keyPath, caPath: pki.caPath, email: id.email, ms: opts.quick ? 500 : 1500, warmupMs: 200 });
  let runs = 0;
  const cli = async (kind: 'directory' | 'mbox', rawCpu: number): Promise<CliRun> => {
    // A fresh output every run, and nothing deleted until the end: on a journal-less
    // ext4 (this VM's), creating files right after deleting thousands costs up to
    // 0.5 ms of CPU each (the allocator skips inodes freed in the last 60-300 s).
    const out = dir.file(`batch-out-${kind}-${++runs}${kind === 'mbox' ? '.mbox' : ''}`);
    const load = loadavg()[0]!;
    const r = await runCli([...signer, '-i', kind === 'directory' ? inDir : mboxPath, '-o', out]);
    const summary = /(\d+) of (\d+) messages signed, 0 failed \(([\d.]+) s/.exec(r.stderr);
    if (!summary || Number(summary[1]) !== count) throw new Error(`bench: unexpected batch summary: ${r.stderr.slice(0, 400)}`);
    const msgPerSec = count / r.seconds;
    const cpuMicrosPerMessage = (r.cpuSeconds * 1e6) / count;
    // The ratios are set once the round's references are all measured.
    return {
      msgPerSec, wallSeconds: r.seconds, batchSeconds: Number(summary[3]), ratio: NaN, ratioToRawAllCores: NaN, ratioToMainThreadRaw: NaN, load,
      cpuMicrosPerMessage, cpuEfficiency: rawCpu / cpuMicrosPerMessage, maxRssMiB: r.maxRssMiB,
    };
  };

  const all: CliBatchRound[] = [];
  for (let r = 0; r < rounds; r++) {
    const loadBefore = loadavg()[0]!;
    const one = measureInterleaved({ raw: () => sign('sha256', msg, id.key), signMessage: () => signMessage(msg, signOptions) }, { ms: opts.quick ? 300 : 600, rounds: 3 });
    const rawCpu = rawCpuMicros(() => sign('sha256', msg, id.key));
    // Raw on one worker alone and on one worker per core: the same harness, so that
    // their ratio says whether the cores are independent (a VM's two vCPUs may not be).
    const rawOneBefore = await runWorkers(MESSAGE_WORKER, 1, workerData('raw'));
    const rawAllBefore = await runWorkers(MESSAGE_WORKER, cores, workerData('raw'));
    const signMessageAllCores = await runWorkers(MESSAGE_WORKER, cores, workerData('sign'));
    const directory = await cli('directory', rawCpu);
    const mbox = await cli('mbox', rawCpu);
    const rawAllAfter = await runWorkers(MESSAGE_WORKER, cores, workerData('raw'));
    const rawOneAfter = await runWorkers(MESSAGE_WORKER, 1, workerData('raw'));
    const rawOneCore = (rawOneBefore + rawOneAfter) / 2;
    const rawAllCores = (rawAllBefore + rawAllAfter) / 2;
    for (const run of [directory, mbox]) {
      run.ratio = run.msgPerSec / (rawOneCore * cores);
      run.ratioToRawAllCores = run.msgPerSec / rawAllCores;
      run.ratioToMainThreadRaw = run.msgPerSec / (one.raw.opsPerSec * cores);
    }
    all.push({
      loadBefore, rawOneCore, rawMainThread: one.raw.opsPerSec, rawCpuMicros: rawCpu, rawAllCores, coreIndependence: rawAllCores / (rawOneCore * cores),
      signMessageOneCore: one.signMessage.opsPerSec, signMessageAllCores, directory, mbox,
    });
    process.stderr.write(`bench: cli batch round ${r + 1}/${rounds}: load ${loadBefore.toFixed(2)}, raw ${rawOneCore.toFixed(0)}/s x ${cores} (all cores at once ${rawAllCores.toFixed(0)}/s, ${(100 * rawAllCores / (rawOneCore * cores)).toFixed(0)}%; bench thread ${one.raw.opsPerSec.toFixed(0)}/s), directory ${directory.msgPerSec.toFixed(0)} msg/s (${(100 * directory.ratio).toFixed(0)}%), mbox ${mbox.msgPerSec.toFixed(0)} msg/s (${(100 * mbox.ratio).toFixed(0)}%); CPU per message: raw ${rawCpu.toFixed(0)} µs, directory ${directory.cpuMicrosPerMessage.toFixed(0)} µs (${(100 * directory.cpuEfficiency).toFixed(0)}%), mbox ${mbox.cpuMicrosPerMessage.toFixed(0)} µs (${(100 * mbox.cpuEfficiency).toFixed(0)}%)\n`);
  }
  const m = (f: (x: CliBatchRound) => number) => median(all.map(f));
  return {
    count,
    batchDir: dir.dir,
    cores,
    rounds: all,
    median: {
      rawOneCore: m((x) => x.rawOneCore),
      rawMainThread: m((x) => x.rawMainThread),
      rawAllCores: m((x) => x.rawAllCores),
      coreIndependence: m((x) => x.coreIndependence),
      signMessageOneCore: m((x) => x.signMessageOneCore),
      signMessageRatio: m((x) => x.signMessageOneCore / x.rawMainThread),
      directoryMsgPerSec: m((x) => x.directory.msgPerSec),
      directoryRatio: m((x) => x.directory.ratio),
      directoryRatioToRawAllCores: m((x) => x.directory.ratioToRawAllCores),
      mboxMsgPerSec: m((x) => x.mbox.msgPerSec),
      mboxRatio: m((x) => x.mbox.ratio),
      mboxRatioToRawAllCores: m((x) => x.mbox.ratioToRawAllCores),
      directoryCpuEfficiency: m((x) => x.directory.cpuEfficiency),
      mboxCpuEfficiency: m((x) => x.mbox.cpuEfficiency),
    },
  };
}

if (import.meta.main) {
  const { TestPki: Pki } = await import('../test/helpers/pki.ts');
  const args = process.argv.slice(2);
  const arg = (name: string) => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const quick = args.includes('--quick');
  const pki = new Pki('Kakitome Bench Root');
  const dir = await createBenchDir();
  try {
    const load = { before: loadavg()[0]!, after: NaN };
    const figures = await measureCliBatch(dir, pki, { quick, ...(arg('count') ? { count: Number(arg('count')) } : {}), ...(arg('rounds') ? { rounds: Number(arg('rounds')) } : {}), ...(arg('batch-dir') ? { batchDir: arg('batch-dir')! } : {}) });
    load.after = loadavg()[0]!;
    console.log(JSON.stringify({ load, ...figures.median }, null, 2));
    const out = arg('out');
    if (out) writeFileSync(out, `${JSON.stringify({ date: new Date().toISOString(), quick, load, cliBatch: figures }, null, 2)}\n`);
  } finally {
    await dir.cleanup();
    pki.cleanup();
  }
}
