/**
 * Issue 12 item 6: a directory batch never leaves a partial output, whatever
 * happens in the middle: a message that fails, an OUTDIR that becomes unwritable,
 * an interruption (SIGINT) or a kill (SIGKILL). Every output file that exists
 * afterwards must verify as a whole signed message.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { TestPki } from '../helpers/pki.ts';
import { BIN, draftMessage, runCli } from './run-cli.ts';

const pki = new TestPki('CLI Batch Atomicity Root');
const alice = pki.identity('rsa2048', 'alice');
const bob = pki.identity('rsa2048', 'bob');
test.after(() => pki.cleanup());

const message = (i: number) => draftMessage(alice.email, bob.email, `atomic ${i}`, `Body ${i}\r\n`);
const signer = ['sign', '--cert', alice.certPath, '--key', alice.keyPath];

function inputDir(name: string, count: number, bad: number[] = []): string {
  const dir = join(pki.dir, name);
  mkdirSync(dir);
  for (let i = 0; i < count; i++) writeFileSync(join(dir, `m${String(i).padStart(5, '0')}.eml`), bad.includes(i) ? 'no header section at all\r\n' : message(i));
  return dir;
}

const visible = (dir: string) => readdirSync(dir).filter((n) => !n.startsWith('.'));
const temporary = (dir: string) => readdirSync(dir).filter((n) => n.startsWith('.') && n.endsWith('.tmp'));

/** The staging directories in the tests' directory (a new OUTDIR's, staging-directory.ts). */
const stagingDirectories = () => readdirSync(pki.dir).filter((n) => n.includes('.kakitome-staging-'));
/** Where the batch `child` stages the outputs of the new OUTDIR `outDir`. */
const stagingOf = (outDir: string) => (child: ReturnType<typeof spawn>) => join(pki.dir, `.${basename(outDir)}.kakitome-staging-${child.pid}`);

/** Every output in OUTDIR verifies as a complete signed message (one verify batch). */
async function assertAllComplete(outDir: string): Promise<number> {
  const names = visible(outDir);
  assert.ok(names.every((n) => n.endsWith('.eml')), `only outputs in ${outDir}: ${names.slice(0, 5).join(', ')}`);
  if (names.length === 0) return 0;
  const v = await runCli(['verify', '--ca', pki.caPath, '-i', outDir, '-o', `${outDir}-verified`]);
  assert.equal(v.status, 0, `every output verifies: ${v.stderr.slice(0, 2000)}`);
  assert.match(v.stderr, new RegExp(`${names.length} of ${names.length} messages verified`));
  return names.length;
}

/**
 * Starts a batch and calls `during` once at least `outputs` outputs exist in OUTDIR
 * (or in the directory `where` names: a new OUTDIR's staging directory); resolves with its exit.
 */
async function batchWith(args: string[], outDir: string, outputs: number, during: (child: ReturnType<typeof spawn>) => void, where: (child: ReturnType<typeof spawn>) => string = () => outDir): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  let done = false;
  void exited.then(() => { done = true; });
  const deadline = Date.now() + 60_000;
  const count = () => { try { return visible(where(child)).length; } catch { return 0; } };
  while (!done && count() < outputs && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  assert.ok(!done, `the batch was still running when ${outputs} outputs existed (make it longer)`);
  during(child);
  const r = await exited;
  return { ...r, stderr };
}

test('a message that fails is reported and skipped; every other one is written whole; no temporary file remains', async () => {
  const inDir = inputDir('fail-in', 40, [3, 17, 18, 39]);
  const outDir = join(pki.dir, 'fail-out');
  const r = await runCli([...signer, '-i', inDir, '-o', outDir, '--jobs', '2']);
  assert.equal(r.status, 2, r.stderr);
  for (const i of [3, 17, 18, 39]) assert.match(r.stderr, new RegExp(`m${String(i).padStart(5, '0')}\\.eml: MALFORMED: .*\\(skipped\\)`));
  assert.match(r.stderr, /36 of 40 messages signed, 4 failed/);
  assert.deepEqual(temporary(outDir), []);
  assert.deepEqual(stagingDirectories(), [], 'a new OUTDIR\'s staging directory became OUTDIR');
  assert.equal(await assertAllComplete(outDir), 36);
});

