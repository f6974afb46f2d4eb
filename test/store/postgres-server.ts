/**
 * A real, throwaway PostgreSQL server on loopback for the store tests, from
 * Debian's `postgresql` package (initdb/pg_ctl on PATH or in /usr/lib/postgresql/N/bin).
 * PostgreSQL refuses to run as root, so under root it runs as the `postgres` user.
 */
import { freePort } from '../helpers/free-port.ts';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, chownSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

function pgBin(name: string): string {
  for (const d of ['/usr/local/bin', '/usr/bin']) if (existsSync(join(d, name))) return join(d, name);
  const base = '/usr/lib/postgresql';
  if (existsSync(base)) {
    for (const v of readdirSync(base).sort().reverse()) {
      const p = join(base, v, 'bin', name);
      if (existsSync(p)) return p;
    }
  }
  throw new Error(`${name} not found: install Debian's postgresql package`);
}


export interface PostgresServer {
  url: string;
  /** The postmaster's process id (its backends are its children): for measuring the server's CPU time. */
  pid(): number;
  stop(): void;
  /** Stops the server, keeping its data (a database outage). */
  pause(): void;
  /** Starts it again on the same port. */
  resume(): void;
}

/**
 * `fsync`: tests run without it (faster, and a test never pulls the plug); the
 * store benchmark turns it on, so a commit costs what it costs in production.
 */
export async function startPostgres(options: { fsync?: boolean } = {}): Promise<PostgresServer> {
  const dir = mkdtempSync(join(tmpdir(), 'kakitome-pg-'));
  const data = join(dir, 'data');
  const asRoot = userInfo().uid === 0;
  let uid = 0;
  if (asRoot) {
    uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
    chownSync(dir, uid, gid);
  }
  const run = (bin: string, args: string[]) =>
    asRoot ? execFileSync('runuser', ['-u', 'postgres', '--', pgBin(bin), ...args], { stdio: 'pipe' }) : execFileSync(pgBin(bin), args, { stdio: 'pipe' });
  run('initdb', ['-D', data, '-A', 'trust', '-U', 'kakitome', '--no-sync', '-E', 'UTF8']);
  const port = await freePort();
  const start = () => run('pg_ctl', ['-D', data, '-w', '-l', join(dir, 'log'), '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=${options.fsync ? 'on' : 'off'}`, 'start']);
  start();
  return {
    url: `postgres://kakitome@127.0.0.1:${port}/postgres`,
    pid: () => Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]),
    pause() {
      run('pg_ctl', ['-D', data, '-w', '-m', 'fast', 'stop']);
    },
    resume: start,
    stop() {
      try {
        run('pg_ctl', ['-D', data, '-m', 'immediate', 'stop']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
