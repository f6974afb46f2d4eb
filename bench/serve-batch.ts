/**
 * Issue 10, batches: one batch of N realistic 2 KB messages (1,000,000 by default)
 * through `kakitome serve`, end to end: uploaded as one mbox (generated as it is
 * sent, never held by the bench), signed by K nodes sharing one store (one node per
 * core by default; RSA-2048 by default), downloaded as one mbox (counted, not kept).
 * Reports msg/s of the signing (the batch's queuedAt to finishedAt) and of the
 * whole (upload start to the last byte of the result), the upload and download
 * rates, and each node's peak RSS (VmHWM, read before it is stopped; the target is
 * under 256 MiB for a million messages), beside raw RSA-2048 crypto.sign of the
 * same 2 KB on one core measured in the same run (the target: 75% of raw × cores).
 *
 *   npx node bench/serve-batch.ts [--count=N] [--nodes=K] [--engine=postgres|sqlite] [--key-type=rsa2048|p256]
 *                                 [--chunk=500] [--workers=1] [--dir=DIR] [--out=FILE.json]
 *
 * PostgreSQL (default) is a throwaway server on loopback with fsync on
 * (test/store/postgres-server.ts); SQLite is a store file in --dir (the nodes share
 * it, and its batches/ directory). --dir: where the store and the SQLite batch
 * files go (default the system's temporary directory; a million messages need
 * about 10 GB there). BENCH_NODE_ARGS: options for the nodes' node, e.g.
 * "--cpu-prof --cpu-prof-dir=/tmp/prof" to see where a node spends its time;
 * BENCH_NODE_LOG=PREFIX writes each node's standard output (its log lines, and
 * V8's with --trace-gc in BENCH_NODE_ARGS) to PREFIX.PID.
 * Not run by the test suite.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createPrivateKey, sign } from 'node:crypto';
import { createWriteStream, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { startPostgres, type PostgresServer } from '../test/store/postgres-server.ts';
import { benchMbox } from './harness/batch-mbox.ts';
import { createBenchDir } from './harness/bench-data.ts';
import { measureSync } from './harness/measure.ts';
import { twoKilobyteEmail } from './messages.ts';

const BIN = fileURLToPath(new URL('../bin/kakitome.js', import.meta.url));
const arg = (name: string, fallback: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;

const count = Number(arg('count', '1000000'));
const cores = availableParallelism();
const nodeCount = Number(arg('nodes', String(cores)));
const engine = arg('engine', 'postgres');
const keyType = arg('key-type', 'rsa2048');
const chunk = arg('chunk', '500');
const workers = arg('workers', '1');
const out = process.argv.find((a) => a.startsWith('--out='))?.slice(6);

function kakitome(env: NodeJS.ProcessEnv, ...args: string[]): string {
  return execFileSync(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] }).toString();
}

interface Node {
  child: ChildProcess;
  url: Promise<string>;
}

function startNode(env: NodeJS.ProcessEnv): Node {
  const child = spawn(process.execPath, [...(process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean), BIN, 'serve', '--http', '127.0.0.1:0', '--workers', '0', '--batch-chunk', chunk, '--batch-workers', workers, '--max-batch-size', '1024GiB', '--max-batch-messages', String(Math.max(count, 1))], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  const url = new Promise<string>((resolve, reject) => {
    const logTo = process.env.BENCH_NODE_LOG ? createWriteStream(`${process.env.BENCH_NODE_LOG}.${child.pid}`) : undefined;
    createInterface({ input: child.stdout! }).on('line', (l) => {
      logTo?.write(`${l}\n`);
      if (l.includes('"msg":"listening"')) resolve(String(JSON.parse(l).url));
    });
    child.on('exit', (code) => reject(new Error(`serve exited ${code}`)));
  });
  return { child, url };
}

/** Peak resident set size of a process, MiB (VmHWM). */
function peakRssMiB(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** CPU time a process has used so far, µs (utime + stime from /proc/PID/stat, all its threads). */
function cpuMicros(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 14 and 15 of stat(5); the slice starts at field 3. Clock ticks of 10 ms (CLK_TCK 100 on Linux).
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}

function upload(base: string, key: string, body: Readable): Promise<{ id: string }> {
  return new Promise((resolve, reject) => {
    const req = request(new URL('/api/v1/batches', base), { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/mbox', 'transfer-encoding': 'chunked' } }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d)).on('end', () => (res.statusCode === 202 ? resolve(JSON.parse(text)) : reject(new Error(`upload: ${res.statusCode} ${text}`))));
    });
    req.on('error', reject);
    body.pipe(req);
  });
}

function download(url: URL, key: string): Promise<number> {
  return new Promise((resolve, reject) => {
    request(url, { headers: { authorization: `Bearer ${key}` } }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`result: ${res.statusCode}`));
      let bytes = 0;
      res.on('data', (d: Buffer) => (bytes += d.length)).on('end', () => resolve(bytes)).on('error', reject);
    }).on('error', reject).end();
  });
}

