/**
 * docs/security.md section 18 ("The policy file"): `gateway --policy FILE` is read at
 * start and on every SIGHUP. A path that is no regular file (a FIFO nobody writes,
 * /dev/zero, a directory) or a file far larger than any policy must be refused at
 * once, naming the file: a FIFO left the reload waiting for ever, and /dev/zero or
 * a gigabyte file read whole would take the gateway's memory (the running gateway,
 * on SIGHUP). The store's policy is untouched by a refused file.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isKakitomeError } from '../../src/errors.ts';
import { MAX_POLICY_FILE_BYTES, readPolicyFile } from '../../src/gateway/gateway-policy.ts';

const dir = mkdtempSync(join(tmpdir(), 'kakitome-policy-file-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const within = <T>(ms: number, p: Promise<T>) => Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`still reading after ${ms} ms`)), ms).unref())]);

test('a FIFO, a device or a directory as the policy file: INVALID_ARGUMENT at once, naming it', async () => {
  const fifo = join(dir, 'policy.fifo');
  execFileSync('mkfifo', [fifo]);
  for (const path of [fifo, '/dev/zero', dir]) {
    await assert.rejects(within(5_000, readPolicyFile(path)), (e: unknown) => isKakitomeError(e, 'INVALID_ARGUMENT') && (e as Error).message.includes(path) && /not a regular file/.test((e as Error).message), path);
  }
});

test('a policy file larger than the bound is refused before it is read: LIMIT', async () => {
  const big = join(dir, 'big.json');
  writeFileSync(big, '{"sign": true}');
  truncateSync(big, MAX_POLICY_FILE_BYTES + 1); // sparse: the size is what is judged
  await assert.rejects(readPolicyFile(big), (e: unknown) => isKakitomeError(e, 'LIMIT') && (e as Error).message.includes(big));
  const ok = join(dir, 'ok.json');
  writeFileSync(ok, '{"sign": true}');
  assert.deepEqual((await readPolicyFile(ok)).global, { sign: true });
});
