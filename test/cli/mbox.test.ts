import { test } from 'node:test';
import assert from 'node:assert/strict';
import { splitMbox, formatMboxEntry, looksLikeMbox } from '../../src/cli/mbox.ts';
import { isKakitomeError } from '../../src/errors.ts';

async function* chunks(data: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

async function collect(data: Buffer, size: number, max = 1 << 20) {
  const out = [];
  for await (const e of splitMbox(chunks(data, size), max)) out.push(e);
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
});

test('looksLikeMbox tells a From_ line from an RFC 5322 "From :" field', () => {
  assert.equal(looksLikeMbox(Buffer.from('From alice@example.com Mon Nov 23 13:00:09 2026\n')), true);
  assert.equal(looksLikeMbox(Buffer.from('From: alice@example.com\r\n')), false);
  assert.equal(looksLikeMbox(Buffer.from('From : alice@example.com\r\n')), false);
  assert.equal(looksLikeMbox(Buffer.from('Subject: x\r\n')), false);
});

test('stripEnvelopeLine: one saved message loses its From_ line; a real mbox is refused; plain messages pass', async () => {
  const { stripEnvelopeLine } = await import('../../src/cli/mbox.ts');
  const msg = Buffer.from('From: a@example.com\r\nSubject: x\r\n\r\nbody\r\n');
  assert.deepEqual(stripEnvelopeLine(msg), msg);
  assert.deepEqual(stripEnvelopeLine(Buffer.concat([Buffer.from('From - Mon Nov 23 13:00:00 2026\n'), msg])), msg);
  const two = Buffer.concat([formatMboxEntry('a', msg), formatMboxEntry('b', msg)]);
  assert.throws(() => stripEnvelopeLine(two), (e) => isKakitomeError(e, 'INVALID_ARGUMENT'));
});
