/**
 * The launcher's early exit after a message command (bin/kakitome.js) loses nothing
 * it wrote: a pipe to standard error or output whose reader is slower than the
 * command (`2>&1 | less`, a supervisor's log pipe) is non-blocking in Node on Linux,
 * and process.exit() drops what the kernel's pipe buffer (64 KiB) did not take yet.
 * A batch's notes for its failed messages and its summary line are written to stderr
 * without waiting, so a batch with many failures lost what a reader had not taken
 * when the summary line was written (the summary line among it).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN } from './run-cli.ts';

test('a batch whose stderr pipe is read slowly still delivers every note and the summary line', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kakitome-launcher-exit-'));
  try {
    const count = 2_000;
    let mbox = '';
    for (let i = 0; i < count; i++) mbox += `From a@example.com Mon Dec  7 00:00:00 2026\nFrom: a@example.com\nTo: b@example.com\nSubject: m${i}\n\nhello\n\n`;
    writeFileSync(join(dir, 'in.mbox'), mbox);
    // A slow reader: it takes nothing from the pipe until the batch's output is in place (written before the summary line), and a second more.
    const script = '{ "$0" "$@"; echo $? > "$DIR/status"; } 2>&1 >/dev/null | { while [ ! -e "$DIR/out.mbox" ]; do sleep 0.05; done; sleep 1; cat; }';
    const child = spawn('sh', ['-c', script, process.execPath, BIN, 'verify', '--in', join(dir, 'in.mbox'), '-o', join(dir, 'out.mbox'), '--revocation', 'off', '--jobs', '1'], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, DIR: dir } });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => chunks.push(d));
    await new Promise((resolve) => child.on('close', resolve));
    const stderr = Buffer.concat(chunks).toString('utf8');
    const status = Number(readFileSync(join(dir, 'status'), 'utf8'));
    assert.equal(status, 1);
    assert.ok(stderr.length > 100_000, `more than a pipe buffer of notes (${stderr.length} bytes)`);
    assert.equal(stderr.split('\n').filter((l) => l.includes('FAILED')).length, count);
    assert.match(stderr, /kakitome verify: 0 of 2000 messages verified, 2000 failed .* into .*out\.mbox\n$/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a batch whose stderr reader leaves early (| head) ends with the command\'s exit code, not an EPIPE crash', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kakitome-launcher-exit-'));
  try {
    let mbox = '';
    // Malformed opaque signatures: each fails as MALFORMED, and the batch's exit code is 2 (an unhandled error would make it 1).
    for (let i = 0; i < 2_000; i++) mbox += `From a@example.com Mon Dec  7 00:00:00 2026\nFrom: a@example.com\nTo: b@example.com\nSubject: m${i}\nMIME-Version: 1.0\nContent-Type: application/pkcs7-mime; smime-type=signed-data\nContent-Transfer-Encoding: base64\n\nMIIBAAAA\n\n`;
    writeFileSync(join(dir, 'in.mbox'), mbox);
    // The reader takes 100 bytes once the batch's output is in place, then closes the pipe; the command's exit status and its last stderr bytes are kept in files.
    // Once after the output is in place, once with a reader that leaves at once, while the batch still writes its notes.
    for (const wait of ['while [ ! -e "$DIR/out.mbox" ]; do sleep 0.05; done;', '']) {
      rmSync(join(dir, 'status'), { force: true });
      rmSync(join(dir, 'out.mbox'), { force: true });
      const script = `{ "$0" "$@"; echo $? > "$DIR/status"; } 2>&1 >/dev/null | { ${wait} head -c 100 >/dev/null; }`;
      const child = spawn('sh', ['-c', script, process.execPath, BIN, 'verify', '--in', join(dir, 'in.mbox'), '-o', join(dir, 'out.mbox'), '--revocation', 'off', '--jobs', '1'], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, DIR: dir } });
      await new Promise((resolve) => child.on('close', resolve));
      for (let i = 0; i < 100 && !existsSync(join(dir, 'status')); i++) await new Promise((r) => setTimeout(r, 50));
      assert.equal(Number(readFileSync(join(dir, 'status'), 'utf8')), 2, `the batch's code (MALFORMED), not 1 from an unhandled EPIPE (${wait ? 'reader after the output' : 'reader gone at once'})`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
