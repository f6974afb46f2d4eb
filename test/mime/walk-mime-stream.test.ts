import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MimeStreamWalker, type StreamEntityHeader } from '../../src/mime/walk-mime-stream.ts';
import { parseEntity } from '../../src/mime/parse-entity.ts';
import { walkEntities, type MimeEntity } from '../../src/mime/entity.ts';
import { resolveLimits, type Limits } from '../../src/limits.ts';
import { isKakitomeError } from '../../src/errors.ts';

interface Walked {
  /** Every byte the walker reported, in order: must give the input back. */
  bytes: Buffer;
  headers: StreamEntityHeader[];
  /** Leaf bodies, in order. */
  bodies: Buffer[];
  warnings: string[];
}

function walk(input: Buffer, sizes: (i: number) => number, limits: Partial<Limits> = {}): Walked {
  const all: Buffer[] = [];
  const headers: StreamEntityHeader[] = [];
  const bodies: Buffer[] = [];
  let body: Buffer[] | undefined;
  const walker = new MimeStreamWalker(
    {
      header: (h) => {
        headers.push(h);
        all.push(h.raw);
        if (h.contentType.type !== 'multipart') body = [];
      },
      // Copies: the test feeds subarrays of one buffer, but the walker's contract allows reuse.
      body: (b) => {
        all.push(Buffer.from(b));
        body!.push(Buffer.from(b));
      },
      bodyEnd: () => {
        bodies.push(Buffer.concat(body!));
        body = undefined;
      },
      structure: (b) => all.push(Buffer.from(b)),
    },
    resolveLimits(limits),
  );
  for (let at = 0, i = 0; at < input.length; i++) {
    const n = Math.max(1, sizes(i));
    walker.push(input.subarray(at, at + n));
    at += n;
  }
  walker.end();
  return { bytes: Buffer.concat(all), headers, bodies, warnings: walker.warnings };
}

const crlf = (lines: string[]): Buffer => Buffer.from(lines.join('\r\n'), 'latin1');

const corpus: Record<string, Buffer> = {
  single: crlf(['From: a@example.com', 'Subject: x', '', 'body line', '--not a delimiter', '']),
  nested: crlf([
    'Content-Type: multipart/mixed; boundary="b"', '', 'preamble', '--b', 'Content-Type: multipart/alternative; boundary="b1"', '',
    '--b1', 'Content-Type: text/plain', '', 'plain --b', '--b1x not a delimiter', '--bb', '--b1  ', 'Content-Type: text/html', '', '<p>html</p>', '--b1--', 'inner epilogue',
    '--b', 'Content-Type: application/octet-stream', 'Content-Transfer-Encoding: base64', '', 'AAEC', 'AwQF', '--b-- ', 'outer epilogue', '',
  ]),
  headerOnly: crlf(['Content-Type: multipart/mixed; boundary=z', '', '--z', 'Content-Type: text/plain', '--z', '', 'no header', '--z--']),
  bodyStartsWithDelimiter: crlf(['Content-Type: multipart/mixed; boundary=q', '', '--q', 'Content-Type: text/plain', '', '--q', '', 'x', '--q--', '']),
  noClose: crlf(['Content-Type: multipart/mixed; boundary=t', '', '--t', '', 'truncated', 'more']),
  innerClosedByOuter: crlf([
    'Content-Type: multipart/mixed; boundary=o', '', '--o', 'Content-Type: multipart/mixed; boundary=i', '', '--i', '', 'inner', '--o', '', 'second', '--o--', '',
  ]),
  bareLfInCrlf: Buffer.from('Content-Type: multipart/mixed; boundary=m\r\n\r\n--m\n\nbody\n--m\r\n\r\nx\r\n--m--', 'latin1'),
  digest: crlf(['Content-Type: multipart/digest; boundary=d', '', '--d', '', 'Subject: inner', '', 'hi', '--d--', '']),
  rfc822: crlf([
    'Content-Type: multipart/mixed; boundary=r', '', '--r', 'Content-Type: message/rfc822', '', 'Content-Type: multipart/mixed; boundary=x', '', '--x', '', 'in', '--x--', '--r--', '',
  ]),
  noSeparator: crlf(['Subject: only headers']),
  mbox: Buffer.from('From sender Mon Nov 23 2026\r\nSubject: s\r\n\r\nb\r\n', 'latin1'),
};

