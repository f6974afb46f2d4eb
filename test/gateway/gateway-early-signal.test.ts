/**
 * `kakitome gateway` stops gracefully on SIGTERM (finishes what is in flight, exit 0:
 * docs/gateway.md) also while it is still starting. Starting (the store, the crypto
 * threads, the audit thread, the listeners) takes seconds on a loaded machine, and the
 * gateway caught its signals only once all of it was up: a SIGTERM in that time ended
 * the process by the signal's default action (143 in a shell, a failed stop to
 * systemd), a SIGHUP (a policy reload) killed it. The test waits until the process
 * catches SIGHUP (its SigCgt mask in /proc), requires that to come before the
 * listener takes connections, and sends SIGHUP then SIGTERM in that window.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../helpers/free-port.ts';
import { BIN, runCli, storeHomeEnv } from '../cli/run-cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'kakitome-gateway-early-signal-'));
after(() => rmSync(dir, { recursive: true, force: true }));


/** True when the process has a handler for `signal` (bit signal-1 of SigCgt). */
function catches(pid: number, signal: number): boolean {
  try {
    const m = /^SigCgt:\s*([0-9a-f]+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? ((BigInt(`0x${m[1]}`) >> BigInt(signal - 1)) & 1n) === 1n : false;
  } catch {
    return false;
  }
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

test('SIGHUP and SIGTERM while the gateway is starting: caught before it listens, then a graceful stop, exit 0', { skip: process.platform !== 'linux' && 'reads /proc' }, async () => {
  mkdirSync(join(dir, 'user'));
  const env = storeHomeEnv(join(dir, 'home'), join(dir, 'user'));
  const init = await runCli(['init'], { env });
  assert.equal(init.status, 0, init.stderr);
  const port = await freePort();
  const child = spawn(process.execPath, [BIN, 'gateway', '--listen', `127.0.0.1:${port}`, '--next-hop', `127.0.0.1:${await freePort()}`, '--domain', 'example.com'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  after(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); });
  const deadline = Date.now() + 120_000;
  // SIGHUP's bit: Node itself catches SIGTERM and SIGINT from its start (to restore the
  // terminal, then re-raise), not SIGHUP, which the gateway catches with the other two.
  while (!catches(child.pid!, 1)) {
    assert.ok(Date.now() < deadline && child.exitCode === null, `the gateway never caught SIGHUP: ${out}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  assert.equal(await listening(port), false, 'the signals are caught before the listener takes connections');
  child.kill('SIGHUP');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const end = await ended;
  clearTimeout(timer);
  assert.deepEqual(end, { code: 0, signal: null }, `the gateway ended by ${end.signal ?? end.code}: ${out}`);
  assert.match(out, /"signal":"SIGTERM"/, 'the stop is logged');
});
