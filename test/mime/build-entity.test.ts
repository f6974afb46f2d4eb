import { test } from 'node:test';
import assert from 'node:assert/strict';
import libmime from 'libmime';
import { buildEntity, formatHeaderSection, formatParameterizedValue, joinChunks } from '../../src/mime/build-entity.ts';

test('formatParameterizedValue gives libmime buildHeaderValue results, repeated calls and reused objects included', () => {
  const params: Record<string, string> = { charset: 'utf-8', hp: 'clear' };
  const cases: Array<[string, Record<string, string>]> = [
    ['text/plain', params],
    ['text/plain', { charset: 'utf-8', hp: 'cipher' }],
    ['multipart/mixed', { boundary: '----=_x' }],
    ['application/octet-stream', { name: '日本語.txt' }],
    ['text/plain', { name: 'a "quoted" \\ name', 'x': '' }],
    ['text/plain', { name: 'x'.repeat(80) }],
    ['text/plain', {}],
  ];
  for (let round = 0; round < 3; round++) {
    for (const [value, p] of cases) assert.equal(formatParameterizedValue(value, p), libmime.buildHeaderValue({ value, params: p }), JSON.stringify([value, p]));
  }
  params.hp = 'cipher';
  assert.equal(formatParameterizedValue('text/plain', params), 'text/plain; charset=utf-8; hp=cipher');
});

test('buildEntity writes raw fields as given, new fields formatted, in one buffer', () => {
  const raw = { name: 'X-Raw', raw: Buffer.from('X-Raw:  kept  as is'), value: 'kept  as is' };
  const e = buildEntity([raw, ['Subject', 'héllo'], ['To', 'a@example.com']], Buffer.from('body\r\n'));
  assert.equal(e.toString('latin1'), `X-Raw:  kept  as is\r\n${formatHeaderSection([['Subject', 'héllo']]).toString('latin1')}To: a@example.com\r\n\r\nbody\r\n`);
  assert.deepEqual(joinChunks(['ab', Buffer.from([0, 255]), '', 'c']), Buffer.from([0x61, 0x62, 0, 255, 0x63]));
});
