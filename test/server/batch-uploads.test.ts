/**
 * The batch upload readers (NDJSON, multipart) and the chunk records, fed as a
 * network would feed them: the same upload in one piece, one byte at a time and
 * cut at random places must give the same entries; hostile framing is refused or
 * bounded (an oversized line or part is one failed entry, its bytes not kept).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { isKakitomeError } from '../../src/errors.ts';
import { decodeChunk, encodeChunk, type ChunkEntry } from '../../src/server/batches/chunk-records.ts';
import { multipartBoundary, splitMultipartMessages } from '../../src/server/batches/split-multipart-messages.ts';
import { splitNdjsonMessages } from '../../src/server/batches/split-ndjson-messages.ts';

async function* pieces(bytes: Buffer, cuts: number[]): AsyncGenerator<Buffer> {
  let from = 0;
  for (const c of [...cuts].sort((a, b) => a - b)) {
    yield bytes.subarray(from, c);
    from = c;
  }
  yield bytes.subarray(from);
}

async function collect(entries: AsyncIterable<ChunkEntry>): Promise<Array<string | [string, string]>> {
  const out: Array<string | [string, string]> = [];
  for await (const e of entries) out.push(e.message ? e.message.toString('latin1') : [e.error!.code, e.error!.reason]);
  return out;
}

/** Whole, byte by byte, and cut at random places: the same entries every time. */
async function sameEveryWay(bytes: Buffer, split: (s: AsyncIterable<Buffer>) => AsyncIterable<ChunkEntry>): Promise<Array<string | [string, string]>> {
  const whole = await collect(split(pieces(bytes, [])));
  assert.deepEqual(await collect(split(pieces(bytes, Array.from({ length: bytes.length - 1 }, (_, i) => i + 1)))), whole, 'byte by byte');
  for (let round = 0; round < 20; round++) {
    assert.deepEqual(await collect(split(pieces(bytes, Array.from({ length: 5 }, () => randomInt(0, bytes.length + 1))))), whole, `cut round ${round}`);
  }
  return whole;
}

test('NDJSON: text and base64 lines, blank lines skipped, bad lines and an oversized one are failed entries, wherever the stream is cut', async () => {
  const message = 'From: news@acme.example\r\n\r\nHello\r\n';
  const upload = Buffer.from([
    JSON.stringify({ message }),
    '   ',
    JSON.stringify({ base64: Buffer.from(message).toString('base64') }),
    '[1, 2]',
    JSON.stringify({ base64: 'QUJD' + '='.repeat(3) }),
    JSON.stringify({ message: 'x'.repeat(5000) }),
    JSON.stringify({ message: 'y'.repeat(200) }),
    JSON.stringify({ message: '' }),
    `${JSON.stringify({ message })}\r`,
  ].join('\n'));
  const got = await sameEveryWay(upload, (s) => splitNdjsonMessages(s, 128));
  assert.equal(got.length, 8);
  assert.equal(got[0], message);
  assert.equal(got[1], message);
  assert.equal(got[7], message);
  assert.deepEqual(got.slice(2, 7).map((e) => (e as [string, string])[0]), ['MALFORMED', 'MALFORMED', 'LIMIT', 'LIMIT', 'MALFORMED']);
  assert.match((got[4] as [string, string])[1], /line is longer than/);
  assert.match((got[5] as [string, string])[1], /larger than this service accepts/);
});

test('multipart: parts split wherever the stream is cut; a boundary look-alike, a truncated upload and an endless header are refused', async () => {
  const b = 'xYz-42';
  const message = (i: number) => `From: news@acme.example\r\nSubject: ${i}\r\n\r\nline with --${b.slice(0, 3)} and \r\n--not-the-boundary\r\n`;
  const upload = Buffer.from(`preamble\r\n--${b}\r\nContent-Type: message/rfc822\r\n\r\n${message(0)}\r\n--${b} \t\r\n\r\n${message(1)}\r\n--${b}\r\nContent-Type: text/plain\r\n\r\nhi\r\n--${b}\r\n\r\n${'z'.repeat(200)}\r\n--${b}\r\n\r\n\r\n--${b}--\r\nepilogue --${b}\r\n`);
  const got = await sameEveryWay(upload, (s) => splitMultipartMessages(s, b, 128));
  assert.deepEqual(got.map((e) => (typeof e === 'string' ? e : e[0])), [message(0), message(1), 'INVALID_ARGUMENT', 'LIMIT', 'MALFORMED']);

  const refused = async (bytes: string, why: RegExp) => {
    await assert.rejects(collect(splitMultipartMessages(pieces(Buffer.from(bytes), []), b, 128)), (e) => isKakitomeError(e, 'MALFORMED') && why.test(e.message));
  };
  await refused(`--${b}\r\n\r\n${message(0)}`, /closing delimiter/);
  await refused(`--${b}\r\n\r\n${message(0)}\r\n--${b}X\r\n`, /no delimiter/);
  await refused(`--${b}\r\nX-Long: ${'a'.repeat(20_000)}`, /header section/);
  assert.equal(multipartBoundary('multipart/mixed; boundary="a b"'), 'a b');
  assert.equal(multipartBoundary('multipart/form-data; charset=x; boundary=----abc'), '----abc');
  assert.throws(() => multipartBoundary('multipart/mixed'), (e) => isKakitomeError(e, 'MALFORMED'));
  assert.throws(() => multipartBoundary(`multipart/mixed; boundary=${'a'.repeat(71)}`), (e) => isKakitomeError(e, 'MALFORMED'));
});

test('chunk records round-trip; a damaged chunk is MALFORMED, not misread', () => {
  const entries: ChunkEntry[] = [
    { envelope: 'a@b.example Sun Dec  6 10:00:00 2026', message: Buffer.from('From: a@b.example\r\n\r\nx\r\n') },
    { envelope: '', error: { code: 'LIMIT', reason: 'too large' } },
    { envelope: '', message: Buffer.from([0, 0xff, 0x0a]) },
  ];
  const bytes = encodeChunk(entries);
  assert.deepEqual(decodeChunk(bytes), entries);
  assert.throws(() => decodeChunk(bytes.subarray(0, bytes.length - 1)), (e) => isKakitomeError(e, 'MALFORMED'));
  const wrongKind = Buffer.from(bytes);
  wrongKind[0] = 9;
  assert.throws(() => decodeChunk(wrongKind), (e) => isKakitomeError(e, 'MALFORMED'));
});
