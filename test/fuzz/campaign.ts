/**
 * A fuzzing campaign: the whole fuzz suite (test/fuzz/*.test.ts) run again and again,
 * each round with another KAKITOME_FUZZ_SEED, until the cases of all rounds add up to
 * --cases (ten million by default), or until a round fails. Not part of `npm test`
 * (its name does not end in .test.ts).
 *
 *   npx node test/fuzz/campaign.ts [--cases=10000000] [--round-seconds=300]
 *       [--seeds=20261206,7,...] [--jobs=2] [--log=FILE [--resume]]
 *
 * Each test file runs as its own `node --test` process, `--jobs` at a time. The first
 * round gives every target 400 cases; later rounds give each file as many cases per
 * target (KAKITOME_FUZZ_ITERATIONS) as it ran in about --round-seconds in the round
 * before, so that the cheap parsers (thousands of cases a second) get millions of
 * cases while the streaming differential targets (tens a second) still get their
 * share. Seeds not given are derived from the first (a campaign is replayable from its
 * log, which records each file's iterations).
 * A failing round stops the campaign and prints the node --test output, whose failure
 * message names the case (KAKITOME_FUZZ_ONLY=target:case) to replay with that round's
 * KAKITOME_FUZZ_SEED. Cases are counted by the fuzz kit itself (KAKITOME_FUZZ_REPORT),
 * not estimated. The log (JSON lines, one per round) is what docs/security.md quotes.
 * With --resume, a campaign interrupted (a session ended, the machine was needed) goes
 * on from its log: its cases so far count, its last round sizes the next, and a seed
 * that an earlier round of the log used is skipped, so no round repeats another.
 */
import { spawn } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, readdirSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const FUZZ_DIR = fileURLToPath(new URL('.', import.meta.url));

interface Options {
  cases: number;
  roundSeconds: number;
  seeds: number[];
  jobs: number;
  log: string | undefined;
  resume: boolean;
}

function parseArgs(argv: readonly string[]): Options {
  const arg = (name: string): string | undefined => argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const positive = (name: string, fallback: number): number => {
    const v = arg(name);
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`--${name} must be a positive integer, got ${v}`);
    return n;
  };
  const seeds = (arg('seeds') ?? String(Date.now() >>> 0)).split(',').map((s) => {
    const n = Number(s);
    if (!Number.isSafeInteger(n) || n < 0 || n > 0xffffffff) throw new Error(`--seeds takes 32-bit unsigned integers, got ${s}`);
    return n;
  });
  return { cases: positive('cases', 10_000_000), roundSeconds: positive('round-seconds', 300), seeds, jobs: positive('jobs', 2), log: arg('log'), resume: argv.includes('--resume') };
}

/** The seed of round `k`: the given ones first, then a fixed walk from the first (replayable). */
function seedOf(o: Options, k: number): number {
  if (k < o.seeds.length) return o.seeds[k]!;
  return (Math.imul(o.seeds[0]! ^ 0x5bd1e995, k + 1) + 0x9e3779b9) >>> 0;
}

const FIRST_ROUND_ITERATIONS = 400;
const MAX_ITERATIONS = 10_000_000;

interface FileRun {
  file: string;
  iterations: number;
  cases: number;
  targets: number;
  seconds: number;
  ok: boolean;
  /** Seconds spent in cases (the rest of `seconds` is set-up: keys, peers' seeds). */
  caseSeconds: number;
  output: string;
}

interface Round {
  seed: number;
  cases: number;
  seconds: number;
  ok: boolean;
  files: Omit<FileRun, 'output'>[];
}

