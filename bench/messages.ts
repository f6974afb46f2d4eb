/**
 * Message-level figures (issue 3): a realistic 2 KB RFC 5322 message signed with
 * signMessage and verified with verifyMessage plus trust validation
 * (createSignerValidator, the test CA as anchor, revocation off, warm caches),
 * RSA-2048 and ECDSA P-256, on one core and on one worker per core; beside them
 * `openssl smime -sign` / `-verify` (a process per message) and the raw
 * crypto.sign/verify limit measured in the same run, in alternating rounds.
 */
import { randomBytes, sign, verify } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import { signMessage } from '../src/smime/sign-message.ts';
import { verifyMessage } from '../src/smime/verify-message.ts';
import { createSignerValidator } from '../src/pki/create-signer-validator.ts';
import type { Identity, TestPki } from '../test/helpers/pki.ts';
import type { BenchDir } from './harness/bench-data.ts';
import { median } from './harness/measure.ts';
import { runWorkers } from './harness/run-workers.ts';

const MESSAGE_WORKER = new URL('./message-worker.ts', import.meta.url);

export interface MessageRow {
  operation: 'sign' | 'verify';
  key: 'rsa2048' | 'p256';
  /** msg/s on one core (median of alternating rounds). */
  oneCore: number;
  /** CPU time per message on one core, µs (median of the same rounds): steadier than wall time on a busy machine. */
  cpuMicros?: number;
  /** CPU time per raw crypto.sign / crypto.verify, µs. */
  rawCpuMicros?: number;
  /** raw crypto.sign / crypto.verify of the same 2 KB on one core. */
  rawOneCore: number;
  /** oneCore / rawOneCore */
  ratio: number;
  /** msg/s with one worker_threads worker per core. */
  allCores: number;
  /** allCores / (one worker's rate): how it scales. */
  scaling: number;
  /** `openssl smime`, one process per message, msg/s (RSA and P-256 sign, RSA verify). */
  openssl: number;
}

export interface MessageFigures {
  cores: number;
  rows: MessageRow[];
}

/** A realistic 2 KB RFC 5322 plain-text message from `from` (so the identity check of validation passes). */
export function twoKilobyteEmail(from: string): Buffer {
  const head = [
    `From: Bench Sender <${from}>`,
    'To: Recipient <recipient@example.org>',
    'Subject: Quarterly figures and the meeting on Thursday',
    'Date: Mon, 23 Nov 2026 14:00:00 +0000',
    'Message-ID: <bench-0001@example.com>',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 7bit',
    '',
    '',
  ].join('\r\n');
  const para = 'Hello,\r\n\r\nplease find below the notes from the review. The figures for the quarter are in line with\r\nthe forecast; the remaining items are listed for Thursday. Reference ' + randomBytes(6).toString('hex') + '.\r\n\r\n';
  let body = '';
  while (Buffer.byteLength(head + body) < 2048) body += para;
  return Buffer.from((head + body).slice(0, 2048 - 2) + '\r\n');
}

/** Alternating rounds of async operations, so a noisy neighbour slows all alike: median msg/s and CPU µs per op. */
async function interleaved(ops: Record<string, () => unknown>, ms: number, rounds: number): Promise<Record<string, { rate: number; cpu: number }>> {
  const rate = async (op: () => unknown, budget: number): Promise<{ rate: number; cpu: number }> => {
    let n = 0;
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    let t = t0;
    while (t - t0 < budget) {
      await op();
      n++;
      t = performance.now();
    }
    const c = process.cpuUsage(c0);
    return { rate: (n * 1000) / (t - t0), cpu: (c.user + c.system) / n };
  };
  const all: Record<string, Array<{ rate: number; cpu: number }>> = {};
  for (const k of Object.keys(ops)) {
    await rate(ops[k]!, 200);
    all[k] = [];
  }
  for (let r = 0; r < rounds; r++) for (const k of Object.keys(ops)) all[k]!.push(await rate(ops[k]!, ms));
  return Object.fromEntries(Object.entries(all).map(([k, v]) => [k, { rate: median(v.map((x) => x.rate)), cpu: median(v.map((x) => x.cpu)) }]));
}

