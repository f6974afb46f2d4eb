/**
 * Running an interop peer (openssl, cmsutil, gpgsm, java) as a child process, and
 * the scratch directory its files live in. A missing peer fails the test with the
 * Debian package to install: .ci/run installs them, and a silent skip would hide a
 * broken CI image.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface PeerResult {
  /** Exit status (null when killed by a signal, see `signal`). */
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
}

export interface RunOptions {
  input?: string | Uint8Array;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Kill the peer after this many ms (default 60 s): a hung peer must not hang CI. */
  timeoutMs?: number;
}

const checked = new Map<string, string>();

/**
 * Throws unless `binary` is on PATH, naming the Debian package that provides it.
 * Returns the binary name for convenience.
 */
export function requirePeer(binary: string, debianPackage: string): string {
  if (checked.has(binary)) return binary;
  const r = spawnSync('sh', ['-c', 'command -v "$1"', 'sh', binary], { encoding: 'utf8' });
  if (r.status !== 0 || !r.stdout.trim()) {
    throw new Error(`Interop peer "${binary}" is not installed: apt-get install ${debianPackage} (.ci/run installs it).`);
  }
  checked.set(binary, r.stdout.trim());
  return binary;
}

/** Runs a peer to completion; never throws for a non-zero exit (callers assert on it). */
export function runPeer(cmd: string, args: readonly string[], o: RunOptions = {}): Promise<PeerResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: o.cwd, env: o.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 60_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8') });
    });
    child.stdin.on('error', () => { /* the peer may exit before reading stdin; its status tells */ });
    child.stdin.end(o.input ?? '');
  });
}

/** Like runPeer, but a non-zero exit is an error carrying the peer's stderr. */
export async function runPeerOk(cmd: string, args: readonly string[], o: RunOptions = {}): Promise<PeerResult> {
  const r = await runPeer(cmd, args, o);
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} exited with ${r.status ?? r.signal}: ${r.stderr.trim()}`);
  }
  return r;
}

/** A scratch directory with unique file names, removed by `cleanup()`. */
export class Workdir {
  readonly dir: string;
  #n = 0;

  constructor(prefix: string) {
    this.dir = mkdtempSync(join(tmpdir(), `kakitome-${prefix}-`));
  }

  /** A fresh path in the directory (the file is not created). */
  path(name: string): string {
    this.#n += 1;
    return join(this.dir, `${this.#n}-${name}`);
  }

  /** Writes `data` to a fresh file and returns its path. */
  write(name: string, data: string | Uint8Array): string {
    const p = this.path(name);
    writeFileSync(p, data);
    return p;
  }

  read(path: string): Buffer {
    return readFileSync(path);
  }

  cleanup(): void {
    // Retries: a daemon that is shutting down (gpg-agent writes random_seed on exit) can
    // add a file while the tree is being removed, which fails with ENOTEMPTY once.
    rmSync(this.dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
  }
}
