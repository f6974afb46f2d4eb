/**
 * Issue 10 performance: the signing service under load, beside the raw signing
 * limit measured in the same run on the same machine.
 *
 * - A fresh store (a temporary KAKITOME_HOME) set up through the CLI: internal
 *   CA, tenant `bench` with an RSA-2048 and a P-256 identity, an API key.
 * - `kakitome serve` started through bin/kakitome.js as a child process (its log
 *   lines go to a file, as they would to a journal).
 * - HTTP: Debian's `wrk` (C, one thread, keep-alive connections) posts the same
 *   2 KB message/rfc822 to POST /api/v1/sign with a Lua script; while it runs the
 *   bench itself signs a few messages through the same port and `openssl cms
 *   -verify` checks them against the CA (signer and content).
 * - SMTP: a lean pipelining client (bench/smtp-load.ts client, a child
 *   process) submits the same message with AUTH to `serve --smtp`, which relays to
 *   a sink (smtp-load.ts sink, another child); openssl verifies what the sink kept.
 * - Raw limits: one-shot crypto.sign of 2 KB (RSA-2048 PKCS#1 v1.5, ECDSA P-256,
 *   SHA-256) on one core, and on every core at once (worker threads), in rounds
 *   alternating with the load runs.
 * - After the run the service is stopped (SIGTERM) and the audit log is counted:
 *   every message answered 200 or 250 has its api.sign or smtp.sign row.
 *
 * Figures per scenario: msg/s; the ratio to the raw limit × cores (the issue's
 * target: ≥ 75% for HTTP, ≥ 50% for SMTP); CPU time per message of the service,
 * of the load generator (and of the sink); the **CPU-time ratio**, raw CPU per
 * signature ÷ (CPU of every process of the scenario per message), which is what
 * the throughput ratio becomes on an otherwise idle machine whose cores the
 * scenario fills, and which stays meaningful on a loaded one.
 *
 *   npx node bench/serve-sign.ts [--seconds=10] [--rounds=3] [--connections=64]
 *       [--smtp-connections=32] [--only=http,smtp] [--keys=rsa2048,p256]
 *       [--workers=N] [--warmup=16] [--node-args='--single-threaded-gc'] [--floor] [--quick] [--out=FILE]
 *
 * --floor: each SMTP round also loads, with the same client and sink, smtp-server
 * with AUTH on as many threads relaying with our RelayPool, signing with the library
 * alone and bare (bench/smtp-floor.ts); and each HTTP round, in the same conditions, a bare node:http
 * server on as many threads (bench/serve-floor.ts: the body read, a fixed answer of
 * a signed answer's size) and the same server signing with the library alone
 * (signSplitMessage, a key and certificate made by openssl): the service's CPU per
 * message minus the latter's is what its own path adds (API key, From rules, audit
 * row, log line, counters), and raw ÷ (floor + client) is the most a node:http
 * service could reach with wrk on the same cores.
 *
 * Needs `wrk` (apt-get install wrk) and `openssl`. Not part of `npm test`.
 */
import { spawn, fork, execFileSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { createBenchDir, type BenchDir } from './harness/bench-data.ts';
import { median } from './harness/measure.ts';
import { runMeasured } from './harness/child-process.ts';
import { runWorkers } from './harness/run-workers.ts';
import { spawnFloor } from './harness/floor-threads.ts';
import { twoKilobyteEmail } from './messages.ts';

const BIN = fileURLToPath(new URL('../bin/kakitome.js', import.meta.url));
const SIGN_WORKER = new URL('./sign-worker.ts', import.meta.url);
const SMTP_LOAD = fileURLToPath(new URL('./smtp-load.ts', import.meta.url));
const CLOCK_TICK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

type KeyType = 'rsa2048' | 'p256';

interface Options {
  seconds: number;
  rounds: number;
  connections: number;
  smtpConnections: number;
  only: string[];
  keys: KeyType[];
  workers: string | undefined;
  /**
   * Seconds of HTTP load before the measured rounds, split between the key types (P-256
   * first: at its rate the code shared by both reaches V8's optimising compiler soonest).
   */
  warmup: number;
  /** Flags for the serve process's Node (e.g. --single-threaded-gc), to compare V8 settings in one run's conditions; the floor servers get them too. */
  nodeArgs: string[];
  /** HTTP rounds also measure bench/serve-floor.ts, SMTP rounds bench/smtp-floor.ts, bare and signing. */
  floor: boolean;
  out: string | undefined;
}

function parseOptions(argv: readonly string[]): Options {
  const arg = (name: string) => argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const quick = argv.includes('--quick');
  return {
    seconds: Number(arg('seconds') ?? (quick ? 3 : 10)),
    rounds: Number(arg('rounds') ?? (quick ? 1 : 3)),
    connections: Number(arg('connections') ?? 64),
    smtpConnections: Number(arg('smtp-connections') ?? 32),
    only: (arg('only') ?? 'http,smtp').split(','),
    keys: (arg('keys') ?? 'rsa2048,p256').split(',') as KeyType[],
    workers: arg('workers'),
    warmup: Number(arg('warmup') ?? (quick ? 2 : 16)),
    nodeArgs: (arg('node-args') ?? '').split(' ').filter(Boolean),
    floor: argv.includes('--floor'),
    out: arg('out'),
  };
}

// ------------------------------------------------------------------ the store

interface World {
  dir: BenchDir;
  env: NodeJS.ProcessEnv;
  root: string;
  key: string;
  /** The 2 KB message per identity key type, and its file. */
  messages: Record<KeyType, { from: string; bytes: Buffer; file: string }>;
}

function kakitome(env: NodeJS.ProcessEnv, ...args: string[]): string {
  return execFileSync(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] }).toString();
}

