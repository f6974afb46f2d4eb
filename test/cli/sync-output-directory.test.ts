import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OutputCommitter, type PendingOutput } from '../../src/cli/sync-output-directory.ts';
import { isKakitomeError } from '../../src/errors.ts';

const root = mkdtempSync(join(tmpdir(), 'kakitome-commit-'));
test.after(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;

/** A fresh OUTDIR holding `count` temporary files, as workers leave them. */
function outdir(count: number): { dir: string; outputs: PendingOutput[] } {
  const dir = join(root, `out${++dirs}`);
  mkdirSync(dir);
  const outputs = Array.from({ length: count }, (_, i) => ({ name: `m${i}.eml`, temporary: `.m${i}.eml.1-1-${i}.tmp` }));
  for (const [i, o] of outputs.entries()) writeFileSync(join(dir, o.temporary), `message ${i}`);
  return { dir, outputs };
}

/** A stand-in for sync(1) that logs each call with what the directory holds at that moment, and exits with `status`. */
function fakeSync(name: string, status: number): { path: string; calls: () => string[] } {
  const path = join(root, name);
  const log = `${path}.log`;
  writeFileSync(log, '');
  writeFileSync(path, `#!/bin/sh\necho "$(ls -A "$2" | tr '\\n' ' ')" >> '${log}'\nexit ${status}\n`);
  chmodSync(path, 0o755);
  return { path, calls: () => readFileSync(log, 'utf8').split('\n').filter((l) => l !== '') };
}

/** Small groups keep these tests quick; the batch's own size is GROUP_FILES. */
const GROUP = 64;

/** Commits `outputs` and returns what each was told. */
async function commitAll(dir: string, outputs: PendingOutput[], programs?: string[]): Promise<Map<string, unknown>> {
  const told = new Map<string, unknown>();
  const committer = new OutputCommitter(dir, (o, error) => {
    assert.ok(!told.has(o.name), `${o.name} is told once`);
    told.set(o.name, error);
  }, { groupFiles: GROUP, ...(programs ? { programs } : {}) });
  for (const o of outputs) committer.add(o);
  await committer.finish();
  return told;
}

test('outputs are named only after a sync of their group: the sync sees temporary files, never names', async () => {
  const { dir, outputs } = outdir(GROUP + 10);
  const sync = fakeSync('sync-ok', 0);
  const told = await commitAll(dir, outputs, [sync.path]);
  assert.equal(told.size, outputs.length);
  assert.ok([...told.values()].every((e) => e === undefined));
  assert.deepEqual(readdirSync(dir).sort(), outputs.map((o) => o.name).sort(), 'every output named, no temporary file left');
  assert.equal(readFileSync(join(dir, 'm7.eml'), 'utf8'), 'message 7');
  const calls = sync.calls();
  assert.equal(calls.length, 2, 'a full group, then the rest at the end');
  assert.ok(!/(^| )m\d+\.eml/.test(calls[0]!), 'nothing had its name when the first group was synced');
  assert.ok(calls[0]!.includes('.m0.eml.1-1-0.tmp') && calls[1]!.includes('m0.eml '), 'the first group was named before the second sync');
});

test('a group closes after a second even when small: outputs get their names while the batch runs, not only at its end', async () => {
  const { dir, outputs } = outdir(3);
  const committer = new OutputCommitter(dir, () => {}, { programs: [fakeSync('sync-quick', 0).path] });
  for (const o of outputs) committer.add(o);
  const deadline = Date.now() + 30_000; // a generous bound: it only delays a failure
  while (!existsSync(join(dir, 'm2.eml')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.ok(existsSync(join(dir, 'm2.eml')), 'named before finish()');
  await committer.finish();
});

test('flushBehind() commits the open group at once, before it is full or a second old (the batch calls it when its last chunk is handed out)', async () => {
  const { dir, outputs } = outdir(3);
  const sync = fakeSync('sync-behind', 0);
  const committer = new OutputCommitter(dir, () => {}, { programs: [sync.path], groupMs: 60_000 });
  for (const o of outputs) committer.add(o);
  committer.flushBehind();
  const deadline = Date.now() + 30_000; // a generous bound: it only delays a failure
  while (!existsSync(join(dir, 'm2.eml')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.ok(existsSync(join(dir, 'm2.eml')), 'named before finish()');
  assert.equal(sync.calls().length, 1);
  await committer.finish();
  assert.equal(sync.calls().length, 1, 'nothing left for the end to sync');
});

test('without a usable sync program each file is fsync\'d before its rename; one that cannot be flushed fails alone, and is never named', async () => {
  const { dir, outputs } = outdir(20);
  rmSync(join(dir, outputs[5]!.temporary));
  const told = await commitAll(dir, outputs, ['/nonexistent/sync', '/bin/false']);
  assert.ok(isKakitomeError(told.get('m5.eml'), 'INVALID_ARGUMENT'), String(told.get('m5.eml')));
  assert.match((told.get('m5.eml') as Error).message, /Cannot write .*m5\.eml/);
  assert.equal([...told.values()].filter((e) => e !== undefined).length, 1);
  assert.ok(!existsSync(join(dir, 'm5.eml')));
  assert.equal(readdirSync(dir).length, 19);
});

test('after a sync failed, no later group trusts a sync: each file is fsync\'d', async () => {
  const { dir, outputs } = outdir(GROUP + 3);
  const sync = fakeSync('sync-fails', 1);
  const told = await commitAll(dir, outputs, [sync.path]);
  assert.ok([...told.values()].every((e) => e === undefined), 'every file flushed one by one, then named');
  assert.equal(sync.calls().length, 1, 'sync was not tried again');
  assert.equal(readdirSync(dir).filter((n) => n.endsWith('.tmp')).length, 0);
});

test('a name that cannot be given (a directory took it) fails that output alone; its temporary file is removed', async () => {
  const { dir, outputs } = outdir(4);
  mkdirSync(join(dir, 'm2.eml'));
  writeFileSync(join(dir, 'm2.eml', 'inside'), 'x');
  const told = await commitAll(dir, outputs, [fakeSync('sync-ok2', 0).path]);
  assert.match(String(told.get('m2.eml')), /Cannot write .*m2\.eml/);
  assert.deepEqual(readdirSync(dir).filter((n) => n.endsWith('.tmp')), []);
  assert.equal(readFileSync(join(dir, 'm3.eml'), 'utf8'), 'message 3');
});

test('the sync helper may be started before OUTDIR exists (a batch starts it before its workers): it syncs the directory made afterwards', async () => {
  const dir = join(root, `out${++dirs}-later`);
  const sync = fakeSync('sync-early', 0);
  const committer = new OutputCommitter(dir, () => {}, { programs: [sync.path], groupFiles: GROUP });
  committer.startSyncHelper();
  mkdirSync(dir);
  writeFileSync(join(dir, '.m0.eml.1-1-0.tmp'), 'message 0');
  committer.add({ name: 'm0.eml', temporary: '.m0.eml.1-1-0.tmp' });
  await committer.finish();
  assert.deepEqual(sync.calls().map((c) => c.trim()), ['.m0.eml.1-1-0.tmp'], 'one sync, of OUTDIR, before the name was given');
  assert.deepEqual(readdirSync(dir), ['m0.eml']);
});
