/**
 * Issue 13 performance: 2 KB messages through a private Postfix (Debian's, on
 * loopback, test/gateway/postfix-instance.ts) with `kakitome gateway` as its
 * after-queue content filter, beside the same Postfix relaying without the filter,
 * measured in the same run on the same machine:
 *
 * - **with the filter**: submitted to Postfix's smtpd, queued, handed to the
 *   gateway (a separate `kakitome gateway` process, as deployed), signed (outbound)
 *   or decrypted and verified (inbound), reinjected, queued again, relayed to the
 *   sink;
 * - **without**: submitted to a listener configured like the first but without the
 *   content filter (the same Postfix, stock smtpd settings): one queue pass, relayed
 *   to the same sink. Until session 10 this was the reinjection listener, whose
 *   settings are the filter path's own second pass.
 * Throughput is messages delivered to the sink per second, the clients keeping
 * `--concurrency` messages in flight. The target (issue 13): with the filter ≥ 45%
 * of without (the after-queue design itself costs about 2x: two queue passes).
 * Then, at half the filtered throughput, the latency the gateway adds: each
 * message's time inside the gateway (from its end of DATA to the next hop's 250),
 * from the gateway's own log line (`ms`); target p99 < 20 ms. The clients, the sink
 * and Postfix share the machine with the gateway in both configurations.
 *
 *   npx node bench/gateway.ts [--count=N] [--concurrency=C] [--workers=N] [--only=outbound|inbound] [--baselines=1|2] [--warmup=N] [--lmtp] [--design=after-queue|before-queue] [--no-speed-adjust] [--node-arg=ARG]... [--quick] [--out=FILE]
 *
 * `--design=before-queue`: the gateway is Postfix's before-queue filter instead
 * (`smtpd_proxy_filter` on the submission listener, docs/gateway.md "Before-queue
 * (proxy) deployment"): the submission smtpd proxies each client session to the
 * gateway, which relays to the after-filter listener, and the message is queued once.
 * The baseline is the same listener without the proxy. With it, `clientWait` is each
 * message's time as its SMTP client saw it at half load (MAIL FROM to the reply to
 * the end of DATA): the client waits for the gateway. The gateway's own time is not
 * what it adds here: it includes the after-filter smtpd's queue file and fsync, which
 * Postfix alone pays too before its 250. So the same clients also send at the same
 * rate through Postfix alone, in slices of about 2 s alternating with the gateway's
 * (`clientWaitWithoutFilter`), and `addedClientWait` is the
 * difference, quantile by quantile: the before-queue gateway-added latency (since
 * session 14; before, the gateway's own time was reported as it). `--no-speed-adjust` leaves
 * out `smtpd_proxy_options=speed_adjust` (Postfix then connects to the gateway at
 * MAIL FROM instead of once the whole message is in).
 *
 * `--only` measures one direction (the other is absent from the figures).
 * `--baselines=2` (the default) measures Postfix without the filter twice, just before
 * and just after the run with it, and takes the ratio against their mean: the
 * denominator moved by 39% between two quiet sessions (262 and 364 msg/s outbound),
 * and the two runs show how much it moves within one (`withoutFilterRuns`, and the
 * spread in the report). `--baselines=1`: once, before, as until session 9.
 * `--warmup=N` messages through the gateway before each direction's measured runs
 * (default 2,000; 200 with --quick). V8 compiles the gateway's hot functions on its
 * helper threads for the first 15-20 s of load (session 9's perf profile: those
 * threads 56-59% in the optimising compiler; 253 µs a message of them over a run of
 * 1,500 messages after the old 200-message warm-up, 164 µs over 4,500): a long-running
 * gateway pays that once, so the measured runs start after it.
 * `--workers` is passed to the gateway (its crypto worker threads; default one per CPU, 0: main thread).
 * `--node-arg` is given to the gateway's node (repeatable), e.g. `--node-arg=--cpu-prof
 * --node-arg=--cpu-prof-dir=/tmp/prof` profiles it, its worker threads too.
 * The gateway's CPU time (user + system, all its threads, from /proc) is read before
 * and after each measured run: `cpuPerMessageUs`, the figure that holds under load;
 * `systemCpuPerMessageUs`, its part in the kernel, and `contextSwitchesPerMessage`
 * (all threads, /proc status) and `ioCallsPerMessage` (read and write calls, /proc
 * io), which count what the socket writes, the waits and the hops between threads cost.
 * `cpuByProcessUs`: Postfix's CPU per message by daemon (bench/harness/postfix-cpu.ts),
 * the bench's own (clients, sink) and the gateway's, without and with the filter;
 * `cpuRatio`, all of it without / with; `postfixDelaysMs`, Postfix's delays=a/b/c/d
 * by next hop; `fullLoad`, the gateway's own time in the run at full load.
 *
 * Needs root (Postfix's queue) and Debian's postfix package (.ci/run installs it).
 * Not part of `npm test`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { encryptMessage } from '../src/smime/encrypt-message.ts';
import { createWorld, openWorldStore, type GatewayWorld } from '../test/gateway/gateway-fixture.ts';
import { PostfixInstance, freePort, waitForPort } from '../test/gateway/postfix-instance.ts';
import { twoKilobyteEmail } from './messages.ts';
import { PostfixCpu } from './harness/postfix-cpu.ts';

const BIN = fileURLToPath(new URL('../bin/kakitome.js', import.meta.url));

export interface Options {
  count: number;
  concurrency: number;
  out: string | undefined;
  /** The gateway's --workers (undefined: its default). */
  workers: string | undefined;
  /** Arguments for the gateway's node (--cpu-prof...). */
  nodeArgs: string[];
  /** One direction only (undefined: both). */
  only: 'outbound' | 'inbound' | undefined;
  /** Runs without the filter: 1 (before the filtered run) or 2 (before and after it). */
  baselines: 1 | 2;
  /** Messages through the gateway before each direction is measured. */
  warmup: number;
  /** The filter transport speaks LMTP (`--lmtp`, docs/gateway.md's recommended form) instead of SMTP. */
  lmtp: boolean;
  /** After-queue content filter (the default) or before-queue proxy filter (`smtpd_proxy_filter`). */
  design: 'after-queue' | 'before-queue';
  /** Before-queue: without smtpd_proxy_options=speed_adjust. */
  noSpeedAdjust: boolean;
}

