/**
 * The library's own work around the signature when signing a small message: the
 * bench's 2 KB message split (`splitMessage`) and signed (`signSplitMessage`,
 * multipart/signed, the signer's certificate and the bench CA as second
 * certificate, as bench/serve-floor.ts and the service sign it), against raw
 * `crypto.sign` of the same 2 KB with the same key.
 *
 *   node bench/sign-overhead.ts --setup=DIR
 *     writes a P-256 and an RSA-2048 identity under a throwaway CA, and the message,
 *     into DIR (once: the same inputs for every later run)
 *   node bench/sign-overhead.ts --dir=DIR --key=p256 --op=lib|raw --count=N [--warm-up=W]
 *     W operations, then N: for `valgrind --tool=callgrind --smc-check=all`, whose
 *     instruction counts of two values of N give the slope per message (start-up and
 *     warm-up cancel)
 *   node bench/sign-overhead.ts --dir=DIR --key=p256 --time [--builds=ROOT,ROOT...] [--rounds=R] [--ms=MS]
 *     alternating rounds in one process of raw crypto.sign and each build's
 *     split + signSplitMessage (each ROOT's src/ loaded on its own: the same
 *     message, keys and minutes), thread CPU µs a message; "beyond" is a build's
 *     figure minus the same run's raw one
 *   node bench/sign-overhead.ts --dir=DIR --key=p256 --heap [--count=N] [--warm-up=W]
 *     bytes allocated a message: V8's sampling heap profiler over N messages after W,
 *     keeping the objects scavenges and full collections took (what a message
 *     allocates, not what survives), by allocating function
 *
 * The figures: docs/performance.md, "Session 14".
 */
import { sign, createPrivateKey, type KeyObject } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync, copyFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { threadCpuUsage } from 'node:process';

const arg = (name: string): string | undefined => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const flag = (name: string): boolean => process.argv.includes(`--${name}`);

const setup = arg('setup');
if (setup) {
  const { TestPki } = await import('../test/helpers/pki.ts');
  const { twoKilobyteEmail } = await import('./messages.ts');
  mkdirSync(setup, { recursive: true });
  const pki = new TestPki('Kakitome Bench Root');
  for (const kind of ['p256', 'rsa2048'] as const) {
    const id = pki.identity(kind, `bench-${kind}`);
    copyFileSync(id.certPath, join(setup, `${kind}.pem`));
    copyFileSync(id.keyPath, join(setup, `${kind}.key`));
  }
  copyFileSync(pki.caPath, join(setup, 'ca.pem'));
  writeFileSync(join(setup, 'message.eml'), twoKilobyteEmail('bench-p256@example.com'));
  pki.cleanup();
  process.exit(0);
}

const dir = arg('dir');
if (!dir) throw new Error('--dir=DIR (made by --setup=DIR) is needed');
const kind = arg('key') ?? 'p256';
const message = readFileSync(join(dir, 'message.eml'));
const keyPem = readFileSync(join(dir, `${kind}.key`));
const certPem = readFileSync(join(dir, `${kind}.pem`));
const caPem = readFileSync(join(dir, 'ca.pem'));

interface Build {
  name: string;
  once(): Buffer;
}

/** One build's signing of the message: its own modules, its own parsed certificates and key object. */
async function loadBuild(root: string): Promise<Build> {
  const src = (p: string) => pathToFileURL(join(resolve(root), 'src', p)).href;
  const { signSplitMessage } = (await import(src('smime/sign-message.ts'))) as typeof import('../src/smime/sign-message.ts');
  const { splitMessage } = (await import(src('smime/split-message.ts'))) as typeof import('../src/smime/split-message.ts');
  const { parseCertificate } = (await import(src('x509/certificate.ts'))) as typeof import('../src/x509/certificate.ts');
  const { DEFAULT_LIMITS } = (await import(src('limits.ts'))) as typeof import('../src/limits.ts');
  const certificate = parseCertificate(certPem);
  const key = createPrivateKey(keyPem);
  const options = { signers: [{ certificate, key }], certificates: [certificate, parseCertificate(caPem)], opaque: false };
  return { name: root, once: () => signSplitMessage(splitMessage(message, DEFAULT_LIMITS), options) };
}