test('a name in OUTDIR taken by a link or a directory fails that message only; the link is never written through', async () => {
  const inDir = inputDir('taken-in', 6);
  const outDir = join(pki.dir, 'taken-out');
  mkdirSync(outDir);
  const target = join(pki.dir, 'outside.txt');
  writeFileSync(target, 'must stay as it is');
  symlinkSync(target, join(outDir, 'm00001.eml'));
  mkdirSync(join(outDir, 'm00002.eml'));
  writeFileSync(join(outDir, 'm00003.eml'), 'an older output: replaced');
  const r = await runCli([...signer, '-i', inDir, '-o', outDir]);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /m00001\.eml: INVALID_ARGUMENT: .*a symbolic link/);
  assert.match(r.stderr, /m00002\.eml: INVALID_ARGUMENT: .*a directory/);
  assert.match(r.stderr, /4 of 6 messages signed, 2 failed/);
  assert.equal(readFileSync(target, 'utf8'), 'must stay as it is');
  assert.match(readFileSync(join(outDir, 'm00003.eml'), 'latin1'), /^Subject: atomic 3\r$/m);
});

/** Makes DIR refuse new files even to root (immutable attribute), or by its mode for other users. */
function setWritable(dir: string, writable: boolean): void {
  if (process.getuid?.() === 0) execFileSync('chattr', [writable ? '-i' : '+i', dir]);
  else chmodSync(dir, writable ? 0o700 : 0o500);
}

test('an OUTDIR that becomes unwritable in the middle: the rest is reported failed, the batch ends, and what was written is whole', async () => {
  const inDir = inputDir('unwritable-in', 2000);
  const outDir = join(pki.dir, 'unwritable-out');
  mkdirSync(outDir);
  let r;
  try {
    r = await batchWith([...signer, '-i', inDir, '-o', outDir, '--jobs', '2'], outDir, 20, () => setWritable(outDir, false));
  } finally {
    setWritable(outDir, true);
  }
  assert.equal(r.code, 2, r.stderr.slice(-2000));
  assert.match(r.stderr, /Cannot write .*unwritable-out\/m\d{5}\.eml: (permission denied|EPERM)/);
  const summary = /(\d+) of 2000 messages signed, (\d+) failed/.exec(r.stderr);
  assert.ok(summary, r.stderr.slice(-500));
  const written = await assertAllComplete(outDir);
  assert.equal(Number(summary[1]), written, 'the summary counts exactly the outputs that exist');
  assert.equal(Number(summary[2]), 2000 - written);
  // An output that could not get its name (the rename was refused) cannot be removed
  // either: it stays hidden, and its message is among the failed.
  assert.ok(temporary(outDir).length <= Number(summary[2]), `hidden temporary files only for failed messages: ${temporary(outDir).length}`);
});

test('SIGINT in the middle (OUTDIR exists): ended by SIGINT (status 130), no temporary file, every output that exists is whole', async () => {
  const inDir = inputDir('sigint-in', 2000);
  const outDir = join(pki.dir, 'sigint-out');
  mkdirSync(outDir);
  const r = await batchWith([...signer, '-i', inDir, '-o', outDir, '--jobs', '2'], outDir, 20, (child) => child.kill('SIGINT'));
  assert.deepEqual([r.code, r.signal], [null, 'SIGINT'], r.stderr.slice(-2000));
  assert.deepEqual(temporary(outDir), []);
  assert.ok(await assertAllComplete(outDir) >= 20);
});

