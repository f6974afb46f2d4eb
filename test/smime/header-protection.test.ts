import { test } from 'node:test';
import assert from 'node:assert/strict';
import { collapseWhitespace } from '../../src/smime/header-protection.ts';

test('collapseWhitespace equals the general replace(/\\s+/g, " ").trim() on generated text', () => {
  const pieces = ['a', 'Re:', ' ', '  ', '\t', '\r\n', '\u00a0', '\u3000', '会議', 'é', '\u2028', 'x.y', ''];
  let seed = 5;
  const rnd = (k: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % k;
  };
  for (let t = 0; t < 20000; t++) {
    let s = '';
    for (let j = rnd(7); j > 0; j--) s += pieces[rnd(pieces.length)];
    assert.equal(collapseWhitespace(s), s.replace(/\s+/g, ' ').trim(), JSON.stringify(s));
  }
});