function runFile(file: string, seed: number, iterations: number, dir: string): Promise<FileRun> {
  const report = join(dir, `${basename(file)}.jsonl`);
  const started = performance.now();
  const chunks: Buffer[] = [];
  return new Promise<FileRun>((resolve, reject) => {
    const child = spawn(process.execPath, ['--test', file], {
      env: { ...process.env, KAKITOME_FUZZ_SEED: String(seed), KAKITOME_FUZZ_ITERATIONS: String(iterations), KAKITOME_FUZZ_REPORT: report },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    child.stderr.on('data', (c: Buffer) => chunks.push(c));
    child.on('error', reject);
    child.on('close', (code) => {
      const seconds = (performance.now() - started) / 1000;
      const targets = new Set<string>();
      let cases = 0;
      let caseMs = 0;
      if (existsSync(report)) {
        for (const line of readFileSync(report, 'utf8').split('\n')) {
          if (line === '') continue;
          const r = JSON.parse(line) as { target: string; cases: number; ms: number };
          cases += r.cases;
          caseMs += r.ms;
          targets.add(r.target);
        }
      }
      resolve({ file: basename(file), iterations, cases, targets: targets.size, seconds: Math.round(seconds), caseSeconds: Math.round(caseMs / 100) / 10, ok: code === 0, output: Buffer.concat(chunks).toString('utf8') });
    });
  });
}

/** One round: every fuzz file with this seed, `jobs` processes at a time. */
async function runRound(seed: number, o: Options, iterationsFor: (file: string) => number): Promise<{ round: Round; failed: FileRun[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'kakitome-fuzz-campaign-'));
  const queue = readdirSync(FUZZ_DIR).filter((f) => f.endsWith('.test.ts')).map((f) => join(FUZZ_DIR, f));
  const started = performance.now();
  const runs: FileRun[] = [];
  const worker = async (): Promise<void> => {
    for (let file = queue.shift(); file !== undefined; file = queue.shift()) runs.push(await runFile(file, seed, iterationsFor(basename(file)), dir));
  };
  try {
    await Promise.all(Array.from({ length: o.jobs }, worker));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const failed = runs.filter((r) => !r.ok);
  const files = runs.map(({ output: _output, ...r }) => r).sort((a, b) => a.file.localeCompare(b.file));
  const cases = runs.reduce((n, r) => n + r.cases, 0);
  return { round: { seed, cases, seconds: Math.round((performance.now() - started) / 1000), ok: failed.length === 0, files }, failed };
}

/**
 * Iterations per file for the next round: a file's case time grows with its
 * iterations and its set-up does not, so N = (round seconds - set-up) / (case
 * seconds per iteration), as measured in this round.
 */
function nextBudget(round: Round, roundSeconds: number): (file: string) => number {
  const next = new Map(round.files.map((f) => {
    if (f.targets === 0 || f.caseSeconds <= 0) return [f.file, FIRST_ROUND_ITERATIONS] as const;
    const setUp = Math.max(0, f.seconds - f.caseSeconds);
    const perIteration = f.caseSeconds / f.iterations;
    return [f.file, Math.round(Math.max(roundSeconds - setUp, roundSeconds / 4) / perIteration)] as const;
  }));
  return (file) => Math.min(MAX_ITERATIONS, Math.max(FIRST_ROUND_ITERATIONS, next.get(file) ?? FIRST_ROUND_ITERATIONS));
}

async function main(): Promise<number> {
  const o = parseArgs(process.argv.slice(2));
  let total = 0;
  let budget = (_file: string): number => FIRST_ROUND_ITERATIONS;
  const usedSeeds = new Set<number>();
  if (o.resume) {
    if (o.log === undefined || !existsSync(o.log)) throw new Error('campaign: --resume needs --log=FILE naming an existing log');
    const earlier = readFileSync(o.log, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Round & { campaignCases: number });
    const last = earlier.at(-1);
    if (last === undefined) throw new Error(`campaign: ${o.log} has no round to resume from`);
    if (!earlier.every((r) => r.ok)) throw new Error(`campaign: ${o.log} records a failed round; replay that failure instead of resuming`);
    for (const r of earlier) usedSeeds.add(r.seed);
    total = last.campaignCases;
    budget = nextBudget(last, o.roundSeconds);
    process.stderr.write(`campaign: resuming from ${earlier.length} rounds, ${total.toLocaleString('en')} cases\n`);
  }
  for (let k = 0; total < o.cases; k++) {
    const seed = seedOf(o, k);
    if (usedSeeds.has(seed)) continue;
    usedSeeds.add(seed);
    const { round, failed } = await runRound(seed, o, budget);
    total += round.cases;
    budget = nextBudget(round, o.roundSeconds);
    if (o.log) appendFileSync(o.log, `${JSON.stringify({ at: new Date().toISOString(), ...round, campaignCases: total })}\n`);
    process.stderr.write(`campaign: round ${k + 1} seed ${seed}: ${round.ok ? 'no finding' : 'FAILED'}, ${round.cases.toLocaleString('en')} cases in ${round.seconds} s; ${total.toLocaleString('en')} of ${o.cases.toLocaleString('en')}\n`);
    if (!round.ok) {
      for (const f of failed) {
        process.stdout.write(f.output);
        process.stderr.write(`campaign: ${f.file} failed; replay with KAKITOME_FUZZ_SEED=${seed} KAKITOME_FUZZ_ITERATIONS=${f.iterations} KAKITOME_FUZZ_ONLY=<target:case from the failure above> npx node --test test/fuzz/${f.file}\n`);
      }
      return 1;
    }
    if (round.cases === 0) throw new Error('campaign: a round reported no cases (KAKITOME_FUZZ_REPORT not written?)');
  }
  process.stderr.write(`campaign: ${total.toLocaleString('en')} cases without a finding\n`);
  return 0;
}

process.exitCode = await main();