async function createWorld(): Promise<World> {
  const dir = await createBenchDir();
  mkdirSync(dir.file('user'));
  const env: NodeJS.ProcessEnv = { ...process.env, KAKITOME_HOME: dir.file('home'), HOME: dir.file('user'), KAKITOME_DATABASE_URL: '' };
  delete env.KAKITOME_MASTER_KEY;
  delete env.KAKITOME_MASTER_KEY_FILE;
  const root = dir.file('root.pem');
  kakitome(env, 'init');
  kakitome(env, 'ca', 'init', '--name', 'Bench Service CA', '--key-type', 'p256', '-o', root);
  kakitome(env, 'tenant', 'add', 'bench', '--domain', 'bench.example');
  const messages = {} as World['messages'];
  for (const type of ['rsa2048', 'p256'] as const) {
    const from = `${type}@bench.example`;
    kakitome(env, 'tenant', 'identity', 'bench', '--email', from, '--key-type', type);
    const bytes = twoKilobyteEmail(from);
    const file = dir.file(`${type}.eml`);
    writeFileSync(file, bytes);
    messages[type] = { from, bytes, file };
  }
  const key = (JSON.parse(kakitome(env, 'tenant', 'key', 'bench', '--scope', 'sign', '--json')) as { key: string }).key;
  return { dir, env, root, key, messages };
}

// ------------------------------------------------------------- raw limits

interface RawLimit {
  /** One core: signatures per second and CPU microseconds per signature. */
  oneCorePerSec: number;
  cpuMicrosPerSign: number;
  /** Every core at once (a worker thread each). */
  allCoresPerSec: number;
}

function rawOneCore(type: KeyType, ms: number): { perSec: number; cpuMicros: number } {
  const { privateKey } = type === 'rsa2048' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const msg = randomBytes(2048);
  for (let i = 0; i < 50; i++) sign('sha256', msg, privateKey);
  let n = 0;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  while (performance.now() - t0 < ms) {
    for (let i = 0; i < 4; i++) sign('sha256', msg, privateKey);
    n += 4;
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(c0);
  return { perSec: n / seconds, cpuMicros: (cpu.user + cpu.system) / n };
}

async function rawLimit(type: KeyType, ms: number): Promise<RawLimit> {
  const one = rawOneCore(type, ms);
  const all = await runWorkers(SIGN_WORKER, availableParallelism(), { raw: type, ms, warmupMs: 200 });
  return { oneCorePerSec: one.perSec, cpuMicrosPerSign: one.cpuMicros, allCoresPerSec: all };
}

// ------------------------------------------------------------ the service

/** CPU seconds (user + system) of a process and all its descendants still running. */
function treeCpuSeconds(pid: number): number {
  const stats = new Map<number, { ppid: number; ticks: number }>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const text = readFileSync(`/proc/${name}/stat`, 'latin1');
      const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
      stats.set(Number(name), { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) });
    } catch {
      // gone meanwhile
    }
  }
  let ticks = 0;
  const todo = [pid];
  while (todo.length) {
    const p = todo.pop()!;
    ticks += stats.get(p)?.ticks ?? 0;
    for (const [child, s] of stats) if (s.ppid === p) todo.push(child);
  }
  return ticks / CLOCK_TICK;
}

