/**
 * What a connection costs the gateway, without Postfix. As Postfix's before-queue
 * filter (`smtpd_proxy_filter`, docs/gateway.md) the gateway gets a new connection for
 * every message, and Postfix 3.7's proxy speaks it one command at a time (read with
 * strace on the gateway behind the test's Postfix): greeting, EHLO, one XFORWARD
 * line, MAIL, RCPT, DATA, the message, QUIT, close. This bench speaks exactly that to a
 * `kakitome gateway` process (the same launcher and store as bench/gateway.ts) whose
 * next hop is an SMTP sink in this process, and reads the gateway's CPU time from
 * /proc (all threads, and by thread) around each run:
 *
 * - `proxy`: a message per connection, as Postfix's proxy sends it;
 * - `reuse`: the same messages, every client keeping one connection (what the
 *   after-queue design's connection cache gives);
 * - `connect`: connections without a message (greeting, EHLO, XFORWARD, QUIT).
 *
 * µs per message in `proxy` less `reuse` is what the connection costs a message;
 * `connect` is the same from the other side. The runs alternate (`--rounds`), so a
 * neighbour's load falls on all of them alike; CPU time per message holds under load
 * where throughput does not (../shared: the machine is shared).
 *
 *   npx node bench/gateway-connections.ts [--count=N] [--concurrency=C] [--rounds=R] [--warmup=N] [--modes=proxy,reuse,connect] [--direction=outbound|inbound] [--workers=N] [--against=BIN | --against-env=NAME=VALUE] [--floor] [--harvested=N] [--node-arg=ARG]... [--out=FILE]
 *
 * `--against=/other/tree/bin/kakitome.js` measures a second gateway, another tree's
 * (main, before a change), in the same rounds, one after the other; `--against-env=NAME=VALUE[,...]`
 * this tree's with other environment variables. Both get the same store and sink.
 * `--floor` also measures, in `connect` mode, a bare node:net listener answering the
 * same commands in a process of its own: what node's sockets and the kernel cost a
 * connection, under any SMTP library.
 * `--direction=inbound` sends the bench/gateway.ts inbound message instead (carol@example.com
 * to alice@corp.test, signed and encrypted to alice: decrypt + verify), outbound (the default)
 * a 2 KB message alice@corp.test signs.
 * `--harvested=N` first files N partners' certificates in the store (harvested, current,
 * one address each), as a gateway that has seen a year of signed mail holds: the
 * outbound plan looks every recipient up among them (plan-outbound.ts).
 * `--node-arg=--perf-basic-prof` and `perf record -p PID` (the PIDs are printed) profile it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { connect, createServer, type Socket } from 'node:net';
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { createWorld, openWorldStore, type GatewayWorld } from '../test/gateway/gateway-fixture.ts';
import { issueCertificate } from '../src/x509/issue.ts';
import { generateKey } from '../test/helpers/pki.ts';
import { freePort } from '../test/gateway/postfix-instance.ts';
import { twoKilobyteEmail } from './messages.ts';
import { encryptMessage } from '../src/smime/encrypt-message.ts';
import { CountingSink, cpuPerMessage, cpuSeconds, startGatewayProcess } from './gateway.ts';

type Mode = 'proxy' | 'reuse' | 'connect';

interface Options {
  count: number;
  concurrency: number;
  rounds: number;
  warmup: number;
  modes: Mode[];
  workers: string | undefined;
  nodeArgs: string[];
  out: string | undefined;
  /** Another tree's launcher (bin/kakitome.js), measured in the same rounds. */
  against: string | undefined;
  /** This tree again with these environment variables (NAME=VALUE), measured in the same rounds. */
  againstEnv: string[] | undefined;
  /** Also measure the floor: a bare node:net listener answering the same commands (`connect` mode only). */
  floor: boolean;
  /** Partners' certificates filed in the store before the runs. */
  harvested: number;
  /** Outbound (signed) or inbound (decrypted and verified) messages. */
  direction: Direction;
}

type Direction = 'outbound' | 'inbound';

/** Who sends to whom in each direction: as bench/gateway.ts. */
const PARTIES: Record<Direction, { from: string; to: string }> = {
  outbound: { from: 'alice@corp.test', to: 'erin@example.com' },
  inbound: { from: 'carol@example.com', to: 'alice@corp.test' },
};

