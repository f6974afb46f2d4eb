import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openAtomicWriter, writeFileAtomic } from '../../src/cli/io.ts';
import { isKakitomeError } from '../../src/errors.ts';

const dir = mkdtempSync(join(tmpdir(), 'kakitome-io-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

test('writeFileAtomic replaces OUT whole, mode 0600, and leaves no temporary file', async () => {
  const out = join(dir, 'out.eml');
  writeFileSync(out, 'old');
  await writeFileAtomic(out, Buffer.from('new content'));
  assert.equal(readFileSync(out, 'utf8'), 'new content');
  assert.equal(statSync(out).mode & 0o777, 0o600);
  assert.deepEqual(readdirSync(dir).filter((n) => n.endsWith('.tmp')), []);
});

test('a failed write leaves neither OUT nor a temporary file', async () => {
  const sub = join(dir, 'missing-parent', 'out.eml');
  await assert.rejects(writeFileAtomic(sub, Buffer.from('x')), (e) => isKakitomeError(e, 'INVALID_ARGUMENT') && /no such file/.test(e.message));
  const roDir = join(dir, 'target-is-dir');
  mkdirSync(roDir);
  // rename(2) over a directory fails: the temporary file must be cleaned up.
  await assert.rejects(writeFileAtomic(roDir, Buffer.from('x')));
  assert.deepEqual(readdirSync(dir).filter((n) => n.endsWith('.tmp')), []);
});

test('openAtomicWriter: nothing appears before commit, nothing remains after abort', async () => {
  const out = join(dir, 'batch.mbox');
  const w = await openAtomicWriter(out);
  await w.write(Buffer.from('part one\n'));
  assert.throws(() => statSync(out));
  await w.write(Buffer.from('part two\n'));
  await w.commit();
  assert.equal(readFileSync(out, 'utf8'), 'part one\npart two\n');
  const out2 = join(dir, 'aborted.mbox');
  const w2 = await openAtomicWriter(out2);
  await w2.write(Buffer.from('partial'));
  await w2.abort();
  assert.throws(() => statSync(out2));
  assert.deepEqual(readdirSync(dir).filter((n) => n.endsWith('.tmp')), []);
});