function opensslRate(n: number, args: string[]): number {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const r = spawnSync('openssl', args, { stdio: 'ignore' });
    if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed`);
  }
  return (n * 1000) / (performance.now() - t0);
}

export async function measureMessages(dir: BenchDir, pki: TestPki, quick: boolean, opts: { openssl?: boolean } = {}): Promise<MessageFigures> {
  const ms = quick ? 300 : 1000;
  const rounds = quick ? 3 : 5;
  const workerMs = quick ? 500 : 2000;
  const cores = availableParallelism();
  const validateSigner = createSignerValidator({ anchors: [pki.caCert], revocation: { mode: 'off' }, fetchCaIssuers: false });
  const rows: MessageRow[] = [];
  for (const [keyName, id] of [['rsa2048', pki.identity('rsa2048', 'bench-msg-rsa')], ['p256', pki.identity('p256', 'bench-msg-ec')]] as Array<[MessageRow['key'], Identity]>) {
    const msg = twoKilobyteEmail(id.email);
    const signOptions = { signers: [{ certificate: id.cert, key: id.key }] };
    const signed = signMessage(msg, signOptions);
    const first = await verifyMessage(signed, { validateSigner });
    if (first.status !== 'trusted') throw new Error(`bench: ${keyName} message verdict ${first.status}: ${first.summary}`);
    const sig = sign('sha256', msg, id.key);
    const pub = id.cert.publicKey;
    const r = await interleaved({
      sign: () => signMessage(msg, signOptions),
      rawSign: () => sign('sha256', msg, id.key),
      verify: async () => {
        if ((await verifyMessage(signed, { validateSigner })).status !== 'trusted') throw new Error('bench: verdict changed');
      },
      rawVerify: () => verify('sha256', msg, pub, sig),
    }, ms, rounds);

    const msgPath = dir.file(`msg-${keyName}.eml`);
    const signedPath = dir.file(`msg-${keyName}.signed.eml`);
    writeFileSync(msgPath, msg);
    const n = quick ? 15 : 50;
    const withOpenssl = opts.openssl ?? true;
    const osSign = withOpenssl ? opensslRate(n, ['smime', '-sign', '-md', 'sha256', '-in', msgPath, '-signer', id.certPath, '-inkey', id.keyPath, '-out', signedPath]) : NaN;
    const osVerify = withOpenssl ? opensslRate(n, ['smime', '-verify', '-in', signedPath, '-CAfile', pki.caPath, '-out', dir.file('msg.out')]) : NaN;

    for (const op of ['sign', 'verify'] as const) {
      const data = { op, certPath: id.certPath, keyPath: id.keyPath, caPath: pki.caPath, email: id.email, ms: workerMs, warmupMs: 300 };
      const one = await runWorkers(MESSAGE_WORKER, 1, data);
      const all = await runWorkers(MESSAGE_WORKER, cores, data);
      const mine = op === 'sign' ? r.sign! : r.verify!;
      const raw = op === 'sign' ? r.rawSign! : r.rawVerify!;
      rows.push({
        operation: op,
        key: keyName,
        oneCore: mine.rate,
        cpuMicros: mine.cpu,
        rawOneCore: raw.rate,
        rawCpuMicros: raw.cpu,
        ratio: mine.rate / raw.rate,
        allCores: all,
        scaling: all / one,
        openssl: op === 'sign' ? osSign : osVerify,
      });
    }
  }
  return { cores, rows };
}

// Entry point for the 2 KB figures alone (bench/run.ts --only=messages also streams a large attachment):
//   npx node bench/messages.ts [--quick] [--no-openssl] [--out=FILE]
if (import.meta.main) {
  const { loadavg } = await import('node:os');
  const { TestPki: Pki } = await import('../test/helpers/pki.ts');
  const { createBenchDir } = await import('./harness/bench-data.ts');
  const args = process.argv.slice(2);
  const quick = args.includes('--quick');
  const out = args.find((a) => a.startsWith('--out='))?.slice(6);
  const pki = new Pki('Kakitome Bench Root');
  const dir = await createBenchDir();
  const loadBefore = loadavg()[0]!;
  try {
    const figures = await measureMessages(dir, pki, quick, { openssl: !args.includes('--no-openssl') });
    const loadAfter = loadavg()[0]!;
    const f = (n: number, d = 0) => (Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d }) : '-');
    console.log(`load average ${f(loadBefore, 2)} -> ${f(loadAfter, 2)}; ${figures.cores} cores`);
    console.log('operation        | msg/s 1 core | CPU us/msg | raw/s  | raw CPU us | ratio | workers msg/s (scaling) | openssl msg/s');
    for (const r of figures.rows) {
      console.log(`${`${r.operation} ${r.key}`.padEnd(16)} | ${f(r.oneCore).padStart(12)} | ${f(r.cpuMicros ?? NaN, 1).padStart(10)} | ${f(r.rawOneCore).padStart(6)} | ${f(r.rawCpuMicros ?? NaN, 1).padStart(10)} | ${f(100 * r.ratio)}% | ${f(r.allCores)} (${f(r.scaling, 2)}x) | ${f(r.openssl)}`);
    }
    if (out) writeFileSync(out, `${JSON.stringify({ date: new Date().toISOString(), quick, load: { before: loadBefore, after: loadAfter }, ...figures }, null, 2)}\n`);
  } finally {
    await dir.cleanup();
    pki.cleanup();
  }
}
