/**
 * The `openssl cms` figures for 2 KB messages: one process per message, which is
 * how scripts and MTAs call it. Reported beside the in-process Kakitome figures.
 */
import { writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { spawnSync } from 'node:child_process';
import type { BenchDir } from './harness/bench-data.ts';
import type { Identity, TestPki } from '../test/helpers/pki.ts';
import { twoKilobyteMessage } from './small-messages.ts';

export interface OpensslSmallFigures {
  signRsa2048PerSec: number;
  signP256PerSec: number;
  verifyRsa2048PerSec: number;
}

function rate(n: number, args: string[]): number {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const r = spawnSync('openssl', args, { stdio: 'ignore' });
    if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed`);
  }
  return (n * 1000) / (performance.now() - t0);
}

export function measureOpensslSmall(dir: BenchDir, pki: TestPki, rsa: Identity, ec: Identity, quick: boolean): OpensslSmallFigures {
  const n = quick ? 15 : 60;
  const msg = dir.file('small.txt');
  writeFileSync(msg, twoKilobyteMessage());
  const sign = (id: Identity, out: string) => ['cms', '-sign', '-binary', '-nodetach', '-md', 'sha256', '-in', msg, '-signer', id.certPath, '-inkey', id.keyPath, '-outform', 'DER', '-out', out];
  const signRsa2048PerSec = rate(n, sign(rsa, dir.file('small-rsa.p7m')));
  const signP256PerSec = rate(n, sign(ec, dir.file('small-ec.p7m')));
  const verifyRsa2048PerSec = rate(n, ['cms', '-verify', '-binary', '-inform', 'DER', '-in', dir.file('small-rsa.p7m'), '-CAfile', pki.caPath, '-out', dir.file('small.out')]);
  return { signRsa2048PerSec, signP256PerSec, verifyRsa2048PerSec };
}
