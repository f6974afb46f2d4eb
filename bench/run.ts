/**
 * Kakitome benchmarks: `npx node bench/run.ts [--quick] [--only=raw,small,openssl,scaling,large,messages,clibatch,store] [--batch-count=N] [--batch-dir=DIR] [--out=FILE]`
 *
 * Runs each scenario beside its reference (the raw node:crypto limit and `openssl
 * cms`, measured in the same run on the same machine), prints a table with the
 * ratios and the brief's targets, and writes every figure as JSON (default
 * bench/results/latest.json). Inputs and keys are generated into a temporary
 * directory and deleted afterwards. Not part of `npm test`.
 */
import { cpus, totalmem, availableParallelism, platform, release, loadavg } from 'node:os';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { TestPki } from '../test/helpers/pki.ts';
import { createBenchDir } from './harness/bench-data.ts';
import { measureRawCrypto, type RawCryptoFigures } from './raw-crypto.ts';
import { measureSmallMessages, type SmallMessageFigures } from './small-messages.ts';
import { measureOpensslSmall, type OpensslSmallFigures } from './openssl-small.ts';
import { measureSigningScaling, type ScalingFigures } from './sign-all-cores.ts';
import { measureLargeContent, type LargeFigures } from './large-content.ts';
import { measureMessages, type MessageFigures } from './messages.ts';
import { measureLargeMessages, type LargeMessageFigures } from './large-messages.ts';
import { measureCliBatch, type CliBatchFigures } from './cli-batch.ts';
import { measureStoreKeys, type StoreKeyFigures } from './store-keys.ts';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const only = args.find((a) => a.startsWith('--only='))?.slice(7).split(',');
const out = resolve(args.find((a) => a.startsWith('--out='))?.slice(6) ?? new URL('./results/latest.json', import.meta.url).pathname);
const want = (s: string) => !only || only.includes(s);
const batchCount = args.find((a) => a.startsWith('--batch-count='))?.slice(14);
const batchDir = args.find((a) => a.startsWith('--batch-dir='))?.slice(12);

interface Results {
  date: string;
  quick: boolean;
  machine: { cpu: string; cores: number; memoryGiB: number; os: string; node: string; nodeOpenssl: string; opensslCli: string };
  /** 1-minute load average before and after: other work on the machine skews every figure. */
  load: { before: number; after: number };
  raw?: RawCryptoFigures;
  small?: SmallMessageFigures;
  opensslSmall?: OpensslSmallFigures;
  scaling?: ScalingFigures;
  large?: LargeFigures;
  messages?: MessageFigures;
  largeMessages?: LargeMessageFigures;
  cliBatch?: CliBatchFigures;
  storeKeys?: StoreKeyFigures;
}

const results: Results = {
  date: new Date().toISOString(),
  quick,
  machine: {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: availableParallelism(),
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    os: `${platform()} ${release()}`,
    node: process.version,
    nodeOpenssl: process.versions.openssl ?? 'unknown',
    opensslCli: execFileSync('openssl', ['version'], { encoding: 'utf8' }).trim(),
  },
  load: { before: loadavg()[0]!, after: NaN },
};

