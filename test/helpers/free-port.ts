/**
 * A loopback TCP port for a server another process will bind (Postfix, slapd,
 * PostgreSQL, a `kakitome gateway` child), chosen below the kernel's ephemeral
 * range. A port from listen(0) is taken from that range, so between our releasing
 * it and the child binding it, any outgoing connection of the parallel suite (a
 * pooled PostgreSQL client, Postfix's connection cache) may get it as its source
 * port and hold it: the child then fails with EADDRINUSE, as CI once saw. Below
 * the range only another explicit bind can take it, and we check that none has.
 */
import { connect, createServer } from 'node:net';
import { readFileSync } from 'node:fs';

function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    if (Number.isInteger(low) && low > 12_000) return low;
  } catch { /* not Linux: use the IANA range's start */ }
  return 49_152;
}

const LOW = ephemeralLow();
const FIRST = Math.max(10_000, LOW - 20_000);

function tryBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen({ port, host: '127.0.0.1', exclusive: true }, () => s.close(() => resolve(true)));
  });
}

/** A port that is free now on 127.0.0.1 and outside the ephemeral range. */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = FIRST + Math.floor(Math.random() * (LOW - FIRST));
    if (await tryBind(port)) return port;
  }
  throw new Error(`no free port between ${FIRST} and ${LOW - 1} on 127.0.0.1`);
}

/** Resolves once something listens on 127.0.0.1:`port` (a child process started), polling every 100 ms; rejects after `timeoutMs`. */
export function waitForPort(port: number, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const sock = connect(port, '127.0.0.1');
      sock.once('connect', () => {
        sock.destroy();
        resolve();
      });
      sock.once('error', () => {
        sock.destroy();
        if (Date.now() > deadline) reject(new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`));
        else setTimeout(attempt, 100);
      });
    };
    attempt();
  });
}
