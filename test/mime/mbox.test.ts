import { test } from 'node:test';
import assert from 'node:assert/strict';
import { splitMbox, splitMboxBuffer, readMboxBlocks, formatMboxEntry, looksLikeMbox, MboxEntryWriter } from '../../src/mime/mbox.ts';
import { isKakitomeError } from '../../src/errors.ts';

async function* chunks(data: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

async function collect(data: Buffer, size: number, max = 1 << 20) {
  const out = [];
  for await (const e of splitMbox(chunks(data, size), max)) out.push(e);
  return out;
}

/** What a batch makes of an mbox: cut into blocks of `blockBytes` (read `size` bytes at a time), each split by a worker. */
async function collectBlocks(data: Buffer, size: number, blockBytes: number, max = 1 << 20) {
  const out: Array<{ envelope?: string; message?: Buffer; error?: string }> = [];
  for await (const block of readMboxBlocks(chunks(data, size), blockBytes, max)) {
    if ('oversized' in block) out.push({ error: 'LIMIT' });
    else {
      assert.equal(block.data.buffer.byteLength, block.data.length, 'a block is a buffer of its own (it is posted to a worker)');
      for (const e of splitMboxBuffer(block.data, max)) out.push(e.error ? { envelope: e.envelope, error: e.error.code } : { envelope: e.envelope, message: e.message! });
    }
  }
  return out;
}

const messages = [
  Buffer.from('From: a@example.com\r\nSubject: one\r\n\r\nFrom here on\r\n>From quoted\r\n>>From twice\r\n'),
  Buffer.from('From: b@example.com\nSubject: two\n\nbody\n\n'),
  Buffer.from('Subject: three\n\nFrom the start of a line\nno final newline\n'),
];

test('mboxrd round trip: quoting of From lines is reversible, at any chunk size', async () => {
  const file = Buffer.concat(messages.map((m, i) => formatMboxEntry(`sender${i}@example.com Mon Nov 23 13:00:09 2026`, m)));
  // Body lines starting with From are quoted in the file, never left bare.
  assert.equal(file.toString('latin1').split('\n').filter((l) => l.startsWith('From ')).length, 3);
  for (const size of [1, 7, 64, 1 << 16]) {
    const entries = await collect(file, size);
    assert.equal(entries.length, 3);
    entries.forEach((e, i) => {
      assert.equal(e.index, i);
      assert.equal(e.envelope, `sender${i}@example.com Mon Nov 23 13:00:09 2026`);
      assert.deepEqual(e.message, messages[i]);
    });
  }
});

test('an oversized message is reported as LIMIT and the next one still comes through', async () => {
  const big = Buffer.from(`Subject: big\n\n${'x'.repeat(2000)}\n`);
  const file = Buffer.concat([formatMboxEntry('a', big), formatMboxEntry('b', messages[1]!)]);
  const entries = await collect(file, 100, 1000);
  assert.equal(entries.length, 2);
  assert.ok(isKakitomeError(entries[0]!.error, 'LIMIT'));
  assert.equal(entries[0]!.message, undefined);
  assert.deepEqual(entries[1]!.message, messages[1]);
});

test('a file that does not start with a From_ line is MALFORMED, not a silent empty batch', async () => {
  await assert.rejects(collect(Buffer.from('Subject: x\n\nbody\n'), 10), (e) => isKakitomeError(e, 'MALFORMED'));
  for (const text of ['Subject: x\n\nbody\n', '\r\n\r\nSubject: From x\n', '\rFrom a\nbody\n', '>From a\nbody\n', 'Fro']) {
    await assert.rejects(collectBlocks(Buffer.from(text), 2, 64), (e) => isKakitomeError(e, 'MALFORMED'), JSON.stringify(text));
  }
  assert.deepEqual(await collectBlocks(Buffer.from('\r\n\n\r\n'), 2, 64), [], 'blank lines only: an empty batch');
});

test('blocks: a message larger than the bound is skipped as it is read, never held, and the next one still comes through', async () => {
  const huge = Buffer.from(`Subject: huge\n\n${'y'.repeat(80_000)}\n`);
  const big = Buffer.from(`Subject: big\n\n${'x'.repeat(2000)}\n`);
  const file = Buffer.concat([formatMboxEntry('a', messages[0]!), formatMboxEntry('h', huge), formatMboxEntry('b', big), formatMboxEntry('c', messages[1]!)]);
  for (const size of [7, 1000, 1 << 16]) {
    const blocks = [];
    for await (const block of readMboxBlocks(chunks(file, size), 4096, 1000)) blocks.push(block);
    // Memory stays bounded: the bound plus 64 KiB (a From_ line and its quoting) plus one read.
    assert.ok(blocks.every((b) => 'oversized' in b || b.data.length <= 1000 + (64 << 10) + size), `no block grows past the bound (reads of ${size})`);
    if (size < 1000) assert.ok(blocks.some((b) => 'oversized' in b), 'read in small pieces, the huge message is skipped, never held');
    const entries = await collectBlocks(file, size, 4096, 1000);
    assert.deepEqual(entries.map((e) => e.error ?? e.message!.toString('latin1')), [messages[0]!.toString('latin1'), 'LIMIT', 'LIMIT', messages[1]!.toString('latin1')]);
  }
});

test('looksLikeMbox tells a From_ line from an RFC 5322 "From :" field', () => {
  assert.equal(looksLikeMbox(Buffer.from('From alice@example.com Mon Nov 23 13:00:09 2026\n')), true);
  assert.equal(looksLikeMbox(Buffer.from('From: alice@example.com\r\n')), false);
  assert.equal(looksLikeMbox(Buffer.from('From : alice@example.com\r\n')), false);
  assert.equal(looksLikeMbox(Buffer.from('Subject: x\r\n')), false);
});

test('stripEnvelopeLine: one saved message loses its From_ line; a real mbox is refused; plain messages pass', async () => {
  const { stripEnvelopeLine } = await import('../../src/mime/mbox.ts');
  const msg = Buffer.from('From: a@example.com\r\nSubject: x\r\n\r\nbody\r\n');
  assert.deepEqual(stripEnvelopeLine(msg), msg);
  assert.deepEqual(stripEnvelopeLine(Buffer.concat([Buffer.from('From - Mon Nov 23 13:00:00 2026\n'), msg])), msg);
  const two = Buffer.concat([formatMboxEntry('a', msg), formatMboxEntry('b', msg)]);
  assert.throws(() => stripEnvelopeLine(two), (e) => isKakitomeError(e, 'INVALID_ARGUMENT'));
});

/**
 * The line-by-line reading of mboxrd that splitMbox implemented before it jumped
 * from one "From " to the next (issue 12 item 6): the reference for the test below.
 */
function referenceSplit(data: Buffer, max: number): Array<{ envelope: string; message?: string; error?: string }> | 'MALFORMED' {
  const out: Array<{ envelope: string; message?: string; error?: string }> = [];
  let envelope: string | undefined;
  let lines: Buffer[] = [];
  let size = 0;
  let oversized = false;
  const eolLess = (l: Buffer) => l.toString('latin1').replace(/\n$/, '').replace(/\r$/, '');
  const finish = () => {
    const last = lines[lines.length - 1];
    if (last !== undefined && eolLess(last).length === 0) lines.pop();
    out.push(oversized ? { envelope: envelope!, error: 'LIMIT' } : { envelope: envelope!, message: Buffer.concat(lines).toString('latin1') });
    lines = [];
    size = 0;
    oversized = false;
  };
  let start = 0;
  while (start < data.length) {
    const nl = data.indexOf(0x0a, start);
    const line = data.subarray(start, nl < 0 ? data.length : nl + 1);
    start += line.length;
    const text = line.toString('latin1');
    if (text.startsWith('From ')) {
      if (envelope !== undefined) finish();
      envelope = eolLess(line).slice(5);
      continue;
    }
    if (envelope === undefined) {
      if (eolLess(line).length === 0) continue;
      return 'MALFORMED';
    }
    if (oversized) continue;
    const unquoted = /^>+From /.test(text) ? line.subarray(1) : line;
    size += unquoted.length;
    if (size > max) {
      oversized = true;
      lines = [];
      continue;
    }
    lines.push(unquoted);
  }
  if (envelope !== undefined) finish();
  return out;
}

test('splitMbox, and the blocks of a batch split by its workers, read exactly as the line-by-line reference, on random mboxes cut into random chunks; entries written one by one or appended into one buffer give the reference bytes', async () => {
  let seed = 12;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const pieces = ['From ', '>From ', '>>From ', 'From: x', ' From ', 'body text', 'a>From ', '>', '', '\r', 'From'];
  const references: string[] = [];
  const bodies: Buffer[] = [];
  for (let round = 0; round < 400; round++) {
    const lines: string[] = rand(4) === 0 ? [''] : [];
    const count = rand(30);
    for (let i = 0; i < count; i++) lines.push(pieces[rand(pieces.length)]! + (rand(3) === 0 ? 'sender@example.com Mon Nov 23 13:00:09 2026' : 'more'.repeat(rand(4))));
    if (rand(3) > 0) lines.unshift('From first@example.com Mon Nov 23 13:00:09 2026');
    const eol = rand(2) === 0 ? '\n' : '\r\n';
    const data = Buffer.from(lines.join(eol) + (rand(4) === 0 ? '' : eol), 'latin1');
    const max = rand(3) === 0 ? 20 + rand(60) : 1 << 20;
    const expected = referenceSplit(data, max);
    const size = 1 + rand(40);
    let actual: Array<{ envelope: string; message?: string; error?: string }> | 'MALFORMED';
    try {
      actual = (await collect(data, size, max)).map((e) => e.error ? { envelope: e.envelope, error: e.error.code } : { envelope: e.envelope, message: e.message!.toString('latin1') });
    } catch (e) {
      assert.ok(isKakitomeError(e, 'MALFORMED'), String(e));
      actual = 'MALFORMED';
    }
    assert.deepEqual(actual, expected, `round ${round}, chunks of ${size}, max ${max}: ${JSON.stringify(data.toString('latin1'))}`);
    // A batch cuts the same file into blocks and its workers split them: the same messages, in the same order.
    let blocks: typeof actual;
    const blockBytes = 1 + rand(200);
    try {
      blocks = (await collectBlocks(data, size, blockBytes, max)).map((e) => e.error ? { envelope: e.envelope!, error: e.error } : { envelope: e.envelope!, message: e.message!.toString('latin1') });
    } catch (e) {
      assert.ok(isKakitomeError(e, 'MALFORMED'), String(e));
      blocks = 'MALFORMED';
    }
    assert.deepEqual(blocks, expected, `blocks of ${blockBytes}, round ${round}, chunks of ${size}, max ${max}: ${JSON.stringify(data.toString('latin1'))}`);
    // Writing: every line matching /^>*From / gets one more ">", the message ends with a line feed, then one empty line.
    const body = Buffer.from(lines.join(eol) + (rand(2) ? eol : ''), 'latin1');
    const quoted = body.toString('latin1').split('\n').map((l) => (/^>*From /.test(l) ? `>${l}` : l)).join('\n');
    const reference = `From env\n${quoted}${quoted.endsWith('\n') ? '' : '\n'}\n`;
    assert.equal(formatMboxEntry('env', body).toString('latin1'), reference);
    references.push(reference);
    bodies.push(body);
  }
  // A batch worker appends a block's entries into one buffer that grows: the same bytes as the entries one by one, from any starting size.
  for (const expected of [1, 7, 100, 4096]) {
    const writer = new MboxEntryWriter(expected);
    for (const body of bodies) writer.add('env', body);
    assert.equal(writer.bytes().toString('latin1'), references.join(''), `starting at ${expected} bytes`);
    assert.equal(writer.length, Buffer.byteLength(references.join(''), 'latin1'));
    // Its own buffer, never a slice of Node's shared pool: it is transferred to the main thread whole.
    assert.equal(writer.bytes().byteOffset, 0);
  }
});

test('an mbox entry writer used again after reset(): the new entries only, in the same memory when it fits', () => {
  const writer = new MboxEntryWriter(4096);
  writer.add('first', Buffer.from('Subject: one\n\nFrom here on, one.\n'));
  const first = writer.bytes();
  writer.reset(4096);
  assert.equal(writer.length, 0);
  writer.add('second', Buffer.from('Subject: two\n\ntwo\n'));
  assert.equal(writer.bytes().toString('latin1'), 'From second\nSubject: two\n\ntwo\n\n');
  assert.equal(writer.bytes().buffer, first.buffer, 'the same memory');
  // Larger than it holds: a block of its own; much smaller: a smaller one (a large chunk's memory is not kept for ever).
  writer.reset(10_000);
  assert.notEqual(writer.bytes().buffer, first.buffer);
  writer.add('third', Buffer.from('x\n'));
  assert.equal(writer.bytes().toString('latin1'), 'From third\nx\n\n');
  const large = writer.bytes().buffer;
  writer.reset(100);
  assert.notEqual(writer.bytes().buffer, large);
  assert.equal(writer.bytes().byteOffset, 0);
});

test('MboxEntryWriter.addChunks writes what add writes of the joined pieces: quoted lines (within a piece or across two), no final newline, empty', () => {
  const messages: Array<Array<Uint8Array | string>> = [
    ['From: a@b.example\r\n', '\r\n', Buffer.from('body\r\n')],
    ['Subject: x\r\n\r\n', Buffer.from('line\r\nFrom here\r\n>From there\r\n')],
    ['Subject: x\r\n\r\nFr', Buffer.from('om split across pieces\r\n')],
    ['Subject: x\r\n\r\n', '>>', Buffer.from('From after quotes\n'), 'no final newline'],
    [],
    [''],
    ['\n', 'From '],
  ];
  const chunked = new MboxEntryWriter(1);
  const whole = new MboxEntryWriter(1);
  for (let round = 0; round < 3; round++) {
    for (const [i, pieces] of messages.entries()) {
      const joined = Buffer.concat(pieces.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : p)));
      chunked.addChunks(`sender-${i}@example.net Sun Dec  6 10:00:00 2026`, pieces);
      whole.add(`sender-${i}@example.net Sun Dec  6 10:00:00 2026`, joined);
    }
    assert.equal(chunked.bytes().toString('latin1'), whole.bytes().toString('latin1'), `round ${round}`);
    chunked.reset(round * 50);
    whole.reset(round * 50);
  }
});