function parseOptions(argv: readonly string[]): Options {
  const arg = (name: string) => argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const modes = (arg('modes') ?? 'proxy,reuse,connect').split(',');
  for (const m of modes) if (m !== 'proxy' && m !== 'reuse' && m !== 'connect') throw new Error(`--modes takes proxy, reuse and connect, not ${m}`);
  return {
    count: Number(arg('count') ?? 2000),
    concurrency: Number(arg('concurrency') ?? 8),
    rounds: Number(arg('rounds') ?? 3),
    warmup: Number(arg('warmup') ?? 2000),
    modes: modes as Mode[],
    workers: arg('workers'),
    nodeArgs: argv.filter((a) => a.startsWith('--node-arg=')).map((a) => a.slice('--node-arg='.length)),
    out: arg('out'),
    against: arg('against'),
    againstEnv: arg('against-env')?.split(','),
    floor: argv.includes('--floor'),
    harvested: Number(arg('harvested') ?? 0),
    direction: direction(arg('direction')),
  };
}

function direction(v: string | undefined): Direction {
  if (v === undefined || v === 'outbound' || v === 'inbound') return v ?? 'outbound';
  throw new Error(`--direction takes outbound or inbound, not ${v}`);
}

/** An SMTP client that waits for each reply before the next command, as Postfix's smtpd_proxy does. */
export class LockstepClient {
  readonly #socket: Socket;
  #buffered = '';
  #lines: string[] = [];
  readonly #replies: string[] = [];
  #waiter: { resolve(r: string): void; reject(e: Error): void } | undefined;
  readonly closed: Promise<void>;

  constructor(port: number) {
    this.#socket = connect({ host: '127.0.0.1', port });
    this.#socket.setNoDelay(true);
    this.#socket.setEncoding('latin1');
    this.#socket.on('data', (d: string) => this.#read(d));
    this.closed = new Promise((r) => this.#socket.once('close', () => r()));
    this.#socket.on('error', (e) => this.#waiter?.reject(e));
  }

  #read(d: string): void {
    this.#buffered += d;
    let i: number;
    while ((i = this.#buffered.indexOf('\r\n')) >= 0) {
      const line = this.#buffered.slice(0, i);
      this.#buffered = this.#buffered.slice(i + 2);
      this.#lines.push(line);
      if (line[3] !== '-') {
        this.#replies.push(this.#lines.join('\n'));
        this.#lines = [];
      }
    }
    while (this.#waiter && this.#replies.length > 0) {
      const w = this.#waiter;
      this.#waiter = undefined;
      w.resolve(this.#replies.shift()!);
    }
  }

  reply(expect: string): Promise<string> {
    const check = (r: string) => {
      if (!r.startsWith(expect)) throw new Error(`expected ${expect}, got ${r.slice(0, 200)}`);
      return r;
    };
    if (this.#replies.length > 0) return Promise.resolve(check(this.#replies.shift()!));
    return new Promise((res, rej) => (this.#waiter = { resolve: (r) => { try { res(check(r)); } catch (e) { rej(e as Error); } }, reject: rej }));
  }

  command(line: string | Buffer, expect: string): Promise<string> {
    this.#socket.write(line);
    return this.reply(expect);
  }

  /** As Postfix's proxy: QUIT, its 221, then close. */
  async quit(): Promise<void> {
    await this.command('QUIT\r\n', '221');
    this.#socket.destroy();
    await this.closed;
  }
}

const EHLO = 'EHLO mx.corp.test\r\n';
// What Postfix 3.7's proxy sent the gateway in bench/gateway.ts --design=before-queue (strace).
const XFORWARD = 'XFORWARD NAME=localhost ADDR=127.0.0.1 PORT=34260 HELO=[127.0.0.1] IDENT=[UNAVAILABLE] PROTO=ESMTP SOURCE=LOCAL\r\n';

async function open(port: number): Promise<LockstepClient> {
  const c = new LockstepClient(port);
  await c.reply('220');
  await c.command(EHLO, '250');
  await c.command(XFORWARD, '250');
  return c;
}

/** `n` partners' certificates (one key, an address each) harvested into the world's store, as current. */
async function harvestPartners(world: GatewayWorld, n: number): Promise<void> {
  const store = await openWorldStore(world);
  const { publicKey } = generateKey('p256');
  const now = Date.now();
  try {
    for (let i = 0; i < n; i++) {
      const email = `partner${i}@partners.example`;
      const cert = issueCertificate({ subject: { commonName: email }, publicKey, issuer: world.pki.caCert, signingKey: world.pki.caKey, emails: [email], keyUsage: ['digitalSignature', 'keyAgreement'], notBefore: new Date(now - 60_000), notAfter: new Date(now + 365 * 86_400_000) });
      await store.harvestCertificate(cert, { address: email });
    }
  } finally {
    await store.close();
  }
  console.log(`${n} partners' certificates harvested into the store`);
}

async function transaction(c: LockstepClient, data: Buffer, d: Direction): Promise<void> {
  await c.command(`MAIL FROM:<${PARTIES[d].from}>\r\n`, '250');
  await c.command(`RCPT TO:<${PARTIES[d].to}>\r\n`, '250');
  await c.command('DATA\r\n', '354');
  await c.command(data, '250');
}

/** The 2 KB message of `d`, as bench/gateway.ts sends it: signed by alice's gateway outbound; inbound signed by carol and encrypted to alice. */
async function messageFor(world: GatewayWorld, d: Direction): Promise<Buffer> {
  if (d === 'outbound') return twoKilobyteEmail('alice@corp.test');
  const store = await openWorldStore(world);
  const alice = (await store.findRecipientCertificates('alice@corp.test'))[0]!.certificate;
  await store.close();
  const carol = world.pki.identity('rsa2048', 'carol');
  return encryptMessage(twoKilobyteEmail('carol@example.com'), { recipients: [{ certificate: alice }], sign: { signers: [{ certificate: carol.cert, key: carol.key }] } });
}

/** `count` messages (or connections) through `port` by `concurrency` clients, in `mode`. */
export async function run(mode: Mode, port: number, count: number, concurrency: number, data: Buffer, d: Direction = 'outbound'): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    let kept: LockstepClient | undefined;
    while (next++ < count) {
      if (mode === 'reuse') {
        kept ??= await open(port);
        await transaction(kept, data, d);
        continue;
      }
      const c = await open(port);
      if (mode === 'proxy') await transaction(c, data, d);
      await c.quit();
    }
    await kept?.quit();
  }));
  return (performance.now() - t0) / 1000;
}

/**
 * The floor under any SMTP listener in node: a bare node:net server (no smtp-server, no
 * gateway) that answers the greeting, EHLO, XFORWARD and QUIT of `connect` mode as
 * replies written at once, in a process of its own. What a connection costs it is
 * what node's sockets and the kernel cost.
 */
function serveFloor(port: number): void {
  createServer((socket) => {
    socket.setNoDelay(true);
    socket.on('error', () => undefined);
    socket.write('220 floor ESMTP\r\n');
    let buffered = '';
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      buffered += d;
      for (let i = buffered.indexOf('\r\n'); i >= 0; i = buffered.indexOf('\r\n')) {
        const line = buffered.slice(0, i);
        buffered = buffered.slice(i + 2);
        if (line.startsWith('EHLO')) socket.write('250-floor\r\n250-PIPELINING\r\n250 XFORWARD NAME ADDR PORT PROTO HELO IDENT SOURCE\r\n');
        else if (line.startsWith('QUIT')) socket.end('221 Bye\r\n');
        else socket.write('250 OK\r\n');
      }
    });
  }).listen(port, '127.0.0.1', () => process.stdout.write('listening\n'));
}

