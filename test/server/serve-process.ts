/**
 * `kakitome serve` as a child process through the real launcher, for tests of
 * several nodes on one store and of SMTP submission: resolves once the server
 * logged every "listening" line it was asked to wait for, keeps its JSON log
 * lines, and stops it with SIGTERM (SIGKILL if it does not exit).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, runCli, storeHomeEnv } from '../cli/run-cli.ts';

export interface ServeProcess {
  child: ChildProcess;
  lines: Array<Record<string, unknown>>;
  /** The "listening" log lines, by their `listener` (http, smtp). */
  listening: Record<string, Record<string, unknown>>;
  exited: Promise<number | null>;
  stderr(): string;
  stop(): Promise<number | null>;
}

export function startServe(args: string[], env: NodeJS.ProcessEnv, listeners: string[] = ['http']): Promise<ServeProcess> {
  const child = spawn(process.execPath, [BIN, 'serve', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: Array<Record<string, unknown>> = [];
  const listening: Record<string, Record<string, unknown>> = {};
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const proc: ServeProcess = {
    child, lines, listening, exited, stderr: () => stderr,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        const code = await exited;
        clearTimeout(timer);
        return code;
      }
      return child.exitCode;
    },
  };
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (l) => {
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(l) as Record<string, unknown>;
      } catch {
        return;
      }
      lines.push(entry);
      if (entry.msg === 'listening') {
        listening[String(entry.listener ?? 'http')] = entry;
        if (listeners.every((k) => listening[k])) resolve(proc);
      }
    });
    void exited.then((code) => reject(new Error(`serve exited ${code}: ${stderr}`)));
  });
}

/** Runs `kakitome ARGS` in `env` and returns its standard output; a non-zero exit fails the test with its stderr. */
export async function kakitomeOk(env: NodeJS.ProcessEnv, ...args: string[]): Promise<string> {
  const r = await runCli(args, { env });
  assert.equal(r.status, 0, `kakitome ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.toString();
}

/**
 * A fresh store in `dir` through the CLI: the internal CA (its root in dir/root.pem),
 * tenant acme (acme.example) with the identity news@acme.example (P-256). Returns
 * the environment the CLI and serve run in.
 */
export async function acmeStore(dir: string, caName: string): Promise<NodeJS.ProcessEnv> {
  mkdirSync(join(dir, 'user'));
  const env = storeHomeEnv(join(dir, 'home'), join(dir, 'user'));
  await kakitomeOk(env, 'init');
  await kakitomeOk(env, 'ca', 'init', '--name', caName, '--key-type', 'p256', '-o', join(dir, 'root.pem'));
  await kakitomeOk(env, 'tenant', 'add', 'acme', '--domain', 'acme.example');
  await kakitomeOk(env, 'tenant', 'identity', 'acme', '--email', 'news@acme.example', '--key-type', 'p256');
  return env;
}