async function main(): Promise<void> {
  const dir = await createBenchDir(process.argv.find((a) => a.startsWith('--dir='))?.slice(6));
  let pg: PostgresServer | undefined;
  const nodes: Node[] = [];
  try {
    mkdirSync(dir.file('user'));
    const env: NodeJS.ProcessEnv = { ...process.env, KAKITOME_HOME: dir.file('home'), HOME: dir.file('user'), KAKITOME_DATABASE_URL: '' };
    delete env.KAKITOME_MASTER_KEY;
    if (engine === 'postgres') {
      pg = await startPostgres({ fsync: true });
      env.KAKITOME_DATABASE_URL = pg.url;
    }
    kakitome(env, 'init');
    kakitome(env, 'ca', 'init', '--name', 'Bench Batch CA', '--key-type', 'p256', '-o', dir.file('root.pem'));
    kakitome(env, 'tenant', 'add', 'bench', '--domain', 'bench.example');
    kakitome(env, 'tenant', 'identity', 'bench', '--email', 'news@bench.example', '--key-type', keyType);
    const key = JSON.parse(kakitome(env, 'tenant', 'key', 'bench', '--scope', 'sign', '--json')).key as string;

    // The raw reference: crypto.sign of a 2 KB message with a key of the same type, one core.
    const refKey = createPrivateKey(execFileSync('openssl', keyType === 'p256' ? ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'] : ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048']));
    const msg = twoKilobyteEmail('news@bench.example');
    const rawBefore = measureSync(() => sign('sha256', msg, refKey), { ms: 1000, rounds: 3 }).opsPerSec;

    // Node's compile cache (in HOME, as an installed launcher has it) warmed by a first start, so no node carries the TypeScript stripper.
    const warm = startNode(env);
    await warm.url;
    warm.child.kill('SIGTERM');
    await new Promise((r) => warm.child.once('exit', r));
    for (let i = 0; i < nodeCount; i++) nodes.push(startNode(env));
    const urls = await Promise.all(nodes.map((n) => n.url));
    const load = loadavg()[0]!;
    process.stderr.write(`bench: ${count} messages, ${nodeCount} node(s) on ${engine}, ${keyType}, chunk ${chunk}; raw ${rawBefore.toFixed(0)}/s on one core; load ${load.toFixed(2)}\n`);

    const t0 = performance.now();
    const { id } = await upload(urls[0]!, key, benchMbox('news@bench.example', count));
    const uploaded = performance.now();
    const rssAfterUpload = nodes.map((n) => peakRssMiB(n.child.pid!));
    const cpuAfterUpload = nodes.map((n) => cpuMicros(n.child.pid!));
    process.stderr.write(`bench: uploaded in ${((uploaded - t0) / 1000).toFixed(1)} s\n`);
    let view: { state: string; signed: number; failed: number; total: number; queuedAt: string; finishedAt?: string; resultBytes: number };
    for (;;) {
      view = await (await fetch(new URL(`/api/v1/batches/${id}`, urls[0]), { headers: { authorization: `Bearer ${key}` } })).json() as typeof view;
      if (view.state === 'done') break;
      process.stderr.write(`bench: ${view.signed} signed, ${view.failed} failed\r`);
      await new Promise((r) => setTimeout(r, 2000));
    }
    const done = performance.now();
    process.stderr.write(`\nbench: signing done\n`);
    const rssAfterSigning = nodes.map((n) => peakRssMiB(n.child.pid!));
    const cpuSigning = nodes.map((n, i) => cpuMicros(n.child.pid!) - cpuAfterUpload[i]!);
    const bytes = await download(new URL(`/api/v1/batches/${id}/result`, urls[nodeCount - 1]), key);
    const downloaded = performance.now();
    const rss = nodes.map((n) => peakRssMiB(n.child.pid!));
    const rawAfter = measureSync(() => sign('sha256', msg, refKey), { ms: 1000, rounds: 3 }).opsPerSec;
    const raw = (rawBefore + rawAfter) / 2;
    const signingSeconds = (new Date(view!.finishedAt!).getTime() - new Date(view!.queuedAt).getTime()) / 1000;
    const figures = {
      date: new Date().toISOString(), count, nodes: nodeCount, cores, engine, keyType, chunk: Number(chunk), workers: Number(workers), loadBefore: load, loadAfter: loadavg()[0],
      signed: view!.signed, failed: view!.failed,
      rawOneCore: raw,
      signingMsgPerSec: view!.signed / signingSeconds,
      ratioToRawTimesCores: view!.signed / signingSeconds / (raw * cores),
      endToEndMsgPerSec: view!.signed / ((downloaded - t0) / 1000),
      uploadSeconds: (uploaded - t0) / 1000,
      signingSeconds,
      // The nodes' CPU (every thread) from the upload's end to the poll that saw the batch done, per message signed.
      cpuMicrosPerMessageSigning: cpuSigning.reduce((a, b) => a + b, 0) / view!.signed,
      rawMicrosPerSignature: 1e6 / raw,
      waitAfterUploadSeconds: (done - uploaded) / 1000,
      downloadSeconds: (downloaded - done) / 1000,
      resultBytes: bytes,
      peakRssMiB: rss,
      peakRssAfterUploadMiB: rssAfterUpload,
      peakRssAfterSigningMiB: rssAfterSigning,
    };
    if (bytes !== view!.resultBytes) throw new Error(`bench: result ${bytes} bytes, the batch says ${view!.resultBytes}`);
    if (view!.signed !== count) throw new Error(`bench: ${view!.signed} of ${count} signed`);
    process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`);
    if (out) writeFileSync(out, `${JSON.stringify(figures, null, 2)}\n`);
  } finally {
    for (const n of nodes) n.child.kill('SIGTERM');
    await Promise.all(nodes.map((n) => new Promise((r) => (n.child.exitCode !== null ? r(undefined) : n.child.once('exit', r)))));
    pg?.stop();
    await dir.cleanup();
  }
}

await main();