interface Service {
  child: ChildProcess;
  http?: string;
  smtpPort?: number;
  log: string;
  stop(): Promise<number | null>;
}

async function startService(world: World, args: string[], listeners: string[], nodeArgs: string[] = []): Promise<Service> {
  const log = world.dir.file(`serve-${Date.now()}.log`);
  const fd = openSync(log, 'w');
  const child = spawn(process.execPath, [...nodeArgs, BIN, 'serve', ...args], { env: world.env, stdio: ['ignore', fd, 'pipe'] });
  closeSync(fd);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const service: Service = {
    child, log,
    stop: async () => {
      child.kill('SIGTERM');
      return exited;
    },
  };
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`serve exited ${child.exitCode}: ${stderr}`);
    const lines = existsSync(log) ? readFileSync(log, 'utf8').split('\n') : [];
    for (const l of lines) {
      if (!l.includes('"listening"')) continue;
      const e = JSON.parse(l) as { listener?: string; url?: string; address?: string };
      if (e.listener === 'http') service.http = e.url;
      if (e.listener === 'smtp') service.smtpPort = Number(e.address!.split(':').pop());
    }
    if ((!listeners.includes('http') || service.http) && (!listeners.includes('smtp') || service.smtpPort)) return service;
    if (Date.now() > deadline) throw new Error(`serve did not listen within 120 s: ${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Checks a signed message with openssl against the bench CA: the signer is the identity of `from`, the content comes back. */
function opensslVerify(world: World, signed: Buffer, from: string): void {
  const file = world.dir.file(`check-${randomBytes(4).toString('hex')}.eml`);
  const signer = `${file}.signer.pem`;
  writeFileSync(file, signed);
  const content = execFileSync('openssl', ['cms', '-verify', '-in', file, '-CAfile', world.root, '-purpose', 'smimesign', '-signer', signer], { stdio: ['ignore', 'pipe', 'pipe'] }).toString('latin1');
  if (!content.includes('please find below the notes from the review')) throw new Error('openssl cms: the signed content is not the message sent');
  const subject = execFileSync('openssl', ['x509', '-in', signer, '-noout', '-ext', 'subjectAltName'], { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
  if (!subject.includes(from)) throw new Error(`openssl cms: signed by ${subject.trim()}, not ${from}`);
}

// ------------------------------------------------------------------- HTTP

interface LoadFigures {
  perSec: number;
  messages: number;
  seconds: number;
  serverCpuMicros: number;
  clientCpuMicros: number;
  sinkCpuMicros?: number;
  verified: number;
}

const WRK_SCRIPT = `
wrk.method = "POST"
local f = io.open(os.getenv("BENCH_MESSAGE"), "rb")
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "message/rfc822"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_KEY")
`;

/** `check`: sign a few messages through the port beside wrk and have openssl verify them (not for the floor servers). */
async function httpLoad(world: World, service: Pick<Service, 'child' | 'http'>, type: KeyType, o: Options, check = true): Promise<LoadFigures> {
  const script = world.dir.file('post.lua');
  writeFileSync(script, WRK_SCRIPT);
  const url = new URL('/api/v1/sign', service.http!).href;
  const { bytes, file, from } = world.messages[type];
  const cpu0 = treeCpuSeconds(service.child.pid!);
  const wrk = runMeasured('wrk', ['-t1', `-c${o.connections}`, `-d${o.seconds}s`, '--timeout', '30s', '-s', script, url], { env: { ...process.env, BENCH_MESSAGE: file, BENCH_KEY: world.key } });
  // A sample of what the service answers under load, checked by openssl.
  let verified = 0;
  for (let i = 0; i < (check ? 3 : 0); i++) {
    await new Promise((r) => setTimeout(r, (o.seconds * 1000) / 4));
    const r = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${world.key}`, 'content-type': 'message/rfc822' }, body: bytes });
    const signed = Buffer.from(await r.arrayBuffer());
    if (r.status !== 200) throw new Error(`POST /api/v1/sign under load: ${r.status} ${signed.toString()}`);
    opensslVerify(world, signed, from);
    verified++;
  }
  const run = await wrk;
  const cpu1 = treeCpuSeconds(service.child.pid!);
  if (run.exitCode !== 0) throw new Error(`wrk exited ${run.exitCode}: ${run.stderr}`);
  const done = /(\d+) requests in ([\d.]+)(m?s)/.exec(run.stdout);
  if (!done) throw new Error(`wrk: no summary in ${run.stdout}`);
  if (/Non-2xx or 3xx responses: \d+/.test(run.stdout) || /Socket errors/.test(run.stdout)) throw new Error(`wrk saw failures:\n${run.stdout}`);
  const messages = Number(done[1]);
  const seconds = Number(done[2]) / (done[3] === 'ms' ? 1000 : 1);
  return {
    perSec: messages / seconds, messages, seconds, verified,
    serverCpuMicros: ((cpu1 - cpu0) * 1e6) / (messages + verified),
    clientCpuMicros: ((run.userSeconds + run.systemSeconds) * 1e6) / messages,
  };
}

