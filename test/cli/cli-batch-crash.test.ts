/**
 * Issue 12 item 6: failures in the middle of a batch never leave a partial output
 * and never lose a message silently. A worker that dies under a message (out of
 * memory, a native crash: crashing-bulk-worker.ts makes one die on purpose) fails
 * that message alone, reported under its name; every other message is still
 * written whole, and no temporary file is left. A batch killed outright leaves no
 * partial OUT either.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, writeFileSync, writeSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { TestPki } from '../helpers/pki.ts';
import { BIN, draftMessage, runCli } from './run-cli.ts';
import { runBatch, type BatchItem } from '../../src/cli/bulk.ts';
import { formatMboxEntry, splitMboxBuffer } from '../../src/mime/mbox.ts';
import { verifyMessage } from '../../src/smime/verify-message.ts';
import { createSignerValidator } from '../../src/pki/create-signer-validator.ts';
import { parseCertificate } from '../../src/x509/certificate.ts';

const pki = new TestPki('CLI Batch Crash Root');
const alice = pki.identity('rsa2048', 'alice');
const bob = pki.identity('rsa2048', 'bob');
test.after(() => pki.cleanup());

const crashingWorker = new URL('./crashing-bulk-worker.ts', import.meta.url);
const signOptions = { cert: alice.certPath, key: alice.keyPath, chain: [], opaque: false, pss: false };
const message = (i: number, body = `Body ${i}\r\n`) => draftMessage(alice.email, bob.email, `crash ${i}`, body);
const validateSigner = createSignerValidator({ anchors: [parseCertificate(readFileSync(pki.caPath))], revocation: { mode: 'off' }, fetchCaIssuers: false });

async function assertSigned(data: Buffer, subject: string): Promise<void> {
  assert.match(data.toString('latin1'), new RegExp(`^Subject: ${subject}\\r$`, 'm'));
  const v = await verifyMessage(data, { validateSigner });
  assert.equal(v.status, 'trusted', `${subject}: ${v.summary}`);
}

test('directory batch: a worker that dies while writing a message fails that message alone; the others are written whole; no temporary file remains', async () => {
  const inDir = join(pki.dir, 'crash-in');
  const outDir = join(pki.dir, 'crash-out');
  mkdirSync(inDir);
  const names = Array.from({ length: 40 }, (_, i) => `m${String(i).padStart(3, '0')}${i === 21 ? '-crash' : ''}.eml`);
  names.forEach((n, i) => writeFileSync(join(inDir, n), message(i)));
  const reported: BatchItem[] = [];
  const summary = await runBatch({ job: 'sign', jobOptions: signOptions, input: inDir, output: outDir, kind: 'directory', workers: 2, progress: false, worker: crashingWorker, onResult: (item) => { reported.push(item); } });
  assert.equal(summary.total, 40);
  assert.equal(summary.failed, 1);
  assert.equal(summary.succeeded, 39);
  assert.equal(summary.exitCode, 3, 'a dead worker is an internal failure, never a verdict');
  assert.equal(summary.failures[0]!.name, 'm021-crash.eml');
  assert.match(summary.failures[0]!.message!, /worker processing this message stopped .*exited with code 70.*not written/);
  assert.equal(reported.length, 40, 'every message is reported once');
  const left = readdirSync(outDir);
  assert.deepEqual(left.filter((n) => n.startsWith('.')), [], 'no temporary file remains, not even the dead worker\'s');
  assert.deepEqual(readdirSync(pki.dir).filter((n) => n.includes('.kakitome-staging-')), [], 'the new OUTDIR\'s staging directory became OUTDIR');
  assert.deepEqual(left.sort(), names.filter((n) => !n.includes('crash')));
  for (const n of left) await assertSigned(readFileSync(join(outDir, n)), `crash ${names.indexOf(n)}`);
});

test('directory batch in full-size chunks (64 names a round trip): a bad message and a worker dying in the same chunk fail alone; the rest of that chunk is written whole', async () => {
  const inDir = join(pki.dir, 'crash-big-in');
  const outDir = join(pki.dir, 'crash-big-out');
  mkdirSync(inDir);
  // 200 names on 2 workers: the first three chunks are 64 names, the last ones 16.
  const names = Array.from({ length: 200 }, (_, i) => `m${String(i).padStart(3, '0')}${i === 37 ? '-crash' : ''}.eml`);
  names.forEach((n, i) => writeFileSync(join(inDir, n), i === 5 || i === 50 ? 'no header section at all\r\n' : message(i)));
  const reported: BatchItem[] = [];
  const summary = await runBatch({ job: 'sign', jobOptions: signOptions, input: inDir, output: outDir, kind: 'directory', workers: 2, progress: false, worker: crashingWorker, onResult: (item) => { reported.push(item); } });
  assert.equal(summary.total, 200);
  assert.equal(summary.failed, 3);
  assert.deepEqual(summary.failures.map((f) => [f.name, f.code]), [['m005.eml', 'MALFORMED'], ['m037-crash.eml', 'INTERNAL'], ['m050.eml', 'MALFORMED']]);
  assert.deepEqual(new Set(reported.map((r) => r.index)).size, 200, 'every message is reported once');
  const left = readdirSync(outDir);
  assert.deepEqual(left.filter((n) => n.startsWith('.')), [], 'no temporary file remains');
  assert.deepEqual(left.sort(), names.filter((_, i) => i !== 5 && i !== 37 && i !== 50));
  for (const i of [0, 4, 6, 36, 38, 49, 51, 63, 64, 199]) await assertSigned(readFileSync(join(outDir, names[i]!)), `crash ${i}`);
});

test('mbox batch: a worker that dies on a message fails that message alone; the others are written whole and in order', async () => {
  const inPath = join(pki.dir, 'crash-in.mbox');
  const outPath = join(pki.dir, 'crash-out.mbox');
  const count = 300;
  writeFileSync(inPath, Buffer.concat(Array.from({ length: count }, (_, i) => formatMboxEntry(`${alice.email} Mon Nov 23 12:00:00 2026`, message(i, i === 150 ? 'CRASH-HERE\r\n' : `Body ${i}\r\n`)))));
  const summary = await runBatch({ job: 'sign', jobOptions: signOptions, input: inPath, output: outPath, kind: 'mbox', workers: 2, progress: false, worker: crashingWorker });
  assert.equal(summary.total, count);
  assert.equal(summary.failed, 1);
  assert.equal(summary.failures[0]!.name, 'message 151');
  assert.match(summary.failures[0]!.message!, /worker processing this message stopped/);
  const out = splitMboxBuffer(readFileSync(outPath), 1 << 24);
  assert.equal(out.length, count - 1);
  const subjects = Array.from({ length: count }, (_, i) => i).filter((i) => i !== 150);
  for (const [k, e] of out.entries()) await assertSigned(e.message!, `crash ${subjects[k]}`);
  assert.deepEqual(readdirSync(pki.dir).filter((n) => n.startsWith('.crash-out.mbox')), [], 'no temporary file remains');
});

test('an OUTDIR that cannot be created, or an mbox OUT in a directory that does not exist, fails the batch before any message is read (exit 2)', async () => {
  const inDir = join(pki.dir, 'nowhere-in');
  mkdirSync(inDir);
  writeFileSync(join(inDir, 'a.eml'), message(1));
  writeFileSync(join(pki.dir, 'a-file'), 'not a directory');
  const dir = await runCli(['sign', '--cert', alice.certPath, '--key', alice.keyPath, '-i', inDir, '-o', join(pki.dir, 'a-file', 'out')]);
  assert.equal(dir.status, 2, dir.stderr);
  assert.match(dir.stderr, /Output directory .*a-file\/out/);
  const inPath = join(pki.dir, 'one.mbox');
  writeFileSync(inPath, formatMboxEntry('a Mon Nov 23 12:00:00 2026', message(1)));
  const mbox = await runCli(['sign', '--cert', alice.certPath, '--key', alice.keyPath, '-i', inPath, '-o', join(pki.dir, 'no-such-dir', 'out.mbox')]);
  assert.equal(mbox.status, 2, mbox.stderr);
  assert.match(mbox.stderr, /no-such-dir\/out\.mbox/);
  assert.equal(existsSync(join(pki.dir, 'no-such-dir')), false);
});

test('SIGKILL in the middle of an mbox batch: OUT does not exist (it appears only by rename), only a hidden temporary file may remain', async () => {
  const inPath = join(pki.dir, 'killed.mbox');
  writeFileSync(inPath, Buffer.concat(Array.from({ length: 3000 }, (_, i) => formatMboxEntry('alice@example.com Mon Nov 23 12:00:00 2026', message(i)))));
  const outDir = join(pki.dir, 'killed-out');
  mkdirSync(outDir);
  const child = spawn(process.execPath, [BIN, 'sign', '--cert', alice.certPath, '--key', alice.keyPath, '-i', inPath, '-o', join(outDir, 'signed.mbox'), '--jobs', '2'], { stdio: 'ignore' });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  const deadline = Date.now() + 30_000;
  // Killed once the temporary output has grown past its first blocks, i.e. in the middle of writing.
  const tmpSize = () => readdirSync(outDir).filter((n) => n.endsWith('.tmp')).reduce((s, n) => { try { return s + readFileSync(join(outDir, n)).length; } catch { return s; } }, 0);
  while (tmpSize() < 256 << 10 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  child.kill('SIGKILL');
  assert.equal(await exited, 'SIGKILL');
  const left = readdirSync(outDir);
  assert.ok(!left.includes('signed.mbox'), 'no OUT: a killed batch never leaves a partial mbox under its name');
  assert.ok(left.every((n) => n.startsWith('.signed.mbox.') && n.endsWith('.tmp')), left.join(', '));
});

test('SIGTERM while an mbox batch waits on its input (a FIFO whose writer stalled): it ends at once, by the signal, with no OUT and no temporary file', async () => {
  // process.exit() joins libuv's thread pool, whose thread was blocked for good in
  // read(2) on the FIFO: the batch removed its temporary file and then never ended
  // (main thread in pthread_join, uv__threadpool_cleanup).
  const fifo = join(pki.dir, 'stalled.mbox');
  execFileSync('mkfifo', [fifo]);
  const outDir = join(pki.dir, 'stalled-out');
  mkdirSync(outDir);
  const child = spawn(process.execPath, [BIN, 'sign', '--cert', alice.certPath, '--key', alice.keyPath, '--mbox', '-i', fifo, '-o', join(outDir, 'signed.mbox'), '--jobs', '1'], { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr!.resume();
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  // The writer sends a few messages and then keeps the FIFO open without writing.
  const writer = openSync(fifo, 'r+'); // read-write: never blocks, and holds the FIFO open as its writer
  try {
    writeSync(writer, Buffer.concat(Array.from({ length: 20 }, (_, i) => formatMboxEntry('alice@example.com Mon Nov 23 12:00:00 2026', message(i)))));
    const deadline = Date.now() + 30_000;
    while (!readdirSync(outDir).some((n) => n.endsWith('.tmp')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.ok(readdirSync(outDir).some((n) => n.endsWith('.tmp')), 'the batch started writing');
    // Its blocks are signed and written; what is left is the read that waits on the FIFO.
    await new Promise((r) => setTimeout(r, 300));
    child.kill('SIGTERM');
    const ended = await Promise.race([exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), 10_000))]);
    if (ended === undefined) child.kill('SIGKILL');
    assert.deepEqual(ended, { code: null, signal: 'SIGTERM' }, 'ended by SIGTERM within 10 s');
  } finally {
    closeSync(writer);
  }
  assert.deepEqual(readdirSync(outDir), [], 'neither OUT nor its temporary file');
});
