import { test } from 'node:test';
import assert from 'node:assert/strict';
import libmime from 'libmime';
import { buildEntity, buildPlainHeaderValue, foldLines, formatHeaderSection, formatParameterizedValue, joinChunks } from '../../src/mime/build-entity.ts';

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

test('buildPlainHeaderValue writes what libmime writes, or leaves the value to libmime, on random parameters', () => {
  let seed = 6;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const alphabet = ['a', 'Z', '0', '-', '.', '_', ' ', '\t', '"', "'", '\\', ';', ':', '/', '=', '?', '(', ')', ',', '<', '>', '@', '[', ']', '=?', '~', '\x7f', '\x01', 'é', '日', '\ud83d', '+'];
  let plain = 0;
  for (let i = 0; i < 5000; i++) {
    const params: Record<string, string> = {};
    for (let k = rand(4); k > 0; k--) {
      let v = '';
      for (let n = rand(5) === 0 ? 70 + rand(10) : rand(12); n > 0; n--) v += alphabet[rand(alphabet.length)];
      params[['charset', 'name', 'boundary', 'hp', 'x-k'][rand(5)]!] = v;
    }
    const value = ['text/plain', 'multipart/signed', 'application/pkcs7-mime', 'text/pla\x01in'][rand(4)]!;
    const ours = buildPlainHeaderValue(value, params);
    if (ours === undefined) continue;
    plain++;
    assert.equal(ours, libmime.buildHeaderValue({ value, params }), JSON.stringify([value, params]));
  }
  assert.ok(plain > 1000, `enough plain cases were compared (${plain})`);
  // What it leaves to libmime: RFC 2231 encoding.
  assert.equal(buildPlainHeaderValue('text/plain', { name: '日本語.txt' }), undefined);
  assert.equal(buildPlainHeaderValue('text/plain', { name: '=?utf-8?q?x?=' }), undefined);
  assert.equal(buildPlainHeaderValue('text/plain', { name: 'x'.repeat(75) }), undefined);
});

test('foldLines folds exactly as libmime foldLines, on random text', () => {
  let seed = 9;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const words = ['a', 'word', 'x'.repeat(30), 'y'.repeat(90), ' ', '  ', '\t', '\r\n', '\n', '\r', ';', 'boundary="----=_Kakitome_AAAAAAAAAAAAAAAAAAAA"', 'é'];
  for (let i = 0; i < 3000; i++) {
    let text = 'Content-Type: ';
    for (let n = rand(30); n > 0; n--) text += words[rand(words.length)];
    for (const width of [76, 40, 10]) assert.equal(foldLines(text, width), libmime.foldLines(text, width), JSON.stringify([text, width]));
  }
});

test('buildEntity writes raw fields as given, new fields formatted, in one buffer', () => {
  const raw = { name: 'X-Raw', raw: Buffer.from('X-Raw:  kept  as is'), value: 'kept  as is' };
  const e = buildEntity([raw, ['Subject', 'héllo'], ['To', 'a@example.com']], Buffer.from('body\r\n'));
  assert.equal(e.toString('latin1'), `X-Raw:  kept  as is\r\n${formatHeaderSection([['Subject', 'héllo']]).toString('latin1')}To: a@example.com\r\n\r\nbody\r\n`);
  assert.deepEqual(joinChunks(['ab', Buffer.from([0, 255]), '', 'c']), Buffer.from([0x61, 0x62, 0, 255, 0x63]));
});