async function startFloor(port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), `--serve-floor=${port}`], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((r) => child.stdout!.once('data', r));
  return child;
}

/** One gateway process measured: this tree's, or another's (`--against`) or this one with other environment variables (`--against-env`). */
interface Measured {
  label: string;
  bin?: string;
  env?: NodeJS.ProcessEnv;
}

type Round = ReturnType<typeof cpuPerMessage> & { perSecond: number };

function summarise(rs: Round[]) {
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const threads = [...new Set(rs.flatMap((x) => Object.keys(x.byThread)))];
  return {
    totalUs: median(rs.map((x) => x.total)),
    totalUsRounds: rs.map((x) => x.total),
    systemUs: median(rs.map((x) => x.system)),
    byThreadUs: Object.fromEntries(threads.map((t) => [t, median(rs.map((x) => x.byThread[t] ?? 0))])),
    switches: median(rs.map((x) => x.switches)),
    reads: median(rs.map((x) => x.reads)),
    writes: median(rs.map((x) => x.writes)),
    perSecond: median(rs.map((x) => x.perSecond)),
  };
}

export async function measureConnections(o: Options) {
  const world = await createWorld();
  if (o.harvested > 0) await harvestPartners(world, o.harvested);
  const sink = await new CountingSink().start();
  const measured: Measured[] = [{ label: 'this tree' }, ...(o.against ? [{ label: o.against, bin: o.against }] : []), ...(o.againstEnv ? [{ label: o.againstEnv.join(' '), env: Object.fromEntries(o.againstEnv.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)])) }] : [])];
  const gateways: Array<{ m: Measured; port: number; process: Awaited<ReturnType<typeof startGatewayProcess>> }> = [];
  let floor: { port: number; child: ChildProcess; rounds: Round[] } | undefined;
  // The message as DATA carries it: CRLF, dot-stuffed, with its terminator.
  const data = Buffer.from(`${(await messageFor(world, o.direction)).toString('latin1').replace(/\r\n\./g, '\r\n..')}.\r\n`, 'latin1');
  const load0 = loadavg()[0]!;
  try {
    for (const m of measured) {
      const port = await freePort();
      gateways.push({ m, port, process: await startGatewayProcess(world, port, sink.port, { workers: o.workers, nodeArgs: o.nodeArgs, lmtp: false, ...(m.bin ? { bin: m.bin } : {}), ...(m.env ? { env: m.env } : {}) }) });
      console.log(`gateway pid ${gateways.at(-1)!.process.child.pid} (${m.label})`);
    }
    for (const g of gateways) if (o.warmup > 0) await run('proxy', g.port, o.warmup, o.concurrency, data, o.direction);
    const results = gateways.map(() => ({ proxy: [] as Round[], reuse: [] as Round[], connect: [] as Round[] }));
    if (o.floor) {
      const port = await freePort();
      floor = { port, child: await startFloor(port), rounds: [] };
      if (o.warmup > 0) await run('connect', port, o.warmup, o.concurrency, data);
    }
    // Rounds alternate between the modes and the gateways, so that the other load falls on all alike.
    for (let r = 0; r < o.rounds; r++) {
      for (const mode of o.modes) {
        for (const [i, g] of gateways.entries()) {
          const pid = g.process.child.pid!;
          const a = cpuSeconds(pid);
          const seconds = await run(mode, g.port, o.count, o.concurrency, data, o.direction);
          results[i]![mode].push({ ...cpuPerMessage(a, cpuSeconds(pid), o.count), perSecond: o.count / seconds });
        }
        if (floor && mode === 'connect') {
          const a = cpuSeconds(floor.child.pid!);
          const seconds = await run('connect', floor.port, o.count, o.concurrency, data);
          floor.rounds.push({ ...cpuPerMessage(a, cpuSeconds(floor.child.pid!), o.count), perSecond: o.count / seconds });
        }
      }
    }
    return {
      count: o.count, concurrency: o.concurrency, rounds: o.rounds, direction: o.direction, load: { before: load0, after: loadavg()[0]! },
      gateways: [
        ...gateways.map((g, i) => ({ label: g.m.label, modes: Object.fromEntries(o.modes.map((m) => [m, summarise(results[i]![m])])) as Partial<Record<Mode, ReturnType<typeof summarise>>> })),
        ...(floor && floor.rounds.length > 0 ? [{ label: 'floor: a bare node:net listener', modes: { connect: summarise(floor.rounds) } as Partial<Record<Mode, ReturnType<typeof summarise>>> }] : []),
      ],
    };
  } finally {
    floor?.child.kill();
    for (const g of gateways) await g.process.stop();
    await sink.stop();
    world.cleanup();
  }
}