// ------------------------------------------------------------------ floor

const FLOOR = fileURLToPath(new URL('./serve-floor.ts', import.meta.url));

/** bench/serve-floor.ts on as many threads as the service, warmed up with `warmSeconds` of wrk. */
async function startFloor(world: World, args: string[], type: KeyType, o: Options, warmSeconds: number): Promise<Pick<Service, 'child' | 'http' | 'stop'>> {
  // --workers 0 (the service on its main thread alone) is one thread here.
  const threads = o.workers === undefined ? [] : [`--threads=${Math.max(1, Number(o.workers))}`];
  const { child, port, stop } = await spawnFloor(FLOOR, [...args, ...threads], o.nodeArgs);
  const floor = { child, http: `http://127.0.0.1:${port}/`, stop };
  await httpLoad(world, floor, type, { ...o, seconds: warmSeconds }, false);
  return floor;
}

/** A key and a self-signed certificate for `type` made by openssl, for the floor's signing. */
function floorIdentity(world: World, type: KeyType): { key: string; cert: string } {
  const key = world.dir.file(`floor-${type}.key`);
  const cert = world.dir.file(`floor-${type}.crt`);
  const algorithm = type === 'rsa2048' ? ['-newkey', 'rsa:2048'] : ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1'];
  execFileSync('openssl', ['req', '-x509', ...algorithm, '-nodes', '-keyout', key, '-out', cert, '-subj', `/CN=${type}`, '-addext', `subjectAltName=email:${world.messages[type].from}`, '-days', '2'], { stdio: 'ignore' });
  return { key, cert };
}

// ------------------------------------------------------------------- SMTP

interface Sink {
  child: ChildProcess;
  port: number;
  dir: string;
  count(): Promise<number>;
  stop(): Promise<void>;
}

function reply<T>(child: ChildProcess): Promise<T> {
  return new Promise((r, reject) => {
    // Each reply takes its 'exit' listener off again: a long run asks the sink many times.
    const onExit = (code: number | null) => reject(new Error(`smtp-load exited ${code}`));
    child.once('message', (m) => {
      child.off('exit', onExit);
      r(m as T);
    });
    child.once('exit', onExit);
  });
}

