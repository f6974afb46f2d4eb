import { test } from 'node:test';
import assert from 'node:assert/strict';
import { collapseWhitespace } from '../../src/smime/header-protection.ts';
import { seededRandom } from '../helpers/seeded-random.ts';

test('collapseWhitespace equals the general replace(/\\s+/g, " ").trim() on generated text', () => {
  const pieces = ['a', 'Re:', ' ', '  ', '\t', '\r\n', '\u00a0', '\u3000', '会議', 'é', '\u2028', 'x.y', ''];
  const rnd = seededRandom(5);
  for (let t = 0; t < 20000; t++) {
    let s = '';
    for (let j = rnd(7); j > 0; j--) s += pieces[rnd(pieces.length)];
    assert.equal(collapseWhitespace(s), s.replace(/\s+/g, ' ').trim(), JSON.stringify(s));
  }
});