const serveFloorAt = process.argv.find((a) => a.startsWith('--serve-floor='));
if (serveFloorAt) serveFloor(Number(serveFloorAt.slice('--serve-floor='.length)));
else if (import.meta.url === `file://${process.argv[1]}`) {
  const o = parseOptions(process.argv.slice(2));
  const f = await measureConnections(o);
  console.log(`gateway CPU per message (per connection for 'connect'), ${f.direction}, µs, median of ${f.rounds} rounds of ${f.count}, ${f.concurrency} clients, load ${f.load.before.toFixed(1)} -> ${f.load.after.toFixed(1)}`);
  for (const g of f.gateways) {
    console.log(g.label);
    for (const [m, s] of Object.entries(g.modes)) {
      console.log(`  ${m.padEnd(8)} ${String(s.totalUs).padStart(6)} µs (rounds ${s.totalUsRounds.join(', ')}; system ${s.systemUs}; ${Object.entries(s.byThreadUs).filter(([, v]) => v > 0).map(([k, v]) => `${k} ${v}`).join(', ')}) ${s.switches} switches, ${s.reads} reads, ${s.writes} writes, ${s.perSecond.toFixed(0)}/s`);
    }
    if (g.modes.proxy && g.modes.reuse) console.log(`  a connection costs a message ${g.modes.proxy.totalUs - g.modes.reuse.totalUs} µs (proxy less reuse)`);
  }
  if (o.out) writeFileSync(resolve(o.out), `${JSON.stringify({ date: new Date().toISOString(), connections: f }, null, 2)}\n`);
}
