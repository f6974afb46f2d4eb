import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BerStreamReader, type BerEvent, type StreamHeader, type Disposition } from '../../src/asn1/ber-stream.ts';
import { errorCode } from '../helpers/error-code.ts';
import { sequence, explicit, octetString } from '../../src/asn1/der.ts';

const h = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/**
 * A CMS-shaped decision: descend through the outer SEQUENCE / [0] / SEQUENCE /
 * encapsulated SEQUENCE / [0] / constructed OCTET STRING, stream primitive OCTET
 * STRINGs found there, collect everything else.
 */
function cmsLike(hd: StreamHeader): Disposition {
  const inContent = hd.path.length >= 5 && hd.path[4] === 0xa0;
  if (inContent) return hd.constructed ? 'descend' : 'stream';
  if (hd.depth <= 2 && hd.constructed && (hd.tag === 0x30 || hd.tag === 0xa0)) return 'descend';
  if (hd.depth === 3 && hd.tag === 0x30 && hd.path[2] === 0x30 && hd.path.length === 3) return 'descend';
  if (hd.depth === 4 && hd.tag === 0xa0) return 'descend';
  return 'collect';
}

interface Summary {
  trace: string[];
  content: string;
  values: string[];
}

function summarize(events: BerEvent[], s: Summary): void {
  for (const e of events) {
    if (e.kind === 'data') s.content += Buffer.from(e.bytes).toString('hex');
    else if (e.kind === 'value') {
      s.values.push(Buffer.from(e.bytes).toString('hex'));
      assert.equal(e.tlv.bytes.length, e.bytes.length);
      s.trace.push(`value:${e.tag.toString(16)}@${e.depth}`);
    } else s.trace.push(`${e.kind}:${e.tag.toString(16)}@${e.depth}`);
  }
}

function run(input: Uint8Array, splits: number[], decide = cmsLike, opts: { maxValueBytes?: number; maxDepth?: number } = {}): Summary {
  const r = new BerStreamReader({ decide, ...opts });
  const s: Summary = { trace: [], content: '', values: [] };
  let prev = 0;
  for (const at of [...splits, input.length]) {
    summarize(r.push(input.subarray(prev, at)), s);
    prev = at;
  }
  r.end();
  assert.equal(r.position, input.length);
  return s;
}

const code = errorCode;

// ContentInfo(indef){ OID, [0](indef){ SEQ(indef){ INTEGER 1, SET{}, SEQ(indef){ OID, [0](indef){
//   OCTET STRING(indef){ 04 03 aabbcc, 04 00, 04 02 ddee } } }, [0](indef){ SEQ{02 01 07} } , SET{ SEQ{ 02 01 01 } } } } }
const INDEFINITE = h(`
  30 80 06 03 2a 03 04
    a0 80 30 80
      02 01 01 31 00
      30 80 06 03 2a 03 05 a0 80 24 80 04 03 aa bb cc 04 00 04 02 dd ee 00 00 00 00 00 00
      a0 80 30 03 02 01 07 00 00
      31 05 30 03 02 01 01
    00 00 00 00
  00 00`);
// The same structure with definite lengths and a primitive content string.
const DEFINITE = sequence(
  h('06 03 2a 03 04'),
  explicit(0, sequence(h('02 01 01 31 00'), sequence(h('06 03 2a 03 05'), explicit(0, octetString(h('aa bb cc dd ee')))), explicit(0, h('30 03 02 01 07')), h('31 05 30 03 02 01 01'))),
);

test('indefinite, segmented input: every single split point gives the same events', () => {
  const whole = run(INDEFINITE, []);
  assert.equal(whole.content, 'aabbccddee');
  assert.deepEqual(whole.values, ['06032a0304', '020101', '3100', '06032a0305', 'a08030030201070000', '31053003020101']);
  for (let i = 1; i < INDEFINITE.length; i++) assert.deepEqual(run(INDEFINITE, [i]), whole, `split at ${i}`);
});

test('byte-by-byte delivery gives the same events as one chunk', () => {
  for (const input of [INDEFINITE, DEFINITE]) {
    const all = Array.from({ length: input.length - 1 }, (_, i) => i + 1);
    assert.deepEqual(run(input, all), run(input, []));
  }
});

test('definite input: every pair of split points gives the same events', () => {
  const whole = run(DEFINITE, []);
  assert.equal(whole.content, 'aabbccddee');
  for (let i = 1; i < DEFINITE.length; i++) for (let j = i; j < DEFINITE.length; j += 3) assert.deepEqual(run(DEFINITE, [i, j]), whole);
});

test('definite and indefinite encodings deliver the same content and the same outer trace shape', () => {
  const a = run(INDEFINITE, []);
  const b = run(DEFINITE, []);
  assert.equal(a.content, b.content);
  assert.deepEqual(a.trace.filter((t) => t.endsWith('@0') || t.endsWith('@1')), b.trace.filter((t) => t.endsWith('@0') || t.endsWith('@1')));
});

test('zero-length values complete without further input', () => {
  const s = run(h('30 80 04 00 30 00 00 00'), [], (hd) => (hd.constructed ? 'descend' : 'stream'));
  assert.deepEqual(s.trace, ['enter:30@0', 'enter:4@1', 'leave:4@1', 'enter:30@1', 'leave:30@1', 'leave:30@0']);
  const r = new BerStreamReader({ decide: () => 'stream' });
  summarize(r.push(h('04 00')), { trace: [], content: '', values: [] });
  assert.equal(r.done, true);
  r.end();
});

