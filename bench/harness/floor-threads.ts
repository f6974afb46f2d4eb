/**
 * What the floor servers under `kakitome serve` share (bench/serve-floor.ts for HTTP,
 * bench/smtp-floor.ts for SMTP, started by bench/serve-sign.ts --floor): serving threads
 * on one port, as serve's are, and the child process that runs them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

/**
 * In the floor's main thread: `threads` worker threads of `script` (default one per CPU),
 * each given `options` with the port and answering with the port it listens on; the first
 * picks a free port, the others share it (SO_REUSEPORT). Prints `{"port": N}` on standard
 * output once every thread listens; SIGTERM stops the process.
 */
export async function startFloorThreads(script: URL, options: object, threads = availableParallelism()): Promise<void> {
  const start = (port: number) =>
    new Promise<number>((resolve, reject) => {
      const w = new Worker(script, { workerData: { ...options, port } });
      w.once('message', (p: number) => resolve(p));
      w.once('error', reject);
    });
  const port = await start(0);
  for (let i = 1; i < threads; i++) await start(port);
  process.stdout.write(`${JSON.stringify({ port })}\n`);
  process.on('SIGTERM', () => process.exit(0));
}

/** In the bench: a floor server's process (`node NODE_ARGS SCRIPT ARGS`), once it printed its port. */
export async function spawnFloor(script: string, args: string[], nodeArgs: string[]): Promise<{ child: ChildProcess; port: number; stop(): Promise<number | null> }> {
  const child = spawn(process.execPath, [...nodeArgs, script, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (line) resolve((JSON.parse(line) as { port: number }).port);
    });
    child.once('exit', (code) => reject(new Error(`${script} exited ${code}`)));
  });
  return { child, port, stop: async () => (child.kill('SIGTERM'), exited) };
}