test('separated: only a dated From_ line after an empty line starts a message; a bare one fails its message, at any chunk size', async () => {
  const separated = async (data: Buffer, size: number) => {
    const out = [];
    for await (const e of splitMbox(chunks(data, size), 1 << 20, 'separated')) out.push(e.error ? `${e.envelope}: ${e.error.code}` : `${e.envelope}: ${e.message!.toString('latin1')}`);
    return out;
  };
  // What the mboxrd writer makes reads the same.
  const file = Buffer.concat(messages.map((m, i) => formatMboxEntry(`sender${i}@example.com Mon Nov 23 13:00:0${i} 2026`, m)));
  const rd = (await collect(file, 1 << 16)).map((e) => `${e.envelope}: ${e.message!.toString('latin1')}`);
  const envelope = (i: number) => `From s@example.com Mon Nov 23 13:00:0${i} 2026`;
  const hostile = Buffer.from([
    `${envelope(0)}\r\nSubject: one\r\n\r\nFrom now on\r\n\r\n`,
    `${envelope(1)}\nSubject: two\n\nbody\n\nFrom next week, hours change.\n\n`,
    `${envelope(2)}\nSubject: three\n\nnote:\n${envelope(9)}\nFrom: ceo@example.com\n\nPay.\n\n`,
    `${envelope(3)}\r\nSubject: four\r\n\r\nlast\r\n`,
  ].join(''));
  for (const size of [1, 2, 7, 64, 1 << 16]) {
    assert.deepEqual(await separated(file, size), rd, `an mboxrd file, read ${size} bytes at a time`);
    assert.deepEqual(await separated(hostile, size), [
      `${envelope(0).slice(5)}: MALFORMED`,
      `${envelope(1).slice(5)}: MALFORMED`,
      `${envelope(2).slice(5)}: MALFORMED`,
      `${envelope(3).slice(5)}: Subject: four\r\n\r\nlast\r\n`,
    ], `read ${size} bytes at a time`);
  }
  // The CLI's reading is unchanged: every From line is a separator.
  assert.equal((await collect(hostile, 64)).length, 7);
  await assert.rejects(separated(Buffer.from('From here on\nSubject: x\n\nbody\n'), 7), (e) => isKakitomeError(e, 'MALFORMED'));
});
