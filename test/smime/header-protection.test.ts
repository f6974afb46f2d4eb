import { test } from 'node:test';
import assert from 'node:assert/strict';
import { collapseWhitespace, isContentField } from '../../src/smime/header-protection.ts';
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

test('isContentField reads names as the lower-cased comparison does', () => {
  const general = (name: string) => name.toLowerCase().startsWith('content-') || name.toLowerCase() === 'mime-version';
  const names = ['Content-Type', 'content-transfer-encoding', 'CONTENT-ID', 'Content-', 'Content', 'Contents-Type', 'MIME-Version', 'mime-version', 'Mime-Versions', 'MIME-Versio', 'From', 'Received', 'Message-ID', 'M', 'c', '', 'X-Content-Type', 'Mail-Followup-To', 'Cc', 'Comments', 'Content\u212a-Type'];
  for (const name of names) assert.equal(isContentField(name), general(name), name);
});