const log = (s: string) => process.stderr.write(`bench: ${s}\n`);
const pki = new TestPki('Kakitome Bench Root');
const dir = await createBenchDir();
try {
  if (want('raw')) {
    log('raw node:crypto limits');
    results.raw = measureRawCrypto(quick);
  }
  if (want('small')) {
    log('2 KB messages, in-memory APIs (generating 100 recipient keys)');
    results.small = measureSmallMessages(pki, quick);
  }
  if (want('openssl')) {
    log('2 KB messages, openssl cms (a process per message)');
    results.opensslSmall = measureOpensslSmall(dir, pki, pki.identity('rsa2048', 'bench-rsa'), pki.identity('p256', 'bench-ec'), quick);
  }
  if (want('scaling')) {
    log('2 KB RSA-2048 signing, one worker vs one worker per core');
    const id = pki.identity('rsa2048', 'bench-rsa');
    results.scaling = await measureSigningScaling(id.certPath, id.keyPath, quick);
  }
  if (want('large')) {
    log(`large content (${quick ? '32 MiB' : '200 MiB and 1 GiB'}), Kakitome and openssl cms as child processes`);
    results.large = await measureLargeContent(dir, pki, pki.identity('rsa2048', 'bench-large'), quick);
  }
  if (want('messages')) {
    log('2 KB RFC 5322 messages: signMessage / verifyMessage (trust validation, warm), 1 core and all cores, openssl smime');
    results.messages = await measureMessages(dir, pki, quick);
    log(`message with a ${quick ? '32 MiB' : '1 GiB'} attachment: sign, encrypt, verify, decrypt as child processes`);
    results.largeMessages = await measureLargeMessages(dir, pki, pki.identity('rsa2048', 'bench-large-msg'), quick);
  }
  if (want('clibatch')) {
    log(`CLI batches (directory and mbox) of ${batchCount ?? (quick ? '2,000' : '20,000')} 2 KB messages beside raw RSA-2048 x cores and signMessage`);
    results.cliBatch = await measureCliBatch(dir, pki, { quick, ...(batchCount ? { count: Number(batchCount) } : {}), ...(batchDir ? { batchDir } : {}) });
  }
  if (want('store')) {
    log('key store: decrypt-key lookups and uses (audited) on SQLite and PostgreSQL (fsync on), beside a raw lookup');
    results.storeKeys = await measureStoreKeys(pki, quick);
  }
} finally {
  await dir.cleanup();
  pki.cleanup();
}

results.load.after = loadavg()[0]!;

