import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeFieldBody, parseHeaderSection } from '../../src/mime/parse-header-section.ts';
import { parseEntity } from '../../src/mime/parse-entity.ts';
import { walkEntities } from '../../src/mime/entity.ts';
import { DEFAULT_LIMITS } from '../../src/limits.ts';
import { messageCorpus } from '../helpers/message-corpus.ts';
import { seededRandom } from '../helpers/seeded-random.ts';

// parseHeaderSection reads single-line ASCII fields without decodeFieldBody (the
// general reading); both must give the same value for every field.
test('every field value equals the general reading of its bytes (fast path for single-line ASCII fields)', () => {
  let fields = 0;
  for (const { name, bytes } of messageCorpus()) {
    for (const e of walkEntities(parseEntity(bytes))) {
      for (const f of e.headers) {
        const colon = f.raw.indexOf(0x3a);
        assert.equal(f.value, decodeFieldBody(f.raw.subarray(colon + 1)), `${name}: ${f.name}`);
        fields++;
      }
    }
  }
  assert.ok(fields > 60);
});

test('generated header sections: fast and general readings agree, folding and 8-bit included', () => {
  const pieces = ['a', ' ', '\t', ':', 'é', '=?utf-8?B?44Ki?=', '\r', 'x y', '\r\n ', '\r\n\t', '\n ', '\u3042', '"q"', ';'];
  const rnd = seededRandom(7);
  for (let t = 0; t < 2000; t++) {
    const lines: string[] = [];
    for (let f = 0; f < 1 + rnd(4); f++) {
      let v = '';
      for (let j = rnd(8); j > 0; j--) v += pieces[rnd(pieces.length)];
      lines.push(`X-F${f}:${v}`);
    }
    const eol = rnd(2) ? '\r\n' : '\n';
    const buf = Buffer.from(lines.join(eol) + eol + eol + 'body', rnd(3) ? 'utf8' : 'latin1');
    let section;
    try {
      section = parseHeaderSection(buf, 0, buf.length, DEFAULT_LIMITS);
    } catch {
      continue; // e.g. a generated bare CR line break: refused either way
    }
    for (const f of section.fields) {
      const colon = f.raw.indexOf(0x3a);
      assert.equal(f.value, decodeFieldBody(f.raw.subarray(colon + 1)), JSON.stringify(buf.toString('latin1')));
    }
  }
});

test('a header line past the line limit is LIMIT, found without scanning the rest', () => {
  const limits = { ...DEFAULT_LIMITS, maxLineLength: 100 };
  const buf = Buffer.from(`Subject: ${'x'.repeat(200)}\r\n\r\n`);
  assert.throws(() => parseHeaderSection(buf, 0, buf.length, limits), (e: Error & { code?: string }) => e.code === 'LIMIT');
  const ok = Buffer.from(`Subject: ${'x'.repeat(80)}\r\n\r\n`);
  assert.equal(parseHeaderSection(ok, 0, ok.length, limits).fields[0]!.value, 'x'.repeat(80));
  // A last line without a line break, exactly at the limit, is accepted.
  const last = Buffer.from(`Subject: ${'y'.repeat(91)}`);
  assert.equal(parseHeaderSection(last, 0, last.length, limits).fields[0]!.value, 'y'.repeat(91));
});