test('a collected outermost value is parsed strictly', () => {
  const s = run(h('30 80 02 01 05 00 00'), [3], () => 'collect');
  assert.deepEqual(s.values, ['3080020105' + '0000']);
  assert.equal(code(() => run(h('30 03 02 02 01'), [], () => 'collect')), 'MALFORMED'); // child runs past its parent
});

test('trailing data after the outermost value is rejected, even in a later chunk', () => {
  assert.equal(code(() => run(h('30 00 00'), [])), 'MALFORMED');
  assert.equal(code(() => run(h('30 80 00 00 05'), [4])), 'MALFORMED');
  assert.equal(code(() => run(Buffer.concat([DEFINITE, h('00')]), [DEFINITE.length])), 'MALFORMED');
});

test('truncated input is rejected at end() at every cut point', () => {
  for (const input of [INDEFINITE, DEFINITE]) {
    for (let cut = 0; cut < input.length; cut++) {
      assert.equal(code(() => run(input.subarray(0, cut), [])), 'MALFORMED', `cut at ${cut}`);
    }
  }
});

test('structural damage is rejected with MALFORMED', () => {
  const d = (hd: StreamHeader): Disposition => (hd.constructed ? 'descend' : 'stream');
  assert.equal(code(() => run(h('30 04 04 05 aa bb cc dd ee'), [], d)), 'MALFORMED'); // child runs past parent
  assert.equal(code(() => run(h('30 04 00 00 00 00'), [], d)), 'MALFORMED'); // EOC inside a definite value
  assert.equal(code(() => run(h('00 00'), [], d)), 'MALFORMED'); // EOC at the top
  assert.equal(code(() => run(h('30 80 00 01 00 00 00'), [], d)), 'MALFORMED'); // EOC with a length
  assert.equal(code(() => run(h('04 80 aa 00 00'), [], d)), 'MALFORMED'); // indefinite primitive
  assert.equal(code(() => run(h('04 85 00 00 00 00 01 aa'), [], d)), 'MALFORMED'); // 5-octet length
  assert.equal(code(() => run(h('04 ff aa'), [], d)), 'MALFORMED'); // reserved length form
  assert.equal(code(() => run(h('1f 01 00'), [], d)), 'MALFORMED'); // high tag number
  assert.equal(code(() => run(h('24 03 04 01 aa'), [], () => 'stream')), 'MALFORMED'); // streaming a constructed value
  assert.equal(code(() => run(h('04 03 30 01 00'), [], () => 'descend')), 'MALFORMED'); // descending into a primitive
  assert.equal(code(() => run(h('30 80 30 80 04 01 aa 00 00'), [], () => 'collect')), 'MALFORMED'); // collected value missing its EOC
  assert.equal(code(() => run(h('30 80 05 01 00 00 00'), [], d)), 'MALFORMED'); // NULL with contents, streamed past
  assert.equal(code(() => run(h('30 03 25 01 00'), [], d)), 'MALFORMED'); // constructed NULL
  assert.equal(code(() => run(h('30 80 01 00 00 00'), [], d)), 'MALFORMED'); // empty BOOLEAN
});

test('nesting beyond the depth limit fails with LIMIT, in descended and collected values', () => {
  const deep = Buffer.concat([...Array.from({ length: 10 }, () => h('30 80')), ...Array.from({ length: 10 }, () => h('00 00'))]);
  assert.equal(code(() => run(deep, [], () => 'descend', { maxDepth: 5 })), 'LIMIT');
  assert.equal(code(() => run(deep, [], () => 'collect', { maxDepth: 5 })), 'LIMIT');
  assert.equal(run(deep, [7], () => 'descend', { maxDepth: 10 }).trace.length, 20);
});

test('collected values larger than maxValueBytes fail with LIMIT, definite or not', () => {
  const big = Buffer.concat([h('04 82 01 00'), Buffer.alloc(256)]);
  assert.equal(code(() => run(big, [], () => 'collect', { maxValueBytes: 100 })), 'LIMIT');
  const bigIndef = Buffer.concat([h('30 80'), ...Array.from({ length: 40 }, () => h('04 03 01 02 03')), h('00 00')]);
  assert.equal(code(() => run(bigIndef, [50], () => 'collect', { maxValueBytes: 100 })), 'LIMIT');
  assert.equal(run(bigIndef, [], () => 'collect', { maxValueBytes: 300 }).values.length, 1);
});

test('streamed data are subarrays of the pushed chunk, not copies', () => {
  const input = Buffer.concat([h('04 82 10 00'), Buffer.alloc(4096, 7)]);
  const r = new BerStreamReader({ decide: () => 'stream' });
  const ev = r.push(input);
  const data = ev.find((e) => e.kind === 'data');
  assert.ok(data && data.kind === 'data');
  assert.equal(data.bytes.buffer, input.buffer);
  r.end();
});

test('a failed reader refuses further input', () => {
  const r = new BerStreamReader({ decide: () => 'stream' });
  assert.equal(code(() => r.push(h('04 80'))), 'MALFORMED');
  assert.equal(code(() => r.push(h('04 00'))), 'MALFORMED');
});
