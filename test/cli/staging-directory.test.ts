/**
 * Issue 12 item 6: a directory batch into a new OUTDIR writes its outputs under
 * their own names into a hidden staging directory and publishes it as OUTDIR with
 * one rename at the end, once a sync made every file durable (staging-directory.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StagingDirectory, removeAbandonedStaging, stagingPathFor } from '../../src/cli/staging-directory.ts';
import { SyncHelper, startBatchSyncHelper, type PendingOutput } from '../../src/cli/sync-output-directory.ts';

const root = mkdtempSync(join(tmpdir(), 'kakitome-staging-'));
test.after(() => rmSync(root, { recursive: true, force: true }));
let outs = 0;

/** A stand-in for sync(1) that logs what exists in the parent directory when it is called. */
function fakeSync(name: string, status: number): { path: string; calls: () => string[] } {
  const path = join(root, name);
  const log = `${path}.log`;
  writeFileSync(log, '');
  writeFileSync(path, `#!/bin/sh\necho "$(ls -A '${root}' | tr '\\n' ' ')" >> '${log}'\nexit ${status}\n`);
  chmodSync(path, 0o755);
  return { path, calls: () => readFileSync(log, 'utf8').split('\n').filter((l) => l !== '') };
}

/** A staging directory for a new OUTDIR holding `count` outputs, as the workers leave them. */
async function staged(count: number, programs: string[]): Promise<{ outDir: string; staging: StagingDirectory<PendingOutput>; outputs: PendingOutput[]; told: Map<string, unknown> }> {
  const outDir = join(root, `out${++outs}`);
  const told = new Map<string, unknown>();
  const staging = new StagingDirectory<PendingOutput>(outDir, stagingPathFor(outDir)!, (o, error) => {
    assert.ok(!told.has(o.name), `${o.name} is told once`);
    assert.ok(error !== undefined || existsSync(join(outDir, o.name)), `${o.name} is told only once it has its name`);
    told.set(o.name, error);
  }, { programs });
  staging.startSyncHelper();
  await staging.create();
  const outputs = Array.from({ length: count }, (_, i) => ({ name: `m${i}.eml`, temporary: `m${i}.eml` }));
  for (const [i, o] of outputs.entries()) {
    writeFileSync(join(staging.path, o.temporary), `message ${i}`);
    staging.add(o);
  }
  return { outDir, staging, outputs, told };
}

test('OUTDIR appears only once, whole, after one sync: the sync sees the staging directory and no OUTDIR', async () => {
  const sync = fakeSync('sync-ok', 0);
  const { outDir, staging, outputs, told } = await staged(50, [sync.path]);
  assert.ok(!existsSync(outDir), 'no OUTDIR while the batch runs');
  await staging.finish();
  assert.deepEqual(readdirSync(outDir).sort(), outputs.map((o) => o.name).sort());
  assert.equal(readFileSync(join(outDir, 'm7.eml'), 'utf8'), 'message 7');
  assert.ok(!existsSync(staging.path), 'the staging directory became OUTDIR');
  assert.equal(told.size, 50);
  assert.ok([...told.values()].every((e) => e === undefined));
  const calls = sync.calls();
  assert.equal(calls.length, 1, 'one sync for the whole batch');
  assert.ok(calls[0]!.includes('.out1.kakitome-staging-') && !/(^| )out1( |$)/.test(calls[0]!), `synced before OUTDIR existed: ${calls[0]}`);
  staging.stop();
  assert.ok(existsSync(join(outDir, 'm0.eml')), 'stopping after publishing removes nothing');
});

test('every 4,096 outputs the file system is synced in the background; after one such sync failed, the end trusts no sync and fsyncs each file', async () => {
  const ok = fakeSync('sync-ok-3', 0);
  const a = await staged(4096, [ok.path]);
  await a.staging.finish();
  assert.equal(ok.calls().length, 2, 'one in the background, one at the end');
  const failing = fakeSync('sync-fails', 1);
  const b = await staged(4096, [failing.path]);
  await b.staging.finish();
  assert.equal(failing.calls().length, 1, 'no sync trusted after the failed one');
  assert.equal(readdirSync(b.outDir).length, 4096);
  assert.ok([...b.told.values()].every((e) => e === undefined), 'each file fsync\'d instead');
});