function parseOptions(argv: readonly string[]): Options {
  const arg = (name: string) => argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const quick = argv.includes('--quick');
  return {
    count: Number(arg('count') ?? (quick ? 600 : 4000)),
    // The filter path's concurrency is the kakitome transport's 10 delivery agents whatever this is; 8 keeps Postfix's queue fed.
    concurrency: Number(arg('concurrency') ?? 8),
    out: arg('out'),
    workers: arg('workers'),
    nodeArgs: argv.filter((a) => a.startsWith('--node-arg=')).map((a) => a.slice('--node-arg='.length)),
    only: onlyOption(arg('only')),
    baselines: baselinesOption(arg('baselines')),
    warmup: warmupOption(arg('warmup') ?? (quick ? '200' : '2000')),
    lmtp: argv.includes('--lmtp'),
    design: designOption(arg('design'), argv.includes('--lmtp')),
    noSpeedAdjust: argv.includes('--no-speed-adjust'),
  };
}

function designOption(v: string | undefined, lmtp: boolean): Options['design'] {
  if (v !== undefined && v !== 'after-queue' && v !== 'before-queue') throw new Error(`--design takes after-queue or before-queue, not ${v}`);
  // Postfix's smtpd speaks SMTP to a proxy filter: LMTP is the after-queue transport's.
  if (v === 'before-queue' && lmtp) throw new Error('--lmtp is for the after-queue design only (smtpd_proxy_filter speaks SMTP)');
  return v ?? 'after-queue';
}

function baselinesOption(v: string | undefined): Options['baselines'] {
  if (v === undefined || v === '2') return 2;
  if (v === '1') return 1;
  throw new Error(`--baselines takes 1 or 2, not ${v}`);
}

function warmupOption(v: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`--warmup takes a number of messages, not ${v}`);
  return n;
}

function onlyOption(v: string | undefined): Options['only'] {
  if (v === undefined || v === 'outbound' || v === 'inbound') return v;
  throw new Error(`--only takes outbound or inbound, not ${v}`);
}

/** Counts what reaches the next hop, and when. */
export class CountingSink {
  received = 0;
  #waiters: Array<{ n: number; resolve: () => void }> = [];
  readonly server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['AUTH', 'STARTTLS'],
    disableReverseLookup: true,
    logger: false,
    onData: (stream, _session, callback) => {
      stream.resume();
      stream.on('end', () => {
        this.received++;
        this.#waiters = this.#waiters.filter((w) => (w.n <= this.received ? (w.resolve(), false) : true));
        callback(null, 'Ok');
      });
    },
  });
  port = 0;

  async start(): Promise<this> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    this.port = (this.server.server.address() as AddressInfo).port;
    return this;
  }

  until(n: number, timeoutMs: number): Promise<void> {
    if (this.received >= n) return Promise.resolve();
    return new Promise((resolvePromise, reject) => {
      const t = setTimeout(() => reject(new Error(`the sink got ${this.received} of ${n} messages in ${timeoutMs} ms`)), timeoutMs);
      this.#waiters.push({ n, resolve: () => { clearTimeout(t); resolvePromise(); } });
    });
  }

  stop(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }
}