/** Leaves of the in-memory tree, in order. */
function leaves(e: MimeEntity): MimeEntity[] {
  return [...walkEntities(e)].filter((x) => x.contentType.type !== 'multipart');
}

test('the walker reports the in-memory parser\'s tree and gives every byte back, however the input is cut', () => {
  for (const [name, input] of Object.entries(corpus)) {
    const tree = parseEntity(input);
    const all = [...walkEntities(tree)];
    const expectLeaves = leaves(tree).map((l) => l.body);
    let seed = name.length;
    const rnd = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    for (const sizes of [() => 1, () => 2, () => 3, () => 7, () => 64, () => 1 + Math.floor(rnd() * 40), () => 1 << 20]) {
      const w = walk(input, sizes);
      assert.deepEqual(w.bytes, input, name);
      assert.deepEqual(w.headers.map((h) => h.contentType.mediaType), all.map((e) => e.contentType.mediaType), name);
      assert.deepEqual(w.headers.map((h) => h.depth), all.map((e) => e.depth), name);
      assert.deepEqual(w.headers.map((h) => h.fields.map((f) => f.raw.toString('latin1'))), all.map((e) => e.headers.map((f) => f.raw.toString('latin1'))), name);
      assert.deepEqual(w.bodies, expectLeaves, name);
      assert.equal(w.warnings.some((x) => /no close delimiter/.test(x)), all.some((e) => e.warnings.some((x) => /no close delimiter/.test(x))), name);
    }
  }
});

test('malformed structures fail as the in-memory parser fails them', () => {
  const cases: Array<[string, Buffer, string, Partial<Limits>?]> = [
    ['two Content-Type fields', crlf(['Content-Type: text/plain', 'Content-Type: text/html', '', 'x']), 'MALFORMED'],
    ['two Content-Transfer-Encoding fields', crlf(['Content-Transfer-Encoding: 7bit', 'Content-Transfer-Encoding: base64', '', 'x']), 'MALFORMED'],
    ['no boundary', crlf(['Content-Type: multipart/mixed', '', '--x', '', 'a', '--x--']), 'MALFORMED'],
    ['no delimiter', crlf(['Content-Type: multipart/mixed; boundary=x', '', 'just text', '']), 'MALFORMED'],
    ['inner multipart without delimiter', crlf(['Content-Type: multipart/mixed; boundary=o', '', '--o', 'Content-Type: multipart/mixed; boundary=i', '', 'text', '--o--']), 'MALFORMED'],
    ['header line without colon', crlf(['Subject: x', 'garbage', '', 'b']), 'MALFORMED'],
    ['too many parts', crlf(['Content-Type: multipart/mixed; boundary=x', '', '--x', '', 'a', '--x', '', 'b', '--x--']), 'LIMIT', { maxMimeParts: 2 }],
    ['too deep', crlf(['Content-Type: multipart/mixed; boundary=a', '', '--a', 'Content-Type: multipart/mixed; boundary=b', '', '--b', '', 'x', '--b--', '--a--']), 'LIMIT', { maxMimeDepth: 0 }],
    ['header section too large', crlf(['Subject: x', `X-Long: ${'y'.repeat(5000)}`, '', 'b']), 'LIMIT', { maxHeaderBytes: 1000 }],
    ['endless header line', Buffer.from(`Subject: ${'y'.repeat(10_000)}`), 'LIMIT', { maxHeaderBytes: 1000, maxLineLength: 1000 }],
    ['boundary line of endless padding', Buffer.concat([crlf(['Content-Type: multipart/mixed; boundary=x', '', '--x', '', 'a', '--x']), Buffer.alloc(10_000, 0x20)]), 'LIMIT', { maxLineLength: 1000 }],
  ];
  for (const [name, input, code, limits] of cases) {
    assert.throws(() => parseEntity(input, limits ? { limits } : {}), (e) => isKakitomeError(e, code as 'LIMIT'), `in memory: ${name}`);
    for (const size of [1, 5, 1 << 20]) assert.throws(() => walk(input, () => size, limits), (e) => isKakitomeError(e, code as 'LIMIT'), `${name} at ${size}`);
  }
  assert.throws(() => walk(Buffer.alloc(0), () => 1), (e) => isKakitomeError(e, 'MALFORMED'));
});