test('flushBehind() syncs in the background at once (the batch calls it when its last chunk is handed out); asked while one runs, another follows it', async () => {
  const ok = fakeSync('sync-ok-behind', 0);
  const { staging } = await staged(10, [ok.path]);
  staging.flushBehind();
  staging.flushBehind();
  const deadline = Date.now() + 30_000; // a generous bound: it only delays a failure
  while (ok.calls().length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.equal(ok.calls().length, 2, 'two background syncs before finish()');
  await staging.finish();
  assert.equal(ok.calls().length, 3, 'and the one that counts, at the end');
});

test('without a usable sync program each file is fsync\'d, then OUTDIR is published the same way', async () => {
  const { outDir, staging, told } = await staged(5, [join(root, 'no-such-sync')]);
  await staging.finish();
  assert.equal(readdirSync(outDir).length, 5);
  assert.ok([...told.values()].every((e) => e === undefined));
});

test('an OUTDIR that another program made meanwhile: each output is renamed into it, its own files kept, a name taken by a directory fails alone', async () => {
  const sync = fakeSync('sync-ok-2', 0);
  const { outDir, staging, told } = await staged(4, [sync.path]);
  mkdirSync(outDir);
  writeFileSync(join(outDir, 'theirs.txt'), 'kept');
  mkdirSync(join(outDir, 'm2.eml'));
  await staging.finish();
  assert.deepEqual(readdirSync(outDir).sort(), ['m0.eml', 'm1.eml', 'm2.eml', 'm3.eml', 'theirs.txt']);
  assert.equal(readFileSync(join(outDir, 'theirs.txt'), 'utf8'), 'kept');
  assert.equal(readFileSync(join(outDir, 'm3.eml'), 'utf8'), 'message 3');
  assert.match(String((told.get('m2.eml') as Error)?.message), /Cannot write .*m2\.eml/);
  assert.equal([...told.values()].filter((e) => e === undefined).length, 3);
  assert.ok(!existsSync(staging.path), 'the staging directory is removed');
});

test('a stopped batch (interrupted, failed) removes its staging directory and publishes nothing', async () => {
  const { outDir, staging } = await staged(3, []);
  staging.stop();
  assert.ok(!existsSync(staging.path));
  assert.ok(!existsSync(outDir));
});

test('the staging directory of a batch whose process is gone is removed by the next batch to the same OUTDIR; a running one\'s is not', async () => {
  const outDir = join(root, 'abandoned');
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  await new Promise((resolve) => child.on('exit', resolve));
  const dead = stagingPathFor(outDir, child.pid!)!;
  mkdirSync(dead);
  writeFileSync(join(dead, 'm0.eml'), 'a partial outp');
  const mine = stagingPathFor(outDir)!;
  mkdirSync(mine);
  const other = join(root, `.abandonedx.kakitome-staging-${child.pid}`);
  mkdirSync(other);
  assert.deepEqual(removeAbandonedStaging(outDir), [dead]);
  assert.ok(!existsSync(dead));
  assert.ok(existsSync(mine), 'a running batch\'s staging directory stays');
  assert.ok(existsSync(other), 'another OUTDIR\'s staging directory stays');
  rmSync(mine, { recursive: true });
});

test('no staging directory when its name would be longer than a file name may be: the batch writes into OUTDIR by groups', () => {
  assert.equal(stagingPathFor(join(root, 'x'.repeat(240))), undefined);
  assert.ok(stagingPathFor(join(root, 'x'.repeat(200)))!.endsWith(`.kakitome-staging-${process.pid}`));
});

test('the batch\'s sync helper, started before OUTDIR or its parents exist (on the nearest existing parent), syncs the staging directory; one on another file system is replaced by the staging directory\'s own', async () => {
  const early = fakeSync('sync-early', 0);
  const own = fakeSync('sync-own', 0);
  for (const [helperOf, usedBy] of [['parent', early], ['elsewhere', own]] as const) {
    const outDir = join(root, `later-${helperOf}`, 'deeper', `out${++outs}`);
    // Another file system than the staging directory's: /proc on Linux.
    const helper = helperOf === 'parent' ? startBatchSyncHelper(outDir, [early.path]) : new SyncHelper(early.path, '/proc');
    assert.ok(helper !== undefined);
    const told = new Map<string, unknown>();
    const staging = new StagingDirectory<PendingOutput>(outDir, stagingPathFor(outDir)!, (o, error) => { told.set(o.name, error); }, { programs: [own.path], helper });
    const before = { early: early.calls().length, own: own.calls().length };
    await staging.create();
    writeFileSync(join(staging.path, 'm.eml'), 'message');
    staging.add({ name: 'm.eml', temporary: 'm.eml' });
    await staging.finish();
    assert.equal(readFileSync(join(outDir, 'm.eml'), 'utf8'), 'message');
    assert.deepEqual([...told], [['m.eml', undefined]]);
    assert.equal(usedBy.calls().length - (usedBy === early ? before.early : before.own), 1, `synced by the ${usedBy === early ? 'early' : 'own'} helper`);
    assert.equal((usedBy === early ? own : early).calls().length, usedBy === early ? before.own : before.early, 'and by no other');
    staging.stop();
  }
});