/** One SMTP client connection sending messages one after another. */
function connectClient(port: number): Promise<SMTPConnection> {
  return new Promise((resolvePromise, reject) => {
    const c = new SMTPConnection({ host: '127.0.0.1', port, ignoreTLS: true, logger: false, socketTimeout: 120_000, greetingTimeout: 60_000 });
    c.once('error', reject);
    c.connect((err?: Error | null) => (err ? reject(err) : resolvePromise(c)));
  });
}

function send(c: SMTPConnection, from: string, to: string, message: Buffer): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    c.send({ from, to: [to] }, message, ((e: Error | null) => (e ? reject(e) : resolvePromise())) as never);
  });
}

/**
 * Submits `count` messages to `port` with `concurrency` connections, each sending one
 * after another (or paced to `rate` messages/s in all), and waits until the sink has
 * them all. Returns delivered messages per second, first submission to last delivery.
 */
async function drive(port: number, sink: CountingSink, o: { count: number; concurrency: number; from: string; to: string; message: Buffer; rate?: number }): Promise<{ perSecond: number; seconds: number; sendMs: number[] }> {
  const sendMs: number[] = [];
  const target = sink.received + o.count;
  const clients = await Promise.all(Array.from({ length: o.concurrency }, () => connectClient(port)));
  let next = 0;
  const t0 = performance.now();
  await Promise.all(clients.map(async (c) => {
    for (;;) {
      const i = next++;
      if (i >= o.count) break;
      if (o.rate) {
        const due = t0 + (i * 1000) / o.rate;
        const wait = due - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
      const sent = performance.now();
      await send(c, o.from, o.to, o.message);
      sendMs.push(performance.now() - sent);
    }
    c.quit();
  }));
  await sink.until(target, 600_000);
  const seconds = (performance.now() - t0) / 1000;
  return { perSecond: o.count / seconds, seconds, sendMs };
}

export interface GatewayProcess {
  child: ChildProcess;
  /** Of every message line the gateway logged so far, in order: `ms`, and `copiesMs` (the part of `ms` until every copy was made). */
  messages(): { ms: number[]; copies: number[] };
  stop(): Promise<void>;
}

/** CPU seconds from a /proc stat file (clock ticks of 1/100 s): user + system, and system alone (system calls, wake-ups, fsync). */
function statCpuSeconds(path: string): { total: number; system: number } {
  const fields = readFileSync(path, 'latin1').replace(/^.*\) /s, '').split(' ');
  return { total: (Number(fields[11]) + Number(fields[12])) / 100, system: Number(fields[12]) / 100 };
}

/** Context switches of a thread so far (voluntary: it waited; involuntary: it was preempted), from /proc status. */
function contextSwitches(path: string): number {
  const status = readFileSync(path, 'latin1');
  return [...status.matchAll(/^(?:non)?voluntary_ctxt_switches:\s+(\d+)$/gm)].reduce((n, m) => n + Number(m[1]), 0);
}