async function startSink(world: World): Promise<Sink> {
  const dir = world.dir.file('relayed');
  mkdirSync(dir, { recursive: true });
  const child = fork(SMTP_LOAD, ['sink', `--dir=${dir}`, '--keep-every=997'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const { port } = await reply<{ port: number }>(child);
  return {
    child, port, dir,
    count: async () => {
      const r = reply<{ received: number }>(child);
      child.send('count');
      return (await r).received;
    },
    stop: async () => {
      const gone = new Promise((r) => child.once('exit', r));
      child.send('stop');
      await gone;
    },
  };
}

const SMTP_FLOOR = fileURLToPath(new URL('./smtp-floor.ts', import.meta.url));

/** bench/smtp-floor.ts on as many threads as the service, relaying to the bench's sink, warmed up with `warmSeconds` of the SMTP client. */
async function startSmtpFloor(world: World, sink: Sink, args: string[], type: KeyType, o: Options, warmSeconds: number): Promise<Pick<Service, 'child' | 'smtpPort' | 'stop'>> {
  const threads = o.workers === undefined ? [] : [`--threads=${Math.max(1, Number(o.workers))}`];
  const { child, port, stop } = await spawnFloor(SMTP_FLOOR, [...args, `--relay=127.0.0.1:${sink.port}`, '--user=bench', `--pass=${world.key}`, ...threads], o.nodeArgs);
  const floor = { child, smtpPort: port, stop };
  await smtpLoad(world, floor, sink, type, { ...o, seconds: warmSeconds }, false);
  return floor;
}

/** `check`: openssl verifies the sink's samples against the bench CA (not for the floor servers, whose certificates are self-signed). */
async function smtpLoad(world: World, service: Pick<Service, 'child' | 'smtpPort'>, sink: Sink, type: KeyType, o: Options, check = true): Promise<LoadFigures> {
  const { file, from } = world.messages[type];
  const before = await sink.count();
  const kept = new Set(readdirSync(sink.dir));
  const cpu0 = treeCpuSeconds(service.child.pid!);
  const sinkCpu0 = treeCpuSeconds(sink.child.pid!);
  const client = fork(SMTP_LOAD, ['client', `--port=${service.smtpPort}`, '--user=bench', `--pass=${world.key}`, `--from=${from}`, `--message=${file}`, `--connections=${o.smtpConnections}`, `--seconds=${o.seconds}`], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const r = await reply<{ sent: number; failed: number; seconds: number; cpuMicros: number; errors: Record<string, number> }>(client);
  const cpu1 = treeCpuSeconds(service.child.pid!);
  const sinkCpu1 = treeCpuSeconds(sink.child.pid!);
  if (r.failed) throw new Error(`SMTP submission: ${r.failed} messages failed: ${JSON.stringify(r.errors)}`);
  const relayed = (await sink.count()) - before;
  if (relayed !== r.sent) throw new Error(`SMTP submission: ${r.sent} accepted with 250, the sink got ${relayed}`);
  const samples = check ? readdirSync(sink.dir).filter((f) => !kept.has(f)) : [];
  for (const f of samples) opensslVerify(world, readFileSync(join(sink.dir, f)), from);
  if (check && !samples.length && r.sent > 997) throw new Error('SMTP submission: the sink kept no sample');
  return {
    perSec: r.sent / r.seconds, messages: r.sent, seconds: r.seconds, verified: samples.length,
    serverCpuMicros: ((cpu1 - cpu0) * 1e6) / r.sent,
    clientCpuMicros: r.cpuMicros / r.sent,
    sinkCpuMicros: ((sinkCpu1 - sinkCpu0) * 1e6) / r.sent,
  };
}

// ------------------------------------------------------------------ the run

interface ScenarioFigures {
  scenario: string;
  keyType: KeyType;
  /** Median over the rounds of each figure. */
  perSec: number;
  rawOneCorePerSec: number;
  rawAllCoresPerSec: number;
  /** perSec ÷ rawAllCoresPerSec: the issue's ratio. */
  ratio: number;
  serverCpuMicros: number;
  clientCpuMicros: number;
  sinkCpuMicros?: number;
  rawCpuMicros: number;
  /** rawCpuMicros ÷ (server + client + sink CPU per message). */
  cpuRatio: number;
  /** rawCpuMicros ÷ server CPU per message: the share of the service's CPU that is the signature. */
  serverEfficiency: number;
  rounds: Array<{ perSec: number; rawAllCoresPerSec: number; serverCpuMicros: number }>;
  verified: number;
}

export interface ServeBenchFigures {
  date: string;
  cores: number;
  connections: number;
  smtpConnections: number;
  seconds: number;
  load: { before: number; after: number };
  scenarios: ScenarioFigures[];
  audit: Record<string, number>;
  answered: Record<string, number>;
  /** wrk runs: each may leave up to `connections` requests answered after it stopped counting. */
  httpRuns: number;
  /** --node-args given to the serve process (none: Node's defaults). */
  nodeArgs: string[];
  /** Seconds of HTTP load before the measured rounds. */
  warmup: number;
}

/** --floor's scenarios: bench/serve-floor.ts signing with the library alone, and answering without signing; bench/smtp-floor.ts likewise, relaying. */
const FLOOR_SIGN = 'floor http+sign';
const FLOOR_BARE = 'floor http bare';
const SMTP_FLOOR_SIGN = 'floor smtp+sign';
const SMTP_FLOOR_BARE = 'floor smtp bare';

function summarise(scenario: string, keyType: KeyType, runs: Array<{ load: LoadFigures; raw: RawLimit }>): ScenarioFigures {
  const m = (f: (r: { load: LoadFigures; raw: RawLimit }) => number) => median(runs.map(f));
  const perSec = m((r) => r.load.perSec);
  const rawAll = m((r) => r.raw.allCoresPerSec);
  const rawCpu = m((r) => r.raw.cpuMicrosPerSign);
  const server = m((r) => r.load.serverCpuMicros);
  const client = m((r) => r.load.clientCpuMicros);
  const sink = runs[0]!.load.sinkCpuMicros === undefined ? undefined : m((r) => r.load.sinkCpuMicros!);
  return {
    scenario, keyType, perSec, rawOneCorePerSec: m((r) => r.raw.oneCorePerSec), rawAllCoresPerSec: rawAll, ratio: perSec / rawAll,
    serverCpuMicros: server, clientCpuMicros: client, ...(sink === undefined ? {} : { sinkCpuMicros: sink }), rawCpuMicros: rawCpu,
    cpuRatio: rawCpu / (server + client + (sink ?? 0)), serverEfficiency: rawCpu / server,
    rounds: runs.map((r) => ({ perSec: r.load.perSec, rawAllCoresPerSec: r.raw.allCoresPerSec, serverCpuMicros: r.load.serverCpuMicros })),
    verified: runs.reduce((s, r) => s + r.load.verified, 0),
  };
}

async function countAudit(world: World): Promise<Record<string, number>> {
  const { DatabaseSync } = await import('node:sqlite');
  const db = new DatabaseSync(join(world.env.KAKITOME_HOME!, 'kakitome.db'), { readOnly: true });
  try {
    const rows = db.prepare('SELECT action, COUNT(*) AS n FROM audit_log GROUP BY action').all() as Array<{ action: string; n: number }>;
    return Object.fromEntries(rows.map((r) => [r.action, Number(r.n)]));
  } finally {
    db.close();
  }
}

export async function measureServeSign(o: Options): Promise<ServeBenchFigures> {
  const load0 = loadavg()[0]!;
  const world = await createWorld();
  const http = o.only.includes('http');
  const smtp = o.only.includes('smtp');
  const sink = smtp ? await startSink(world) : undefined;
  const args = [
    ...(http ? ['--http', '127.0.0.1:0'] : []),
    ...(smtp ? ['--smtp', '127.0.0.1:0', '--relay', `127.0.0.1:${sink!.port}`] : []),
    ...(o.workers ? ['--workers', o.workers] : []),
  ];
  const service = await startService(world, args, [...(http ? ['http'] : []), ...(smtp ? ['smtp'] : [])], o.nodeArgs);
  const scenarios: ScenarioFigures[] = [];
  const answered: Record<string, number> = { 'api.sign': 0, 'smtp.sign': 0 };
  let httpRuns = 0;
  const floors: Array<Pick<Service, 'child' | 'http' | 'stop'>> = [];
  try {
    // Warm-up: JIT, caches, connections. Each serving thread compiles its hot functions
    // itself, on V8's helper threads: with 2 s of RSA-2048 (the warm-up until 2026-12-07)
    // they were still compiling through the first 10-20 s of load (about 90% of their
    // samples in TurboFan and Maglev, 40-90 µs of CPU per RSA-2048 request, then 1-6 µs:
    // docs/performance.md, "Session 9"), so the first rounds measured the compiler.
    if (http) {
      const order = (['p256', 'rsa2048'] as const).filter((t) => o.keys.includes(t));
      for (const type of order) {
        const f = await httpLoad(world, service, type, { ...o, seconds: Math.max(1, Math.round(o.warmup / order.length)) });
        answered['api.sign']! += f.messages + f.verified;
        httpRuns++;
      }
    }
    // The submission port's own code (smtp-server, the relay client) is compiled under its
    // own load: without this an --only=smtp run had no warm-up at all. After HTTP's warm-up
    // the signing path is compiled already, so 2 s of each key is enough there.
    if (smtp) {
      const order = (['p256', 'rsa2048'] as const).filter((t) => o.keys.includes(t));
      for (const type of order) {
        const f = await smtpLoad(world, service, sink!, type, { ...o, seconds: http ? 2 : Math.max(1, Math.round(o.warmup / order.length)) });
        answered['smtp.sign']! += f.messages;
      }
    }
    for (const type of o.keys) {
      for (const [name, enabled] of [['http', http], ['smtp', smtp]] as const) {
        if (!enabled) continue;
        const runs: Array<{ load: LoadFigures; raw: RawLimit }> = [];
        // --floor: the same load on node:http with the library's signing alone, and bare, in each round.
        const floorRuns = { sign: [] as Array<{ load: LoadFigures; raw: RawLimit }>, bare: [] as Array<{ load: LoadFigures; raw: RawLimit }> };
        if (name === 'http' && o.floor) {
          const answerBytes = (await (await fetch(new URL('/api/v1/sign', service.http!), { method: 'POST', headers: { authorization: `Bearer ${world.key}`, 'content-type': 'message/rfc822' }, body: world.messages[type].bytes })).arrayBuffer()).byteLength;
          answered['api.sign']!++;
          const id = floorIdentity(world, type);
          floors.push(await startFloor(world, ['--mode=sign', `--key=${id.key}`, `--cert=${id.cert}`, `--chain=${world.root}`], type, o, Math.max(2, o.warmup / 2)));
          floors.push(await startFloor(world, ['--mode=bare', `--answer-bytes=${answerBytes}`], type, o, 2));
        }
        const smtpFloors: Array<Pick<Service, 'child' | 'smtpPort' | 'stop'>> = [];
        if (name === 'smtp' && o.floor) {
          const id = floorIdentity(world, type);
          const identity = [`--key=${id.key}`, `--cert=${id.cert}`, `--chain=${world.root}`];
          smtpFloors.push(await startSmtpFloor(world, sink!, ['--mode=sign', ...identity], type, o, Math.max(2, o.warmup / 2)));
          smtpFloors.push(await startSmtpFloor(world, sink!, ['--mode=bare', ...identity], type, o, 2));
          floors.push(...smtpFloors);
        }
        const [floorSign, floorBare] = name === 'http' && o.floor ? floors.slice(-2) : [];
        const [smtpFloorSign, smtpFloorBare] = smtpFloors;
        for (let r = 0; r < o.rounds; r++) {
          const raw = await rawLimit(type, Math.min(2000, o.seconds * 300));
          const load = name === 'http' ? await httpLoad(world, service, type, o) : await smtpLoad(world, service, sink!, type, o);
          answered[name === 'http' ? 'api.sign' : 'smtp.sign']! += load.messages + (name === 'http' ? load.verified : 0);
          if (name === 'http') httpRuns++;
          runs.push({ load, raw });
          process.stderr.write(`${name} ${type} round ${r + 1}: ${load.perSec.toFixed(0)} msg/s, raw x cores ${raw.allCoresPerSec.toFixed(0)}/s, service ${load.serverCpuMicros.toFixed(0)} µs CPU/msg\n`);
          if (floorSign && floorBare) {
            floorRuns.sign.push({ load: await httpLoad(world, floorSign, type, o, false), raw });
            floorRuns.bare.push({ load: await httpLoad(world, floorBare, type, o, false), raw });
            process.stderr.write(`  floor ${type} round ${r + 1}: node:http + signMessage ${floorRuns.sign.at(-1)!.load.serverCpuMicros.toFixed(0)} µs CPU/msg, bare ${floorRuns.bare.at(-1)!.load.serverCpuMicros.toFixed(0)} µs\n`);
          }
          if (smtpFloorSign && smtpFloorBare) {
            floorRuns.sign.push({ load: await smtpLoad(world, smtpFloorSign, sink!, type, o, false), raw });
            floorRuns.bare.push({ load: await smtpLoad(world, smtpFloorBare, sink!, type, o, false), raw });
            process.stderr.write(`  floor ${type} round ${r + 1}: smtp-server + signMessage + relay ${floorRuns.sign.at(-1)!.load.serverCpuMicros.toFixed(0)} µs CPU/msg, bare ${floorRuns.bare.at(-1)!.load.serverCpuMicros.toFixed(0)} µs\n`);
          }
        }
        scenarios.push(summarise(name === 'http' ? 'POST /api/v1/sign' : 'SMTP submission', type, runs));
        if (floorRuns.sign.length) {
          const [signName, bareName] = name === 'http' ? [FLOOR_SIGN, FLOOR_BARE] : [SMTP_FLOOR_SIGN, SMTP_FLOOR_BARE];
          scenarios.push(summarise(signName, type, floorRuns.sign), summarise(bareName, type, floorRuns.bare));
        }
      }
    }
  } finally {
    for (const f of floors) await f.stop();
    const code = await service.stop();
    await sink?.stop();
    if (code !== 0) throw new Error(`serve exited ${code} after SIGTERM`);
  }
  const audit = await countAudit(world);
  await world.dir.cleanup();
  return { date: new Date().toISOString(), cores: availableParallelism(), connections: o.connections, smtpConnections: o.smtpConnections, seconds: o.seconds, load: { before: load0, after: loadavg()[0]! }, scenarios, audit, answered, httpRuns, nodeArgs: o.nodeArgs, warmup: o.warmup };
}

/**
 * Every message answered 200 (wrk counts those it finished; a few more may have
 * been answered after wrk stopped reading) or 250 must have its audit row.
 */
function checkAudit(f: ServeBenchFigures): string[] {
  const problems: string[] = [];
  for (const action of ['api.sign', 'smtp.sign']) {
    const rows = f.audit[action] ?? 0;
    const answered = f.answered[action] ?? 0;
    const slack = action === 'api.sign' ? f.connections * f.httpRuns : 0;
    if (rows < answered || rows > answered + slack) problems.push(`${action}: ${rows} audit rows for ${answered} messages answered`);
  }
  return problems;
}

function report(f: ServeBenchFigures): string {
  const pct = (x: number) => `${(100 * x).toFixed(0)}%`;
  const lines = [
    `kakitome serve: 2 KB messages, ${f.cores} cores, ${f.connections} HTTP connections (wrk), ${f.smtpConnections} SMTP connections (bench/smtp-load.ts), ${f.seconds} s per run after ${f.warmup} s of warm-up, load ${f.load.before.toFixed(1)} -> ${f.load.after.toFixed(1)}${f.nodeArgs.length ? `, serve with ${f.nodeArgs.join(' ')}` : ''}`,
    `${'scenario'.padEnd(28)} ${'msg/s'.padStart(7)} ${'raw x cores'.padStart(11)} ${'ratio'.padStart(6)}  ${'service'.padStart(8)} ${'client'.padStart(7)} ${'sink'.padStart(6)} ${'raw'.padStart(6)}  ${'CPU ratio'.padStart(9)} ${'raw/service'.padStart(11)}  target`,
  ];
  for (const s of f.scenarios) {
    const target = s.scenario.startsWith('SMTP') ? 0.5 : 0.75;
    const floor = s.scenario.startsWith('floor');
    lines.push(
      `${`${s.scenario} ${s.keyType}`.padEnd(28)} ${s.perSec.toFixed(0).padStart(7)} ${s.rawAllCoresPerSec.toFixed(0).padStart(11)} ${pct(s.ratio).padStart(6)}  ` +
      `${`${s.serverCpuMicros.toFixed(0)}µs`.padStart(8)} ${`${s.clientCpuMicros.toFixed(0)}µs`.padStart(7)} ${(s.sinkCpuMicros === undefined ? '' : `${s.sinkCpuMicros.toFixed(0)}µs`).padStart(6)} ${`${s.rawCpuMicros.toFixed(0)}µs`.padStart(6)}  ${pct(s.cpuRatio).padStart(9)} ${pct(s.serverEfficiency).padStart(11)}  ${floor ? '(floor)' : `≥ ${pct(target)}`}`,
    );
  }
  lines.push('(service, client, sink: CPU time per message; raw: CPU per raw signature on one core; CPU ratio: raw ÷ (service + client + sink); raw/service: without the load generators)');
  if (f.scenarios.some((s) => s.scenario.startsWith('floor http'))) lines.push('(floor http+sign: node:http on as many threads, the body signed by signSplitMessage alone; floor http bare: a fixed answer of the same size; bench/serve-floor.ts)');
  if (f.scenarios.some((s) => s.scenario.startsWith('floor smtp'))) lines.push('(floor smtp+sign: smtp-server with AUTH on as many threads, each message signed by signSplitMessage alone and relayed by our RelayPool to the same sink; floor smtp bare: one signed copy relayed for every message; bench/smtp-floor.ts)');
  lines.push(`audit rows: ${Object.entries(f.audit).filter(([a]) => /sign/.test(a)).map(([a, n]) => `${a} ${n}`).join(', ')}; answered: ${Object.entries(f.answered).map(([a, n]) => `${a} ${n}`).join(', ')}; openssl verified ${f.scenarios.reduce((s, x) => s + x.verified, 0)} samples`);
  return lines.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const o = parseOptions(process.argv.slice(2));
  const f = await measureServeSign(o);
  console.log(report(f));
  const problems = checkAudit(f);
  for (const p of problems) console.error(`AUDIT: ${p}`);
  if (o.out) writeFileSync(resolve(o.out), `${JSON.stringify(f, null, 2)}\n`);
  if (problems.length) process.exitCode = 1;
}
