/**
 * SIGTERM stops `kakitome serve` gracefully (in-flight requests finish, exit 0:
 * docs/api.md "Running it") also while it is still starting: with serving threads,
 * the first thread answers as soon as it listens, seconds before the last is up on
 * a loaded machine, and serve listened for SIGTERM only once all were. A signal in
 * that window went to Node's default action: the process was killed (exit 143 in a
 * shell), cutting what was in flight. The test sends SIGTERM at the first answer.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../helpers/free-port.ts';
import { BIN, storeHomeEnv } from '../cli/run-cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'kakitome-serve-early-signal-'));
after(() => rmSync(dir, { recursive: true, force: true }));


test('SIGTERM at the first answer, before every serving thread is up: a graceful stop, exit 0', async () => {
  mkdirSync(join(dir, 'user'));
  const env = storeHomeEnv(join(dir, 'home'), join(dir, 'user'));
  const port = await freePort();
  const child = spawn(process.execPath, [BIN, 'serve', '--http', `127.0.0.1:${port}`, '--workers', '4'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const deadline = Date.now() + 120_000;
  for (;;) {
    assert.ok(Date.now() < deadline && child.exitCode === null, `serve did not answer /healthz: ${stderr}`);
    const ok = await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false);
    if (ok) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const end = await ended;
  clearTimeout(timer);
  assert.deepEqual(end, { code: 0, signal: null }, `serve ended by ${end.signal ?? end.code}: ${stderr}`);
  const messages = stdout.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { msg?: string }).msg);
  assert.ok(messages.includes('stopping') && messages.at(-1) === 'stopped', `log: ${messages.join(', ')}`);
});
