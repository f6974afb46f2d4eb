/**
 * The CPU a Postfix instance spends, by daemon (service), read from /proc while a
 * bench runs: which of smtpd, cleanup, qmgr, trivial-rewrite, the delivery agents...
 * a message costs, in a run with the content filter and in one without.
 *
 * Postfix's daemons are children of its master process and come and go (a daemon
 * exits after `max_use` requests or `max_idle` seconds), so they are polled: each
 * child's CPU (user + system, /proc stat) when first and last seen, its service from
 * its command line (`-n NAME`: the master.cf service, e.g. `127.0.0.1:10026` for the
 * reinjection listener). A daemon that exits between two polls takes its last few
 * milliseconds of CPU with it; the master's reaped children's CPU (cutime + cstime)
 * says how much, reported as `exited, after the last poll` so that the total is exact.
 */
import { readFileSync } from 'node:fs';

const TICKS_PER_SECOND = 100;

interface Child {
  service: string;
  /** CPU ticks when first seen in this window (0 for a daemon born inside it). */
  first: number;
  last: number;
}

/** utime + stime, and cutime + cstime (reaped children), in ticks; undefined once the process is gone. */
function readTicks(pid: number): { own: number; children: number } | undefined {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'latin1').replace(/^.*\) /s, '').split(' ');
    return { own: Number(f[11]) + Number(f[12]), children: Number(f[13]) + Number(f[14]) };
  } catch {
    return undefined;
  }
}

/** `smtpd`, or `smtpd 127.0.0.1:10026` when the master.cf service is not named after its program. */
function serviceOf(pid: number): string | undefined {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0');
    const program = argv[0]!.replace(/^.*\//, '');
    const n = argv.indexOf('-n');
    const name = n >= 0 ? argv[n + 1] : undefined;
    return name === undefined || name === program ? program : `${program} ${name}`;
  } catch {
    return undefined;
  }
}

function childPids(masterPid: number): number[] {
  return readFileSync(`/proc/${masterPid}/task/${masterPid}/children`, 'latin1').trim().split(/\s+/).filter(Boolean).map(Number);
}

export class PostfixCpu {
  readonly #master: number;
  readonly #pollMs: number;
  #children = new Map<number, Child>();
  #exited: Child[] = [];
  #master0 = { own: 0, children: 0 };
  #timer: NodeJS.Timeout | undefined;
  /** CPU µs this process spent polling since start(): the bench subtracts it from its own. */
  pollingUs = 0;

  constructor(masterPid: number, pollMs = 100) {
    this.#master = masterPid;
    this.#pollMs = pollMs;
  }

  #poll(born: boolean): void {
    const cpu0 = process.cpuUsage();
    this.#pollOnce(born);
    const cpu = process.cpuUsage(cpu0);
    this.pollingUs += cpu.user + cpu.system;
  }

  #pollOnce(born: boolean): void {
    const live = new Set(childPids(this.#master));
    for (const pid of live) {
      const ticks = readTicks(pid);
      if (!ticks) continue;
      const known = this.#children.get(pid);
      if (known) known.last = ticks.own;
      else {
        const service = serviceOf(pid);
        if (service) this.#children.set(pid, { service, first: born ? 0 : ticks.own, last: ticks.own });
      }
    }
    for (const [pid, c] of this.#children) {
      if (!live.has(pid)) {
        this.#exited.push(c);
        this.#children.delete(pid);
      }
    }
  }

  /** Starts a window: what the daemons spend from now on. */
  start(): void {
    this.#children.clear();
    this.#exited = [];
    this.pollingUs = 0;
    this.#master0 = readTicks(this.#master)!;
    this.#poll(false);
    this.#timer = setInterval(() => this.#poll(true), this.#pollMs);
  }

  /** Ends the window: CPU seconds by service since start(), the master itself as `master`. */
  stop(): Record<string, number> {
    clearInterval(this.#timer);
    this.#poll(true);
    const master = readTicks(this.#master)!;
    const byService: Record<string, number> = {};
    const add = (service: string, ticks: number) => { byService[service] = (byService[service] ?? 0) + ticks / TICKS_PER_SECOND; };
    for (const c of [...this.#children.values(), ...this.#exited]) add(c.service, c.last - c.first);
    add('master', master.own - this.#master0.own);
    // Reaped children's whole CPU, less what the polls saw of them before this window and in it: their last moments.
    const reaped = master.children - this.#master0.children;
    const seen = this.#exited.reduce((n, c) => n + c.last, 0);
    add('exited, after the last poll', Math.max(0, reaped - seen));
    return byService;
  }
}
