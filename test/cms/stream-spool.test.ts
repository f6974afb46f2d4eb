import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, existsSync, lstatSync, symlinkSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { randomBytes } from 'node:crypto';
import { ContentSpool } from '../../src/cms/stream/content-spool.ts';
import { AtomicFile } from '../../src/cms/stream/atomic-file.ts';
import { readFileChunks } from '../../src/cms/stream/read-file-chunks.ts';
import { KakitomeError } from '../../src/errors.ts';

const dir = mkdtempSync(join(tmpdir(), 'kakitome-spool-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function drain(it: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of it) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

test('the spool keeps small content in memory and spills larger content to an unlinked file; replay works twice', async () => {
  const data = randomBytes(50_000);
  const spoolDir = mkdtempSync(join(dir, 's-'));
  const spool = new ContentSpool({ memoryBytes: 10_000, dir: spoolDir });
  const src = Buffer.from(data);
  for (let i = 0; i < src.length; i += 7_000) await spool.write(src.subarray(i, i + 7_000));
  src.fill(0); // the spool copied what it kept
  assert.equal(spool.size, data.length);
  assert.deepEqual(readdirSync(spoolDir), [], 'the spill file is not reachable by name');
  assert.deepEqual(await drain(spool.replay()), data);
  assert.deepEqual(await drain(spool.replay()), data);
  await spool.dispose();
  const small = new ContentSpool({ memoryBytes: 10_000, dir: spoolDir });
  await small.write(Buffer.from('hello'));
  assert.deepEqual(await drain(small.replay()), Buffer.from('hello'));
  await small.dispose();
});

test('the spool refuses content beyond maxBytes with LIMIT', async () => {
  const spool = new ContentSpool({ maxBytes: 1000 });
  await spool.write(Buffer.alloc(600));
  await assert.rejects(spool.write(Buffer.alloc(600)), (e: unknown) => e instanceof KakitomeError && e.code === 'LIMIT');
  await spool.dispose();
});

test('an atomic file appears only on commit; abort leaves nothing', async () => {
  const target = join(dir, 'out.bin');
  const a = await AtomicFile.create(target);
  await a.write(Buffer.from('abc'), Buffer.from('def'));
  assert.equal(existsSync(target), false);
  await a.commit();
  assert.equal(readFileSync(target, 'utf8'), 'abcdef');
  const b = await AtomicFile.create(join(dir, 'aborted.bin'));
  await b.write(Buffer.from('partial'));
  await b.abort();
  await b.abort();
  assert.deepEqual(readdirSync(dir).filter((f) => f.includes('aborted') || f.endsWith('.partial')), []);
});

test('an atomic file never replaces a FIFO or a symbolic link (rename would replace the special file itself)', async () => {
  const fifo = join(dir, 'a.fifo');
  execFileSync('mkfifo', [fifo]);
  const link = join(dir, 'a.link');
  symlinkSync(join(dir, 'elsewhere.bin'), link);
  for (const path of [fifo, link]) {
    await assert.rejects(AtomicFile.create(path), (e: unknown) => e instanceof KakitomeError && e.code === 'INVALID_ARGUMENT');
  }
  assert.ok(lstatSync(fifo).isFIFO());
  assert.ok(lstatSync(link).isSymbolicLink());
  assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.partial')), []);
});

test('readFileChunks yields the file in order through reused buffers', async () => {
  const data = randomBytes(1000);
  const path = join(dir, 'chunks.bin');
  const f = await AtomicFile.create(path);
  await f.write(data);
  await f.commit();
  const seen: Buffer[] = [];
  for await (const c of readFileChunks(path, 64)) seen.push(Buffer.from(c));
  assert.deepEqual(Buffer.concat(seen), data);
  assert.equal(seen.length, Math.ceil(1000 / 64));
});
