/**
 * A real, throwaway PostgreSQL server on loopback for the store tests, from
 * Debian's `postgresql` package (initdb/pg_ctl on PATH or in /usr/lib/postgresql/N/bin).
 * PostgreSQL refuses to run as root, so under root it runs as the `postgres` user.
 */
import { freePort } from '../helpers/free-port.ts';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, chownSync, existsSync, readdirSync, readFileSync, renameSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

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
 * A cluster as `initdb` makes it, made once per PostgreSQL version and kept in
 * node_modules/.cache (per user, gone with node_modules; never the shared temporary
 * directory): each server copies it (cp -a, owner and modes kept) instead of running
 * initdb, which took 1-1.5 s of an idle 2-core machine's CPU for each of the ~20 files
 * that start a server. Made in a directory of its own and renamed into place, so that
 * two test files making it at once each get a whole one.
 */
function initializedCluster(run: (bin: string, args: string[]) => Buffer): string {
  const version = execFileSync(pgBin('initdb'), ['--version'], { encoding: 'utf8' }).trim().replace(/[^\w.-]+/g, '-');
  const cache = fileURLToPath(new URL('../../node_modules/.cache/kakitome-tests/', import.meta.url));
  const template = join(cache, `postgres-${version}-uid${userInfo().uid}`);
  if (existsSync(join(template, 'PG_VERSION'))) return template;
  const made = mkdtempSync(join(tmpdir(), 'kakitome-pg-template-'));
  try {
    if (userInfo().uid === 0) chownSync(made, Number(execFileSync('id', ['-u', 'postgres']).toString().trim()), Number(execFileSync('id', ['-g', 'postgres']).toString().trim()));
    run('initdb', ['-D', join(made, 'data'), '-A', 'trust', '-U', 'kakitome', '--no-sync', '-E', 'UTF8']);
    mkdirSync(cache, { recursive: true });
    const staged = mkdtempSync(join(cache, 'postgres-staging-'));
    execFileSync('cp', ['-a', join(made, 'data'), join(staged, 'data')]);
    try {
      renameSync(join(staged, 'data'), template);
    } catch (e) {
      // Another file made it first: theirs is as good.
      if (!existsSync(join(template, 'PG_VERSION'))) throw e;
    }
    rmSync(staged, { recursive: true, force: true });
  } finally {
    rmSync(made, { recursive: true, force: true });
  }
  return template;
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
  execFileSync('cp', ['-a', initializedCluster(run), data]);
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