/** Read and write system calls of a process so far, all threads (/proc io: syscr, syscw; sockets, pipes and files alike). */
function ioCalls(pid: number): { reads: number; writes: number } {
  const io = readFileSync(`/proc/${pid}/io`, 'latin1');
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)$`, 'm').exec(io)?.[1] ?? NaN);
  return { reads: field('syscr'), writes: field('syscw') };
}

/** CPU seconds a process has used so far, in all, in the kernel, and by thread name (MainThread, the crypto WorkerThreads, V8's and libuv's helpers); its threads' context switches and its read and write calls. */
export function cpuSeconds(pid: number): { total: number; system: number; switches: number; io: { reads: number; writes: number }; byThread: Record<string, number> } {
  const byThread: Record<string, number> = {};
  let switches = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const name = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'latin1').trim();
      byThread[name] = (byThread[name] ?? 0) + statCpuSeconds(`/proc/${pid}/task/${tid}/stat`).total;
      switches += contextSwitches(`/proc/${pid}/task/${tid}/status`);
    } catch {
      // The thread ended meanwhile.
    }
  }
  return { ...statCpuSeconds(`/proc/${pid}/stat`), switches, io: ioCalls(pid), byThread };
}

/** CPU µs per message between two readings, in all, in the kernel and by thread name; context switches (threads that ended meanwhile are not counted), read and write calls per message. */
export function cpuPerMessage(a: ReturnType<typeof cpuSeconds>, b: ReturnType<typeof cpuSeconds>, count: number): { total: number; system: number; switches: number; reads: number; writes: number; byThread: Record<string, number> } {
  const us = (s: number) => Math.round((s * 1e6) / count);
  const per = (n: number) => Math.round((10 * n) / count) / 10;
  return {
    total: us(b.total - a.total),
    system: us(b.system - a.system),
    switches: per(b.switches - a.switches),
    reads: per(b.io.reads - a.io.reads),
    writes: per(b.io.writes - a.io.writes),
    byThread: Object.fromEntries(Object.entries(b.byThread).map(([k, v]) => [k, us(v - (a.byThread[k] ?? 0))])),
  };
}

export async function startGatewayProcess(world: GatewayWorld, listen: number, nextHop: number, o: Pick<Options, 'workers' | 'nodeArgs' | 'lmtp'> & { bin?: string; env?: NodeJS.ProcessEnv }): Promise<GatewayProcess> {
  const { workers, nodeArgs } = o;
  const policy = join(world.dir, 'bench-policy.json');
  // The bench PKIs publish no CRL or OCSP.
  writeFileSync(policy, JSON.stringify({ revocation: 'allow-unknown' }));
  const child = spawn(process.execPath, [...nodeArgs, o.bin ?? BIN, 'gateway', '--listen', `127.0.0.1:${listen}`, '--next-hop', `127.0.0.1:${nextHop}`, '--domain', 'corp.test', '--authserv-id', 'mx.corp.test', '--policy', policy, ...(workers !== undefined ? ['--workers', workers] : []), ...(o.lmtp ? ['--lmtp'] : [])], { env: { ...world.env, ...o.env }, stdio: ['ignore', 'ignore', 'pipe'] });
  const messageMs: number[] = [];
  const copiesMs: number[] = [];
  // The log is only collected while messages run; it is parsed when asked for, between
  // runs, so that the bench's own analysis does not compete for the cores it measures.
  let unread: string[] = [];
  let rest = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => unread.push(d));
  const messages = () => {
    const lines = (rest + unread.join('')).split('\n');
    unread = [];
    rest = lines.pop() ?? '';
    for (const l of lines) {
      try {
        const j = JSON.parse(l) as { event?: string; ms?: number; copiesMs?: number };
        if (j.event === 'message' && typeof j.ms === 'number') {
          messageMs.push(j.ms);
          copiesMs.push(j.copiesMs ?? NaN);
        }
      } catch { /* not a log line */ }
    }
    return { ms: messageMs, copies: copiesMs };
  };
  await waitForPort(listen, 30_000);
  return {
    child,
    messages,
    stop: () => new Promise((r) => { child.once('exit', () => r()); child.kill('SIGTERM'); }),
  };
}

/**
 * Postfix's own account of where each delivery's time went, from its log's
 * `delays=a/b/c/d` (seconds): a, before the queue manager (the client's transmission,
 * the queue file); b, in the queue manager (waiting for a delivery agent or the
 * destination's concurrency); c, connection setup; d, the transmission to the next
 * hop until its reply. p50 and p99 of each, by next hop (the port of `relay=`).
 */
function postfixDelays(log: string, hops: Record<string, string>): Record<string, { deliveries: number; p50: number[]; p99: number[] }> {
  const byHop: Record<string, number[][]> = {};
  for (const m of log.matchAll(/relay=[^,]*:(\d+), .*?delays=([\d.]+)\/([\d.]+)\/([\d.]+)\/([\d.]+)/g)) {
    const hop = hops[m[1]!] ?? m[1]!;
    (byHop[hop] ??= []).push([m[2], m[3], m[4], m[5]].map((x) => Number(x) * 1000));
  }
  return Object.fromEntries(Object.entries(byHop).map(([hop, rows]) => [hop, {
    deliveries: rows.length,
    p50: [0, 1, 2, 3].map((i) => quantile(rows.map((r) => r[i]!), 0.5)),
    p99: [0, 1, 2, 3].map((i) => quantile(rows.map((r) => r[i]!), 0.99)),
  }]));
}

const sum = (r: Record<string, number>): number => Object.values(r).reduce((a, b) => a + b, 0);

const quantile = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
};

/** The slowest 1% of messages (at least one) by `ms`: their mean time, and its two parts. */
function slowestPercent(ms: readonly number[], copies: readonly number[]): DirectionFigures['halfLoad']['slowest'] {
  const order = ms.map((_, i) => i).sort((a, b) => ms[b]! - ms[a]!).slice(0, Math.max(1, Math.round(ms.length / 100)));
  const mean = (f: (i: number) => number) => order.reduce((a, i) => a + f(i), 0) / order.length;
  return { messages: order.length, ms: mean((i) => ms[i]!), copiesMs: mean((i) => copies[i]!), handOnMs: mean((i) => ms[i]! - copies[i]!) };
}

export interface DirectionFigures {
  /** Delivered msg/s through Postfix without the filter (one queue pass): the mean of withoutFilterRuns. */
  withoutFilter: number;
  /** Each run without the filter, msg/s: before the filtered run, and (--baselines=2) after it. */
  withoutFilterRuns: number[];
  /** Delivered msg/s through Postfix and the gateway. */
  withFilter: number;
  /** withFilter / withoutFilter (target ≥ 0.45). */
  ratio: number;
  /** The gateway process's CPU (all threads) per message in the withFilter run, µs: what holds on a loaded machine. */
  cpuPerMessageUs: number;
  /** The same by thread name (threads of one name summed). */
  cpuPerMessageByThreadUs: Record<string, number>;
  /** The part of cpuPerMessageUs spent in the kernel (system time: socket writes and reads, thread wake-ups, context switches). */
  systemCpuPerMessageUs: number;
  /** The gateway's context switches per message, all threads (each wait for a socket, a worker or a commit is one or more). */
  contextSwitchesPerMessage: number;
  /** The gateway's read and write system calls per message (sockets to the MTA and the next hop, the log, the workers' wake-ups, the audit's files). */
  ioCallsPerMessage: { reads: number; writes: number };
  /**
   * Postfix's CPU per message (µs) by daemon (master.cf service: `smtpd (submission)`,
   * `smtpd (reinjection)`, `cleanup`, `qmgr`, `trivial-rewrite`, `smtp (to the sink)`,
   * `smtp (to the gateway)`...), in the first run without the filter and in the run with it;
   * `clients and sink`: this process (the SMTP clients and the sink), the same in both.
   */
  cpuByProcessUs: { withoutFilter: Record<string, number>; withFilter: Record<string, number> };
  /** All of cpuByProcessUs without / with: the ratio a CPU-bound machine would give (load-independent, unlike `ratio`). */
  cpuRatio: number;
  /** Postfix's delays (its log's delays=a/b/c/d, ms, p50 and p99) by next hop, in the first run without the filter and in the run with it. */
  postfixDelaysMs: { withoutFilter: ReturnType<typeof postfixDelays>; withFilter: ReturnType<typeof postfixDelays> };
  /** The gateway's own time per message (ms, its log's `ms`) in the run at full load: p50, p99. */
  fullLoad: { p50: number; p99: number };
  /**
   * At half of withFilter: the gateway's own time per message (ms); `slowest`, the
   * slowest 1% of those messages, mean ms in all, making the copies (`copiesMs`:
   * worker, crypto, the key uses' commits) and handing them on (the rest: the relay to
   * Postfix's reinjection, its queue file and fsync).
   */
  halfLoad: { rate: number; p50: number; p99: number; max: number; messages: number; slowest: { messages: number; ms: number; copiesMs: number; handOnMs: number } };
  /** At half load, each message's time as its SMTP client saw it (MAIL FROM to the end of DATA's reply), ms: before-queue, the wait includes the gateway's. */
  clientWait: { p50: number; p99: number };
  /** Before-queue: the same client's wait at the same rate through Postfix alone (the listener without the proxy), ms. */
  clientWaitWithoutFilter?: { p50: number; p99: number };
  /**
   * Before-queue: the latency the gateway adds, ms: clientWait less clientWaitWithoutFilter,
   * quantile by quantile (the runs are not paired message by message). The gateway's own
   * time (halfLoad) is not this: it includes the next hop's queue file and fsync, which
   * Postfix alone also pays before its 250, and leaves out the proxy's connection to the
   * gateway and the commands before the end of DATA.
   */
  addedClientWait?: { p50: number; p99: number };
}

export interface GatewayFigures {
  count: number;
  /** The filter transport spoke LMTP. */
  lmtp: boolean;
  design: Options['design'];
  /** Before-queue: whether smtpd_proxy_options=speed_adjust was set. */
  speedAdjust?: boolean;
  concurrency: number;
  cores: number;
  load: { before: number; after: number };
  outbound?: DirectionFigures;
  inbound?: DirectionFigures;
}

export async function measureGateway(o: Options): Promise<GatewayFigures> {
  const load0 = loadavg()[0]!;
  const world = await createWorld();
  const store = await openWorldStore(world);
  const alice = (await store.findRecipientCertificates('alice@corp.test'))[0]!.certificate;
  await store.close();
  const carol = world.pki.identity('rsa2048', 'carol');
  const outboundMessage = twoKilobyteEmail('alice@corp.test');
  const inboundMessage = encryptMessage(twoKilobyteEmail('carol@example.com'), {
    recipients: [{ certificate: alice }],
    sign: { signers: [{ certificate: carol.cert, key: carol.key }] },
  });
  const sink = await new CountingSink().start();
  const [smtpPort, reinjectPort, filterPort, noFilterPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const beforeQueue = o.design === 'before-queue';
  const postfix = new PostfixInstance({ smtpPort, reinjectPort, relayPort: sink.port, filterPort, noFilterPort, lmtp: o.lmtp, beforeQueue, noSpeedAdjust: o.noSpeedAdjust });
  await postfix.start();
  const postfixCpu = new PostfixCpu(postfix.masterPid());
  const names: Record<string, string> = {
    [`smtpd 127.0.0.1:${smtpPort}`]: beforeQueue ? 'smtpd (submission, proxy to the gateway)' : 'smtpd (submission)',
    [`smtpd 127.0.0.1:${noFilterPort}`]: beforeQueue ? 'smtpd (submission, proxy to the gateway)' : 'smtpd (submission)',
    [`smtpd 127.0.0.1:${reinjectPort}`]: beforeQueue ? 'smtpd (after the filter)' : 'smtpd (reinjection)',
    'smtp kakitome': 'smtp (to the gateway)',
    'lmtp kakitome': 'lmtp (to the gateway)',
    smtp: 'smtp (to the sink)',
  };
  /** Runs `drive` and returns, beside its result, Postfix's CPU by daemon and this process's (clients, sink) per message, µs. */
  const driveMeasured = async (port: number, d: Parameters<typeof drive>[2]) => {
    const log0 = postfix.log().length;
    const own0 = process.cpuUsage();
    postfixCpu.start();
    const r = await drive(port, sink, d);
    const byService = postfixCpu.stop();
    const own = process.cpuUsage(own0);
    const delays = postfixDelays(postfix.log().slice(log0), { [filterPort]: 'to the gateway', [sink.port]: 'to the sink' });
    const us = (s: number) => Math.round((s * 1e6) / d.count);
    // This process: the clients, the sink and reading the gateway's log lines, less the polls of /proc (under 1% of a core).
    const cpu: Record<string, number> = { 'clients and sink': us((own.user + own.system - postfixCpu.pollingUs) / 1e6) };
    for (const [k, v] of Object.entries(byService)) cpu[names[k] ?? k] = (cpu[names[k] ?? k] ?? 0) + us(v);
    return { ...r, cpu, delays };
  };
  const gateway = await startGatewayProcess(world, filterPort, reinjectPort, o);
  try {
    const direction = async (from: string, to: string, message: Buffer): Promise<DirectionFigures> => {
      const run = { concurrency: o.concurrency, from, to, message };
      // Warm-up: connection caches, the gateway's identity cache and the JIT (--warmup).
      if (o.warmup > 0) await drive(smtpPort, sink, { ...run, count: o.warmup });
      const without0 = await driveMeasured(noFilterPort, { ...run, count: o.count });
      const withoutRuns = [without0.perSecond];
      const cpu0 = cpuSeconds(gateway.child.pid!);
      const full0 = gateway.messages().ms.length;
      const withFilter = await driveMeasured(smtpPort, { ...run, count: o.count });
      const cpu = cpuPerMessage(cpu0, cpuSeconds(gateway.child.pid!), o.count);
      const fullMs = gateway.messages().ms.slice(full0);
      if (o.baselines === 2) withoutRuns.push((await drive(noFilterPort, sink, { ...run, count: o.count })).perSecond);
      const without = withoutRuns.reduce((a, b) => a + b, 0) / withoutRuns.length;
      const rate = withFilter.perSecond / 2;
      const before = gateway.messages().ms.length;
      const halfCount = Math.max(100, Math.min(o.count, Math.round(rate * 20)));
      // Before-queue, the gateway's own time includes the after-filter smtpd's queue file and
      // fsync, which Postfix alone pays too before it answers its client: what the gateway
      // adds is the client's wait with it less the client's wait without it, at the same rate.
      // The two alternate in slices of about 2 s, so that the machine's other load falls on
      // both alike (one run after the other, a stall in either decided the difference).
      const half = { sendMs: [] as number[] };
      const alone = beforeQueue ? { sendMs: [] as number[] } : undefined;
      const slice = alone ? Math.max(20, Math.round(rate * 2)) : halfCount;
      for (let sent = 0; sent < halfCount; sent += slice) {
        const count = Math.min(slice, halfCount - sent);
        half.sendMs.push(...(await drive(smtpPort, sink, { ...run, count, rate })).sendMs);
        if (alone) alone.sendMs.push(...(await drive(noFilterPort, sink, { ...run, count, rate })).sendMs);
      }
      const ms = gateway.messages().ms.slice(before);
      const copies = gateway.messages().copies.slice(before);
      return {
        withoutFilter: without,
        withoutFilterRuns: withoutRuns,
        withFilter: withFilter.perSecond,
        ratio: withFilter.perSecond / without,
        cpuPerMessageUs: cpu.total,
        cpuPerMessageByThreadUs: cpu.byThread,
        cpuByProcessUs: { withoutFilter: without0.cpu, withFilter: { ...withFilter.cpu, gateway: cpu.total } },
        cpuRatio: sum(without0.cpu) / (sum(withFilter.cpu) + cpu.total),
        postfixDelaysMs: { withoutFilter: without0.delays, withFilter: withFilter.delays },
        fullLoad: { p50: quantile(fullMs, 0.5), p99: quantile(fullMs, 0.99) },
        systemCpuPerMessageUs: cpu.system,
        contextSwitchesPerMessage: cpu.switches,
        ioCallsPerMessage: { reads: cpu.reads, writes: cpu.writes },
        halfLoad: { rate, p50: quantile(ms, 0.5), p99: quantile(ms, 0.99), max: Math.max(...ms), messages: ms.length, slowest: slowestPercent(ms, copies) },
        clientWait: { p50: quantile(half.sendMs, 0.5), p99: quantile(half.sendMs, 0.99) },
        ...(alone ? { clientWaitWithoutFilter: { p50: quantile(alone.sendMs, 0.5), p99: quantile(alone.sendMs, 0.99) }, addedClientWait: addedWait(half.sendMs, alone.sendMs) } : {}),
      };
    };
    const outbound = o.only === 'inbound' ? undefined : await direction('alice@corp.test', 'erin@example.com', outboundMessage);
    const inbound = o.only === 'outbound' ? undefined : await direction('carol@example.com', 'alice@corp.test', inboundMessage);
    return { count: o.count, lmtp: o.lmtp, design: o.design, ...(beforeQueue ? { speedAdjust: !o.noSpeedAdjust } : {}), concurrency: o.concurrency, cores: availableParallelism(), load: { before: load0, after: loadavg()[0]! }, ...(outbound ? { outbound } : {}), ...(inbound ? { inbound } : {}) };
  } finally {
    await gateway.stop();
    await postfix.stop();
    await sink.stop();
    world.cleanup();
  }
}

/** Each quantile of `withGateway` less the same quantile of `alone`, ms (one decimal). */
function addedWait(withGateway: number[], alone: number[]): { p50: number; p99: number } {
  const d = (q: number) => Math.round((quantile(withGateway, q) - quantile(alone, q)) * 10) / 10;
  return { p50: d(0.5), p99: d(0.99) };
}

/** Postfix's daemons, the clients and sink, and the gateway: CPU µs per message without and with the filter, side by side. */
function cpuTable(direction: string, c: DirectionFigures['cpuByProcessUs']): string {
  const keys = [...new Set([...Object.keys(c.withoutFilter), ...Object.keys(c.withFilter)])].sort();
  return [
    `CPU per message by process, ${direction} (µs):    no filter   with the gateway`,
    ...keys.map((k) => `  ${k.padEnd(40)} ${String(c.withoutFilter[k] ?? 0).padStart(9)} ${String(c.withFilter[k] ?? 0).padStart(9)}`),
    `  ${'all'.padEnd(40)} ${String(sum(c.withoutFilter)).padStart(9)} ${String(sum(c.withFilter)).padStart(9)}`,
  ].join('\n');
}

/** Postfix's delays=a/b/c/d by run and next hop, p50 / p99 ms. */
function delaysTable(direction: string, p: DirectionFigures['postfixDelaysMs']): string {
  const rows = (run: string, byHop: ReturnType<typeof postfixDelays>) => Object.entries(byHop).map(([hop, d]) =>
    `  ${`${run}, ${hop}`.padEnd(34)} ${String(d.deliveries).padStart(6)}  ${[0, 1, 2, 3].map((i) => `${d.p50[i]!.toFixed(0)}/${d.p99[i]!.toFixed(0)}`.padStart(9)).join(' ')}`);
  return [
    `Postfix's delays, ${direction} (ms, p50/p99): deliveries  before qmgr  in qmgr  connect  transmission`,
    ...rows('no filter', p.withoutFilter),
    ...rows('with the gateway', p.withFilter),
  ].join('\n');
}

