/**
 * Runs a command as a child process under GNU time (`/usr/bin/time -v`) and reports
 * its wall time and peak resident set size. Both Kakitome (a Node child) and
 * `openssl cms` are measured the same way, start-up included, so the ratios compare
 * like with like.
 */
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';

export interface ChildRun {
  seconds: number;
  maxRssMiB: number;
  /** CPU time of the child (all its threads), from GNU time. */
  userSeconds: number;
  systemSeconds: number;
  exitCode: number;
  stdout: string;
  stderr: string;
}

const GNU_TIME = '/usr/bin/time';

export async function runMeasured(cmd: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<ChildRun> {
  const t0 = performance.now();
  const child = spawn(GNU_TIME, ['-v', cmd, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? process.env });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  child.stdin.end(opts.input ?? '');
  const exitCode: number = await new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve(code ?? -1));
  });
  const seconds = (performance.now() - t0) / 1000;
  const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(stderr);
  if (!rss) throw new Error(`could not read the peak RSS of ${cmd}: ${stderr.slice(-400)}`);
  const wall = /Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)/.exec(stderr);
  const measured = wall ? Number(wall[1] ?? 0) * 3600 + Number(wall[2]) * 60 + Number(wall[3]) : seconds;
  const cpu = (label: string) => Number(new RegExp(`${label} time \\(seconds\\): ([\\d.]+)`).exec(stderr)?.[1] ?? NaN);
  return { seconds: Math.min(seconds, measured > 0 ? measured : seconds), maxRssMiB: Number(rss[1]) / 1024, userSeconds: cpu('User'), systemSeconds: cpu('System'), exitCode, stdout, stderr };
}

/** Runs a command `rounds` times and keeps the run with the median time; fails on a non-zero exit. */
export async function runMedian(cmd: string, args: string[], rounds: number, env?: NodeJS.ProcessEnv): Promise<ChildRun & { rounds: number[] }> {
  const runs: ChildRun[] = [];
  for (let r = 0; r < rounds; r++) {
    const run = await runMeasured(cmd, args, { env });
    if (run.exitCode !== 0) throw new Error(`${cmd} ${args.join(' ')} exited with ${run.exitCode}: ${run.stderr.slice(0, 600)}`);
    runs.push(run);
  }
  const sorted = [...runs].sort((a, b) => a.seconds - b.seconds);
  const mid = sorted[sorted.length >> 1]!;
  return { ...mid, maxRssMiB: Math.max(...runs.map((r) => r.maxRssMiB)), rounds: runs.map((r) => r.seconds) };
}