// ------------------------------------------------------------------ report
const f = (n: number, d = 0) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
const rows: string[][] = [['scenario', 'Kakitome', 'reference', 'ratio', 'target', 'met']];
const add = (name: string, k: string, ref: string, ratio: string, target: string, met: boolean | undefined) => rows.push([name, k, ref, ratio, target, met === undefined ? '' : met ? 'yes' : 'NO']);
const { raw, small, opensslSmall: os, scaling, large } = results;
if (small) {
  const p = (x: { kakitome: number; raw: number; ratio: number; bestRatio: number }) => [f(x.kakitome), `raw ${f(x.raw)}`, `${f(100 * x.ratio)}% (best ${f(100 * x.bestRatio)}%)`] as const;
  add('sign 2 KB RSA-2048 (msg/s, 1 core)', ...p(small.signRsa2048), '>= 90% of raw', small.signRsa2048.ratio >= 0.9);
  add('sign 2 KB ECDSA P-256 (msg/s, 1 core)', ...p(small.signP256), '>= 50% of raw', small.signP256.ratio >= 0.5);
  add('verify 2 KB RSA-2048 (msg/s, 1 core)', ...p(small.verifyRsa2048), '>= 10,000/s', small.verifyRsa2048.kakitome >= 10_000);
  add('verify 2 KB ECDSA P-256 (msg/s, 1 core)', ...p(small.verifyP256), '', undefined);
  add('encrypt 2 KB, 100 RSA recipients v1.5 (msg/s)', ...p(small.encrypt100Pkcs1), '>= 300/s', small.encrypt100Pkcs1.kakitome >= 300);
  add('encrypt 2 KB, 100 RSA recipients OAEP (msg/s)', ...p(small.encrypt100Oaep), '>= 300/s', small.encrypt100Oaep.kakitome >= 300);
}
if (os) {
  add('openssl cms -sign 2 KB RSA (msg/s, process each)', f(small?.signRsa2048.kakitome ?? 0), `openssl ${f(os.signRsa2048PerSec, 1)}`, small ? `${f(small.signRsa2048.kakitome / os.signRsa2048PerSec, 1)}x` : '', '', undefined);
  add('openssl cms -sign 2 KB P-256 (msg/s, process each)', f(small?.signP256.kakitome ?? 0), `openssl ${f(os.signP256PerSec, 1)}`, small ? `${f(small.signP256.kakitome / os.signP256PerSec, 1)}x` : '', '', undefined);
  add('openssl cms -verify 2 KB RSA (msg/s, process each)', f(small?.verifyRsa2048.kakitome ?? 0), `openssl ${f(os.verifyRsa2048PerSec, 1)}`, small ? `${f(small.verifyRsa2048.kakitome / os.verifyRsa2048PerSec, 1)}x` : '', '', undefined);
}
if (scaling) {
  add(`sign 2 KB RSA-2048, ${scaling.cores} workers (msg/s)`, f(scaling.allWorkersPerSec), `1 worker ${f(scaling.oneWorkerPerSec)}`, `${f(scaling.scaling, 2)}x`, `~${scaling.cores}x (linear)`, scaling.scaling >= 0.85 * scaling.cores);
}
if (raw) {
  add('raw SHA-256 / AES-256-GCM (GB/s)', '', `${f(raw.sha256GBps, 2)} / ${f(raw.aes256GcmGBps, 2)}`, '', '', undefined);
}
if (large) {
  for (const r of large.rows) {
    const producing = r.operation === 'sign' || r.operation === 'encrypt';
    add(
      `${r.operation} ${r.sizeMiB} MiB: process s [op s] (peak RSS MiB)`,
      `${f(r.kakitomeSeconds, 2)} [${f(r.kakitomeOpSeconds, 2)}] (${f(r.kakitomeRssMiB)})`,
      `openssl ${f(r.opensslSeconds, 2)} (${f(r.opensslRssMiB)})`,
      `${f(r.speedup, 2)}x`,
      producing ? '<= openssl time, RSS < 128' : '>= 2x openssl, RSS < 128',
      (producing ? r.speedup >= 1 : r.speedup >= 2) && r.kakitomeRssMiB < 128,
    );
  }
  add('Node child signing 1 KB: s (peak RSS MiB)', `${f(large.idleSeconds, 2)} (${f(large.idleRssMiB)})`, '', '', '', undefined);
  for (const g of large.oneGiB) add(`${g.operation} 1 GiB: s (peak RSS MiB)`, `${f(g.seconds, 2)} (${f(g.rssMiB)})`, '', '', 'RSS < 128', g.rssMiB < 128);
}
if (results.messages) {
  const targets: Record<string, [string, (r: NonNullable<Results['messages']>['rows'][number]) => boolean | undefined]> = {
    'sign rsa2048': ['>= 90% of raw', (r) => r.ratio >= 0.9],
    'sign p256': ['>= 50% of raw', (r) => r.ratio >= 0.5],
    'verify rsa2048': ['>= 10,000/s', (r) => r.oneCore >= 10_000],
    'verify p256': ['', () => undefined],
  };
  for (const r of results.messages.rows) {
    const label = `${r.operation}Message 2 KB ${r.key === 'rsa2048' ? 'RSA-2048' : 'ECDSA P-256'}`;
    const [target, met] = targets[`${r.operation} ${r.key}`]!;
    add(`${label} (msg/s, 1 core)`, f(r.oneCore), `raw ${f(r.rawOneCore)}`, `${f(100 * r.ratio)}%`, target, met(r));
    add(`${label} (msg/s, ${results.messages.cores} cores)`, f(r.allCores), `1 worker x${f(r.scaling, 2)}`, `${f(100 * r.allCores / (r.rawOneCore * results.messages.cores))}% of raw x${results.messages.cores}`, '~linear', r.scaling >= 0.85 * results.messages.cores);
    add(`${label} vs openssl smime (process each)`, f(r.oneCore), `openssl ${f(r.openssl, 1)}`, `${f(r.oneCore / r.openssl, 1)}x`, '', undefined);
  }
}
if (results.largeMessages) {
  for (const r of results.largeMessages.rows) {
    add(`${r.operation} message ${r.sizeMiB} MiB attachment: s (peak RSS MiB)`, `${f(r.kakitomeSeconds, 2)} (${f(r.kakitomeRssMiB)})`, r.opensslSeconds === undefined ? '' : `openssl ${f(r.opensslSeconds, 2)} (${f(r.opensslRssMiB ?? 0)})`, r.opensslSeconds === undefined ? '' : `${f(r.opensslSeconds / r.kakitomeSeconds, 2)}x`, 'RSS < 128', r.kakitomeRssMiB < 128);
  }
}
if (results.cliBatch) {
  const c = results.cliBatch;
  const m = c.median;
  const rawCores = `raw ${f(m.rawOneCore)} x ${c.cores}`;
  add(`signMessage 2 KB RSA-2048 (msg/s, 1 core; same run)`, f(m.signMessageOneCore), `raw ${f(m.rawMainThread)}`, `${f(100 * m.signMessageRatio)}%`, '>= 90% of raw', m.signMessageRatio >= 0.9);
  add(`raw RSA-2048 on ${c.cores} workers at once (sign/s)`, f(m.rawAllCores), rawCores, `${f(100 * m.coreIndependence)}% (cores independent: 100%)`, '', undefined);
  add(`kakitome sign -i DIR -o OUTDIR, ${f(c.count)} msgs (msg/s, process)`, f(m.directoryMsgPerSec), rawCores, `${f(100 * m.directoryRatio)}% (CPU ${f(100 * m.directoryCpuEfficiency)}%; ${f(100 * m.directoryRatioToRawAllCores)}% of all cores at once)`, '>= 75% of raw x cores', m.directoryRatio >= 0.75);
  add(`kakitome sign -i FILE.mbox -o OUT.mbox, ${f(c.count)} msgs (msg/s)`, f(m.mboxMsgPerSec), rawCores, `${f(100 * m.mboxRatio)}% (CPU ${f(100 * m.mboxCpuEfficiency)}%; ${f(100 * m.mboxRatioToRawAllCores)}% of all cores at once)`, '>= 75% of raw x cores', m.mboxRatio >= 0.75);
}