function report(f: GatewayFigures): string {
  const row = (name: string, d: DirectionFigures) =>
    `${name.padEnd(28)} ${d.withoutFilter.toFixed(0).padStart(9)} ${d.withFilter.toFixed(0).padStart(9)} ${(100 * d.ratio).toFixed(0).padStart(5)}%   ` +
    `${d.cpuPerMessageUs.toFixed(0).padStart(5)} µs   ${d.halfLoad.rate.toFixed(0).padStart(5)}/s  p50 ${d.halfLoad.p50.toFixed(1)} ms  p99 ${d.halfLoad.p99.toFixed(1)} ms  max ${d.halfLoad.max.toFixed(1)} ms`;
  return [
    `gateway through Postfix${f.design === 'before-queue' ? ` as its before-queue filter (smtpd_proxy_filter${f.speedAdjust ? ', speed_adjust' : ''})` : ''}${f.lmtp ? ' (LMTP to the gateway)' : ''}: ${f.count} messages of 2 KB, ${f.concurrency} client connections, ${f.cores} cores, load ${f.load.before.toFixed(1)} -> ${f.load.after.toFixed(1)}`,
    `${''.padEnd(28)} ${'no filter'.padStart(9)} ${'gateway'.padStart(9)} ${'ratio'.padStart(6)}   CPU/msg  gateway time at half load (target: ratio >= 45%, p99 < 20 ms)`,
    ...(f.outbound ? [row('outbound (signed)', f.outbound)] : []),
    ...(f.inbound ? [row('inbound (decrypt + verify)', f.inbound)] : []),
    ...(['outbound', 'inbound'] as const).flatMap((d) => { const runs = f[d]?.withoutFilterRuns ?? []; return runs.length > 1 ? [`no filter, ${d}: ${runs.map((r) => r.toFixed(0)).join(' and ')} msg/s (before and after the filtered run; spread ${(100 * (Math.max(...runs) - Math.min(...runs)) / Math.min(...runs)).toFixed(0)}%)`] : []; }),
    ...(['outbound', 'inbound'] as const).flatMap((d) => { const w = f[d]?.clientWait; return w ? [`the client's wait per message at half load, ${d} (MAIL FROM to the reply to the end of DATA): p50 ${w.p50.toFixed(1)} ms, p99 ${w.p99.toFixed(1)} ms`] : []; }),
    ...(['outbound', 'inbound'] as const).flatMap((d) => { const w = f[d]?.clientWaitWithoutFilter; const a = f[d]?.addedClientWait; return w && a ? [`  the same through Postfix alone at the same rate: p50 ${w.p50.toFixed(1)} ms, p99 ${w.p99.toFixed(1)} ms; added by the gateway (with less without, by quantile): p50 ${a.p50.toFixed(1)} ms, p99 ${a.p99.toFixed(1)} ms`] : []; }),
    ...(['outbound', 'inbound'] as const).flatMap((d) => { const s = f[d]?.halfLoad.slowest; return s ? [`slowest 1% at half load, ${d} (${s.messages} messages, mean): ${s.ms.toFixed(1)} ms = making the copies ${s.copiesMs.toFixed(1)} ms + handing them on ${s.handOnMs.toFixed(1)} ms`] : []; }),
    ...(['outbound', 'inbound'] as const).flatMap((d) => { const c = f[d]?.cpuByProcessUs; return c ? [cpuTable(d, c), `  CPU ratio (no filter / with the gateway, all processes above): ${(100 * f[d]!.cpuRatio).toFixed(0)}%; the gateway's time at full load p50 ${f[d]!.fullLoad.p50.toFixed(1)} ms, p99 ${f[d]!.fullLoad.p99.toFixed(1)} ms`] : []; }),
    ...(['outbound', 'inbound'] as const).flatMap((d) => { const p = f[d]?.postfixDelaysMs; return p ? [delaysTable(d, p)] : []; }),
    ...(['outbound', 'inbound'] as const).flatMap((d) => { const figures = f[d]; return figures ? [`CPU per message by thread, ${d}: ${Object.entries(figures.cpuPerMessageByThreadUs).filter(([, v]) => v > 0).map(([k, v]) => `${k} ${v} µs`).join(', ')}; of all, system ${figures.systemCpuPerMessageUs} µs; per message ${figures.contextSwitchesPerMessage} context switches, ${figures.ioCallsPerMessage.reads} reads, ${figures.ioCallsPerMessage.writes} writes`] : []; }),
  ].join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const o = parseOptions(process.argv.slice(2));
  const f = await measureGateway(o);
  console.log(report(f));
  if (o.out) writeFileSync(resolve(o.out), `${JSON.stringify({ date: new Date().toISOString(), gateway: f }, null, 2)}\n`);
}
