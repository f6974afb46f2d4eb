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
  await assert.rejects(writeFileAtomic(sub, Buffer.from('x')), (e) => isKakitomeError(e, 'INVALID_ARGUMENT') && /the directory .*missing-parent does not exist; create it first/.test(e.message));
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

test('a FIFO as OUT is written in place, never replaced by a regular file', async () => {
  const { execFileSync } = await import('node:child_process');
  const { readFile } = await import('node:fs/promises');
  const fifo = join(dir, 'out.fifo');
  execFileSync('mkfifo', [fifo]);
  const reading = readFile(fifo);
  await writeFileAtomic(fifo, Buffer.from('through the pipe'));
  assert.equal((await reading).toString(), 'through the pipe');
  assert.ok(statSync(fifo).isFIFO(), 'still a FIFO');
  const reading2 = readFile(fifo);
  const w = await openAtomicWriter(fifo);
  await w.write(Buffer.from('batch '));
  await w.write(Buffer.from('output'));
  await w.commit();
  assert.equal((await reading2).toString(), 'batch output');
  assert.ok(statSync(fifo).isFIFO());
});

test('a symbolic link as OUT: the file it points to is replaced, the link stays', async () => {
  const { symlinkSync, lstatSync } = await import('node:fs');
  const target = join(dir, 'real.eml');
  writeFileSync(target, 'old');
  const link = join(dir, 'link.eml');
  symlinkSync(target, link);
  await writeFileAtomic(link, Buffer.from('new'));
  assert.ok(lstatSync(link).isSymbolicLink());
  assert.equal(readFileSync(target, 'utf8'), 'new');
});

test('a link that does not resolve to a regular file (like /dev/stdout to a pipe) is written through, never replaced', async () => {
  const { execFileSync } = await import('node:child_process');
  const { readFile } = await import('node:fs/promises');
  const { symlinkSync, lstatSync } = await import('node:fs');
  const fifo = join(dir, 'pipe2.fifo');
  execFileSync('mkfifo', [fifo]);
  const viaFifo = join(dir, 'stdout-like');
  symlinkSync(fifo, viaFifo);
  const reading = readFile(fifo);
  await writeFileAtomic(viaFifo, Buffer.from('via link'));
  assert.equal((await reading).toString(), 'via link');
  assert.ok(lstatSync(viaFifo).isSymbolicLink());
  const dangling = join(dir, 'dangling');
  symlinkSync(join(dir, 'not-yet'), dangling);
  await writeFileAtomic(dangling, Buffer.from('created'));
  assert.ok(lstatSync(dangling).isSymbolicLink());
  assert.equal(readFileSync(join(dir, 'not-yet'), 'utf8'), 'created');
});