test('SIGKILL in the middle (OUTDIR exists): no partial output under any name; the hidden temporary files left are whole outputs still waiting for their names, but for at most one per worker', async () => {
  const inDir = inputDir('sigkill-in', 2000);
  const outDir = join(pki.dir, 'sigkill-out');
  mkdirSync(outDir);
  const r = await batchWith([...signer, '-i', inDir, '-o', outDir, '--jobs', '2'], outDir, 20, (child) => child.kill('SIGKILL'));
  assert.equal(r.signal, 'SIGKILL');
  assert.ok(await assertAllComplete(outDir) >= 20);
  // Outputs get their names only once their group is on disk: those of the last group stay hidden.
  const left = temporary(outDir);
  const parked = join(pki.dir, 'sigkill-temporary');
  mkdirSync(parked);
  for (const n of left) renameSync(join(outDir, n), join(parked, `${n}.eml`));
  const v = await runCli(['verify', '--ca', pki.caPath, '-i', parked, '-o', `${parked}-verified`]);
  const verified = /(\d+) of (\d+) messages verified/.exec(v.stderr);
  assert.ok(verified, v.stderr.slice(-500));
  assert.ok(Number(verified[2]) - Number(verified[1]) <= 2, `at most one partial temporary file per worker: ${v.stderr.slice(-1000)}`);
});

test('a new OUTDIR appears only at the end: SIGINT in the middle leaves neither OUTDIR nor its staging directory (ended by SIGINT, status 130)', async () => {
  const inDir = inputDir('staged-sigint-in', 2000);
  const outDir = join(pki.dir, 'staged-sigint-out');
  const r = await batchWith([...signer, '-i', inDir, '-o', outDir, '--jobs', '2'], outDir, 20, (child) => child.kill('SIGINT'), stagingOf(outDir));
  assert.deepEqual([r.code, r.signal], [null, 'SIGINT'], r.stderr.slice(-2000));
  assert.ok(!existsSync(outDir), 'nothing of an interrupted batch into a new OUTDIR is published');
  assert.deepEqual(stagingDirectories(), []);
});

test('SIGKILL into a new OUTDIR: no OUTDIR at all; the staging directory left holds whole outputs but for at most one partial per worker; the next batch removes it, says so, and publishes OUTDIR whole', async () => {
  const inDir = inputDir('staged-sigkill-in', 2000);
  const outDir = join(pki.dir, 'staged-sigkill-out');
  let staging = '';
  const r = await batchWith([...signer, '-i', inDir, '-o', outDir, '--jobs', '2'], outDir, 20, (child) => {
    staging = stagingOf(outDir)(child);
    child.kill('SIGKILL');
  }, stagingOf(outDir));
  assert.equal(r.signal, 'SIGKILL');
  assert.ok(!existsSync(outDir), 'OUTDIR exists only once every output in it is whole and durable');
  const left = readdirSync(staging);
  assert.ok(left.length >= 20);
  const v = await runCli(['verify', '--ca', pki.caPath, '-i', staging, '-o', `${staging}-verified`]);
  const verified = /(\d+) of (\d+) messages verified/.exec(v.stderr);
  assert.ok(verified, v.stderr.slice(-500));
  assert.equal(Number(verified[2]), left.length);
  assert.ok(Number(verified[2]) - Number(verified[1]) <= 2, `at most one partial file per worker: ${v.stderr.slice(-1000)}`);
  rmSync(`${staging}-verified`, { recursive: true });
  const again = await runCli([...signer, '-i', inDir, '-o', outDir, '--jobs', '2']);
  assert.equal(again.status, 0, again.stderr.slice(-2000));
  assert.ok(again.stderr.includes(`Removed ${staging}: the staging directory of an earlier batch`), again.stderr.slice(0, 2000));
  assert.ok(!existsSync(staging));
  assert.deepEqual(stagingDirectories(), []);
  assert.equal(await assertAllComplete(outDir), 2000);
});
