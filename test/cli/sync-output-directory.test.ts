import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { syncOutputDirectory } from '../../src/cli/sync-output-directory.ts';
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
