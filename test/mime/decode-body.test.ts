import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decode as decodeBase64 } from 'libbase64';
import { decodeBase64Text, decodeBody } from '../../src/mime/decode-body.ts';
import { seededRandom } from '../helpers/seeded-random.ts';

test('decodeBase64Text equals libbase64 decode on generated Latin-1 text (padding anywhere, line breaks, junk)', () => {
  const pieces = ['QUJD', 'YQ==', 'YWI=', '\r\n', ' ', '=', '==', '-_', '+/', '\u00e9', '*', 'Zg', 'ZmFrZQ'];
  const rnd = seededRandom(9);
  for (let t = 0; t < 20000; t++) {
    let s = '';
    for (let j = rnd(8); j > 0; j--) s += pieces[rnd(pieces.length)];
    assert.deepEqual(decodeBase64Text(s), decodeBase64(s), JSON.stringify(s));
  }
});

test('decodeBody reads a base64 body through the same decoder', () => {
  const data = Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 13) & 0xff));
  const body = Buffer.from(`${data.toString('base64').replace(/.{76}/g, '$&\r\n')}\r\n`, 'latin1');
  assert.deepEqual(decodeBody({ body, transferEncoding: 'base64' }), data);
});
