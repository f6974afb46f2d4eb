/**
 * Counts CLI commands that do not end: the exit deadlock of nodejs/node#54918 (a V8
 * thread waiting for a collection while process.exit() joins it; docs/cli.md, "Exit
 * status"). Runs many short commands, CONCURRENCY at a time, each killed (SIGKILL)
 * if it has not ended BOUND seconds after it started: a batch of 300 messages from
 * a directory and from an mbox, one message signed to standard output, and a verify.
 * Each must end with its exit status and its output (the batch's summary line); one
 * killed at the bound counts as hungAfterOutput when its output was already complete
 * (the exit's hang), else only as hung (still at work: slow, under load or V8's flags).
 *
 *   npx node bench/exit-stress.ts [--runs=N] [--concurrency=C] [--bound=S] [--budget=S] [--bin=PATH] [--node-flag=FLAG ...]
 *
 * --budget: start no command after S seconds (default: none); the JSON says how many ran.
 * --bin: the launcher to run (default this checkout's bin/kakitome.js; a worktree of
 * an older commit compares the ends). --node-flag: a Node or V8 flag for every
 * command, e.g. --node-flag=--stress-concurrent-allocation (a V8 thread that asks for
 * collections all the time) or --node-flag=--max-old-space-size=32, which make the
 * deadlock's window far likelier than in real use. Prints one JSON line.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { TestPki } from '../test/helpers/pki.ts';
import { draftMessage } from '../test/cli/run-cli.ts';
import { formatMboxEntry } from '../src/mime/mbox.ts';

const arg = (name: string, fallback: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
const runs = Number(arg('runs', '40'));
const concurrency = Number(arg('concurrency', '2'));
const boundMs = Number(arg('bound', '60')) * 1000;
const bin = arg('bin', fileURLToPath(new URL('../bin/kakitome.js', import.meta.url)));
const budgetMs = Number(arg('budget', '0')) * 1000;
const nodeFlags = process.argv.filter((a) => a.startsWith('--node-flag=')).map((a) => a.slice('--node-flag='.length));

const pki = new TestPki('Exit Stress Root');
const alice = pki.identity('rsa2048', 'alice');
const signer = ['--cert', alice.certPath, '--key', alice.keyPath];
const draft = join(pki.dir, 'draft.eml');
writeFileSync(draft, draftMessage(alice.email, 'bob@example.com', 'exit stress'));
const inDir = join(pki.dir, 'outbox');
mkdirSync(inDir);
const messages = Array.from({ length: 300 }, (_, i) => draftMessage(alice.email, 'bob@example.com', `exit stress ${i}`));
messages.forEach((m, i) => writeFileSync(join(inDir, `m${i}.eml`), m));
const mbox = join(pki.dir, 'outbox.mbox');
writeFileSync(mbox, Buffer.concat(messages.map((m) => formatMboxEntry(`From ${alice.email} Thu Jan  1 00:00:00 1970`, m))));
const signed = join(pki.dir, 'signed.eml');

interface Outcome { kind: string; hung: boolean; hungAfterOutput: boolean; status: number | null; signal: string | null; complete: boolean; seconds: number }

function run(kind: string, args: string[], complete: (stdout: string, stderr: string) => boolean): Promise<Outcome> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeFlags, bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let hung = false;
    let hungAfterOutput = false;
    // Past the bound: killed, and told apart: a command still at work (slow) from one whose output was complete (the exit hang).
    const timer = setTimeout(() => { hung = true; hungAfterOutput = complete(stdout, stderr); child.kill('SIGKILL'); }, boundMs);
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      resolve({ kind, hung, hungAfterOutput, status, signal, complete: complete(stdout, stderr), seconds: (performance.now() - t0) / 1000 });
    });
  });
}

const kinds: Array<(n: number) => Promise<Outcome>> = [
  (n) => run('directory batch', ['sign', ...signer, '-i', inDir, '-o', join(pki.dir, `out-${n}`)], (_, e) => / 300 of 300 messages signed, 0 failed /.test(e)),
  (n) => run('mbox batch', ['sign', ...signer, '-i', mbox, '-o', join(pki.dir, `out-${n}.mbox`)], (_, e) => / 300 of 300 messages signed, 0 failed /.test(e)),
  () => run('sign one', ['sign', ...signer, '-i', draft], (o) => /application\/pkcs7-signature[\s\S]*--\r?\n$/.test(o)),
  () => run('verify', ['verify', '--ca', pki.caPath, '--revocation', 'off', '-i', signed], (o, e) => /this is a test message\.\r\n$/.test(o) && /signed at: /.test(e)),
];

try {
  const prepared = await run('prepare', ['sign', ...signer, '-i', draft, '-o', signed], () => true);
  if (prepared.status !== 0) throw new Error('could not sign the message to verify');
  const outcomes: Outcome[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < runs && !(budgetMs > 0 && performance.now() - started > budgetMs)) {
      const n = next++;
      outcomes.push(await kinds[n % kinds.length]!(n));
    }
  }));
  const hung = outcomes.filter((o) => o.hung);
  const failed = outcomes.filter((o) => !o.hung && (o.status !== 0 || !o.complete));
  console.log(JSON.stringify({
    bin, nodeFlags, runs: outcomes.length, concurrency, boundSeconds: boundMs / 1000, load: loadavg()[0],
    seconds: Math.round((performance.now() - started) / 100) / 10,
    hung: hung.length, hungKinds: hung.map((o) => o.kind),
    // The deadlock's signature: the whole output written, the process still there.
    hungAfterOutput: hung.filter((o) => o.hungAfterOutput).length,
    failed: failed.length, failures: failed.slice(0, 5).map((o) => ({ kind: o.kind, status: o.status, signal: o.signal, complete: o.complete })),
  }));
} finally {
  pki.cleanup();
}