if (results.storeKeys) {
  const s = results.storeKeys;
  for (const r of s.rows) {
    add(
      `key lookup+use, ${r.engine === 'sqlite' ? 'SQLite' : 'PostgreSQL'}, ${r.concurrency} in flight (per CPU-s [wall/s])`,
      `${f(r.perCore)} [${f(r.lookupsPerSec)}]`,
      `raw ${f(r.rawPerCore)} [${f(r.rawPerSec)}]`,
      `${f(100 * r.ratioToTarget)}% of target`,
      '>= 10,000/s per core',
      r.ratioToTarget >= 1,
    );
  }
  add('one audit row per commit (the old cost of a key use, /s)', '', `SQLite ${f(s.commitPerRowPerSec.sqlite)}, PostgreSQL ${f(s.commitPerRowPerSec.postgres)}`, '', '', undefined);
}

const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
console.log(`Kakitome benchmarks ${results.date}${quick ? ' (quick)' : ''}`);
console.log(`${results.machine.cpu}, ${results.machine.cores} cores, ${results.machine.memoryGiB} GiB; Node ${results.machine.node} (OpenSSL ${results.machine.nodeOpenssl}); ${results.machine.opensslCli}`);
console.log(`load average (1 min) before ${f(results.load.before, 2)}, after ${f(results.load.after, 2)} on ${results.machine.cores} cores${results.load.before > 1 || results.load.after > 1 ? ': the machine was busy, figures are pessimistic' : ''}`);
console.log(line(rows[0]!));
console.log(widths.map((w) => '-'.repeat(w)).join('  '));
for (const r of rows.slice(1)) console.log(line(r));
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, JSON.stringify(results, null, 2) + '\n');
console.log(`\nresults written to ${out}`);