const rawKey: KeyObject = createPrivateKey(keyPem);
const digest = kind.startsWith('rsa') || kind === 'p256' ? 'sha256' : null;
const raw = (): Buffer => sign(digest, message, rawKey);

if (flag('time')) {
  const builds = await Promise.all((arg('builds') ?? new URL('..', import.meta.url).pathname).split(',').map(loadBuild));
  const ops: Array<{ name: string; once(): unknown }> = [{ name: 'raw', once: raw }, ...builds];
  const rounds = Number(arg('rounds') ?? 8);
  const ms = Number(arg('ms') ?? 1500);
  const perRound = (op: { once(): unknown }, budget: number): number => {
    const c0 = threadCpuUsage();
    const t0 = performance.now();
    let n = 0;
    while (performance.now() - t0 < budget) {
      for (let i = 0; i < 20; i++) op.once();
      n += 20;
    }
    const c = threadCpuUsage(c0);
    return (c.user + c.system) / n;
  };
  for (const op of ops) perRound(op, 2000); // warm-up
  const figures = new Map<string, number[]>(ops.map((o) => [o.name, []]));
  for (let r = 0; r < rounds; r++) {
    // Rotated order per round, so no build always runs right after raw.
    for (let i = 0; i < ops.length; i++) {
      const op = ops[(i + r) % ops.length]!;
      figures.get(op.name)!.push(perRound(op, ms));
    }
  }
  const median = (xs: number[]): number => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  };
  // Per round, each build's figure minus the same round's raw one.
  const rawByRound = figures.get('raw')!;
  const out = {
    key: kind,
    rawMicros: +median(rawByRound).toFixed(2),
    builds: builds.map((b) => {
      const xs = figures.get(b.name)!;
      return { build: b.name, micros: +median(xs).toFixed(2), beyondRawMicros: +median(xs.map((x, i) => x - rawByRound[i]!)).toFixed(2), rounds: xs.map((x) => +x.toFixed(1)) };
    }),
    rawRounds: rawByRound.map((x) => +x.toFixed(1)),
  };
  process.stdout.write(`${JSON.stringify(out, null, 1)}\n`);
} else if (flag('heap')) {
  const { Session } = await import('node:inspector/promises');
  const once = (await loadBuild(arg('build') ?? new URL('..', import.meta.url).pathname)).once;
  const count = Number(arg('count') ?? 20000);
  for (let i = 0, n = Number(arg('warm-up') ?? 5000); i < n; i++) once();
  const session = new Session();
  session.connect();
  await session.post('HeapProfiler.startSampling', { samplingInterval: 256, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  for (let i = 0; i < count; i++) once();
  const { profile } = (await session.post('HeapProfiler.stopSampling')) as { profile: { head: HeapNode } };
  interface HeapNode {
    callFrame: { functionName: string; url: string; lineNumber: number };
    selfSize: number;
    children: HeapNode[];
  }
  const bySite = new Map<string, number>();
  let total = 0;
  const walk = (n: HeapNode, site: string): void => {
    const here = n.callFrame.url ? `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.split('/').slice(-2).join('/')}:${n.callFrame.lineNumber + 1}` : site;
    // Node's own buffer.js and V8 builtins are charged to the nearest caller with a source file of ours.
    const mine = n.callFrame.url.includes('/src/') || !site ? here : site;
    if (n.selfSize) {
      bySite.set(mine, (bySite.get(mine) ?? 0) + n.selfSize);
      total += n.selfSize;
    }
    for (const c of n.children) walk(c, mine);
  };
  walk(profile.head, '');
  const rows = [...bySite].sort((a, b) => b[1] - a[1]).slice(0, 30).map(([site, bytes]) => ({ site, bytesPerMessage: Math.round(bytes / count) }));
  process.stdout.write(`${JSON.stringify({ key: kind, count, bytesPerMessage: Math.round(total / count), rows }, null, 1)}\n`);
} else {
  const op = arg('op') ?? 'lib';
  const count = Number(arg('count') ?? 1000);
  const warmUp = Number(arg('warm-up') ?? 2000);
  const once = op === 'raw' ? raw : (await loadBuild(arg('build') ?? new URL('..', import.meta.url).pathname)).once;
  let sink = 0;
  for (let i = 0; i < warmUp; i++) sink += once().length;
  for (let i = 0; i < count; i++) sink += once().length;
  if (sink === 0) throw new Error('nothing signed');
}
