/**
 * Large content, side by side with `openssl cms`: sign, verify, encrypt and decrypt a
 * file (200 MiB by default) as separate processes, measuring wall time and peak RSS
 * of each process the same way (GNU time). OpenSSL streams only when producing
 * (`-stream`); its verify and decrypt read the whole message into memory.
 *
 * Kakitome runs bench/large-file-op.ts on Node 24, loading TypeScript sources
 * through type stripping, with Node's module compile cache (NODE_COMPILE_CACHE,
 * warmed by one idle run) as a deployed CLI would have it: without it each start
 * strips and compiles every module again (+0.1 s, +30 MiB). The idle run's RSS
 * (modules loaded, a 1 KB file signed) is reported as the process baseline, and
 * each child also reports the in-process time of the operation alone.
 */
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runMedian, runMeasured } from './harness/child-process.ts';
import { writeContentFile, type BenchDir } from './harness/bench-data.ts';
import type { Identity, TestPki } from '../test/helpers/pki.ts';

export interface LargeRow {
  operation: 'sign' | 'verify' | 'encrypt' | 'decrypt';
  sizeMiB: number;
  /** Wall time of the whole process, start-up included (what a CLI user sees). */
  kakitomeSeconds: number;
  /** The operation alone, timed inside the process (what a library user sees). */
  kakitomeOpSeconds: number;
  kakitomeRssMiB: number;
  opensslSeconds: number;
  opensslRssMiB: number;
  /** openssl time / Kakitome time: > 1 means Kakitome is faster. */
  speedup: number;
}

export interface LargeFigures {
  rows: LargeRow[];
  /** Peak RSS and wall time of the same Node child signing a 1 KB file (start-up cost). */
  idleRssMiB: number;
  idleSeconds: number;
  /** Peak RSS per operation at 1 GiB (omitted in --quick runs). */
  oneGiB: { operation: string; seconds: number; rssMiB: number }[];
}

const OP = fileURLToPath(new URL('./large-file-op.ts', import.meta.url));

async function sha256(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(path)) h.update(c as Buffer);
  return h.digest('hex');
}

export async function measureLargeContent(dir: BenchDir, pki: TestPki, id: Identity, quick: boolean): Promise<LargeFigures> {
  const sizeMiB = quick ? 32 : 200;
  const rounds = quick ? 1 : 3;
  const content = dir.file('content.txt');
  await writeContentFile(content, sizeMiB * 1024 * 1024);
  const expected = await sha256(content);
  // Let the freshly written input reach the disk first, so write-back does not run during the timed operations.
  execFileSync('sync');
  const node = process.execPath;
  const env = { ...process.env, NODE_COMPILE_CACHE: dir.file('node-compile-cache') };
  const k = async (op: string, input: string, output: string, n = rounds) => {
    const r = await runMedian(node, [OP, op, input, output, id.certPath, id.keyPath], n, env);
    const inner = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { seconds: number };
    return { ...r, opSeconds: inner.seconds };
  };
  const o = (args: string[], n = rounds) => runMedian('openssl', ['cms', ...args], n);

  const tiny = dir.file('tiny.txt');
  await writeContentFile(tiny, 1000);
  await runMeasured(node, [OP, 'sign', tiny, dir.file('tiny.p7m'), id.certPath, id.keyPath], { env }); // fills the compile cache
  const idle = await runMeasured(node, [OP, 'sign', tiny, dir.file('tiny.p7m'), id.certPath, id.keyPath], { env });

  const rows: LargeRow[] = [];
  const row = (operation: LargeRow['operation'], kk: { seconds: number; opSeconds: number; maxRssMiB: number }, oo: { seconds: number; maxRssMiB: number }) =>
    rows.push({ operation, sizeMiB, kakitomeSeconds: kk.seconds, kakitomeOpSeconds: kk.opSeconds, kakitomeRssMiB: kk.maxRssMiB, opensslSeconds: oo.seconds, opensslRssMiB: oo.maxRssMiB, speedup: oo.seconds / kk.seconds });

  // Kakitome and openssl alternate round by round, so a busy machine slows both alike.
  const pairs: Array<[LargeRow['operation'], string, string, string[]]> = [
    ['sign', content, dir.file('k.p7m'), ['-sign', '-stream', '-nodetach', '-binary', '-md', 'sha256', '-in', content, '-signer', id.certPath, '-inkey', id.keyPath, '-outform', 'DER', '-out', dir.file('o.p7m')]],
    // Each side verifies its own output (same content, same key): what a receiver of that tool's messages pays.
    ['verify', dir.file('k.p7m'), dir.file('k.txt'), ['-verify', '-binary', '-inform', 'DER', '-in', dir.file('o.p7m'), '-CAfile', pki.caPath, '-out', dir.file('o.txt')]],
    ['encrypt', content, dir.file('k.enc'), ['-encrypt', '-stream', '-binary', '-aes-256-gcm', '-in', content, '-recip', id.certPath, '-keyopt', 'rsa_padding_mode:oaep', '-keyopt', 'rsa_oaep_md:sha256', '-outform', 'DER', '-out', dir.file('o.enc')]],
    ['decrypt', dir.file('k.enc'), dir.file('k.dec'), ['-decrypt', '-binary', '-inform', 'DER', '-in', dir.file('o.enc'), '-recip', id.certPath, '-inkey', id.keyPath, '-out', dir.file('o.dec')]],
  ];
  for (const [op, input, output, opensslArgs] of pairs) {
    const ks: Array<Awaited<ReturnType<typeof k>>> = [];
    const os: Array<Awaited<ReturnType<typeof o>>> = [];
    for (let r = 0; r < rounds; r++) {
      ks.push(await k(op, input, output, 1));
      os.push(await o(opensslArgs, 1));
    }
    const mid = <T extends { seconds: number; maxRssMiB: number }>(xs: T[]): T => ({ ...[...xs].sort((a, b) => a.seconds - b.seconds)[xs.length >> 1]!, maxRssMiB: Math.max(...xs.map((x) => x.maxRssMiB)) });
    const opSeconds = [...ks.map((x) => x.opSeconds)].sort((a, b) => a - b)[ks.length >> 1]!;
    row(op, { ...mid(ks), opSeconds }, mid(os));
  }
  if ((await sha256(dir.file('k.txt'))) !== expected) throw new Error('bench: verified content differs');
  if ((await sha256(dir.file('k.dec'))) !== expected) throw new Error('bench: decrypted content differs');

  const oneGiB: LargeFigures['oneGiB'] = [];
  if (!quick) {
    const big = dir.file('big.txt');
    await writeContentFile(big, 1024 * 1024 * 1024);
    execFileSync('sync');
    for (const [op, input, output] of [
      ['sign', big, dir.file('big.p7m')],
      ['verify', dir.file('big.p7m'), dir.file('big.ver')],
      ['encrypt', big, dir.file('big.enc')],
      ['decrypt', dir.file('big.enc'), dir.file('big.dec')],
    ] as const) {
      const r = await k(op, input, output);
      oneGiB.push({ operation: op, seconds: r.seconds, rssMiB: r.maxRssMiB });
    }
  }
  return { rows, idleRssMiB: idle.maxRssMiB, idleSeconds: idle.seconds, oneGiB };
}
