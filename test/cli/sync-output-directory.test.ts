import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OutputFlusher, syncOutputDirectory } from '../../src/cli/sync-output-directory.ts';
import { isKakitomeError } from '../../src/errors.ts';

const dir = mkdtempSync(join(tmpdir(), 'kakitome-sync-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));
for (let i = 0; i < 20; i++) writeFileSync(join(dir, `m${i}.eml`), `message ${i}`);
const names = Array.from({ length: 20 }, (_, i) => `m${i}.eml`);

test('one sync of the file system (sync -f) when the program is there', async () => {
  await syncOutputDirectory(dir, names);
});

test('without a usable sync program, every written file is fsync\'d instead; a file removed since is skipped', async () => {
  await syncOutputDirectory(dir, [...names, 'removed-since.eml'], { programs: ['/nonexistent/sync', '/bin/false'] });
});

test('a written file that cannot be flushed fails the batch with a coded error naming it', async () => {
  // A path through a regular file: open() fails with ENOTDIR, an error other than "removed since".
  mkdirSync(join(dir, 'sub'));
  writeFileSync(join(dir, 'sub', 'x'), '');
  await assert.rejects(
    syncOutputDirectory(dir, ['sub/x/not-a-dir.eml'], { programs: [] }),
    (e) => isKakitomeError(e, 'INVALID_ARGUMENT') && /could not be flushed/.test(e.message) && /not-a-dir\.eml/.test(e.message),
  );
});

/** A stand-in for sync(1) that logs each call and exits with `status`. */
function fakeSync(name: string, status: number): { path: string; calls: () => number } {
  const path = join(dir, name);
  const log = `${path}.log`;
  writeFileSync(log, '');
  writeFileSync(path, `#!/bin/sh\necho "$@" >> '${log}'\nexit ${status}\n`);
  chmodSync(path, 0o755);
  return { path, calls: () => readFileSync(log, 'utf8').split('\n').filter(Boolean).length };
}

test('OutputFlusher syncs in the background every 2048 outputs, and once more at the end', async () => {
  const sync = fakeSync('sync-ok', 0);
  const flusher = new OutputFlusher(dir, { programs: [sync.path] });
  for (let i = 0; i < 2048 * 2 + 5; i++) flusher.written(names[i % names.length]!);
  await flusher.finish();
  assert.ok(sync.calls() >= 2 && sync.calls() <= 3, `background sync(s) and the final one: ${sync.calls()}`);
});

test('OutputFlusher: after a background sync failed, the end fsyncs every file instead of trusting another syncfs', async () => {
  const sync = fakeSync('sync-fails', 1);
  const flusher = new OutputFlusher(dir, { programs: [sync.path] });
  mkdirSync(join(dir, 'sub2'));
  writeFileSync(join(dir, 'sub2', 'x'), '');
  for (let i = 0; i < 2048; i++) flusher.written(names[i % names.length]!);
  flusher.written('sub2/x/not-a-dir.eml');
  await assert.rejects(flusher.finish(), /could not be flushed/);
  assert.equal(sync.calls(), 1, 'sync was not tried again at the end');
});
