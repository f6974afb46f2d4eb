/**
 * The streaming DKIM body hash against the relaxed canonical body of RFC 6376
 * section 3.4.4 written out in full (canonicalizeBodyRelaxed): the same bh= for
 * random bodies of spaces, tabs, CR, LF and text, cut into random chunks (a CRLF or
 * a whitespace run split between chunks included), and the RFC's own example.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { DkimBodyHash } from '../../src/dkim/dkim-body-hash.ts';
import { canonicalizeBodyRelaxed } from '../../src/dkim/sign-dkim.ts';

const expected = (body: Buffer) => createHash('sha256').update(canonicalizeBodyRelaxed(body)).digest('base64');

function streamed(body: Buffer, cuts: number[]): string {
  const h = new DkimBodyHash();
  let at = 0;
  for (const c of [...cuts, body.length]) {
    h.update(body.subarray(at, c));
    at = c;
  }
  return h.digest();
}

test('DKIM body hash: RFC 6376 section 3.4.5 example, empty bodies, and the edges', () => {
  const cases = [' C \r\nD \t E\r\n\r\n\r\n', '', '\r\n\r\n', 'no line break', '\r\n\r\nleading empty lines\r\n', 'a \r', 'a\r', 'a \rb', ' \t \r\n', 'x\r\r\n\r\n', '\n\n', 'a \n b \r\n'];
  for (const c of cases) {
    const body = Buffer.from(c, 'latin1');
    for (let cut = 0; cut <= body.length; cut++) assert.equal(streamed(body, [cut]), expected(body), `${JSON.stringify(c)} cut at ${cut}`);
  }
});

test('DKIM body hash: random bodies in random chunks give the in-memory canonical form\'s hash', () => {
  let seed = 13;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const alphabet = [' ', '\t', '\r', '\n', '\r\n', 'a', 'b', '  ', '\r\n\r\n'];
  for (let round = 0; round < 2000; round++) {
    let text = '';
    for (let k = rand(40); k > 0; k--) text += alphabet[rand(alphabet.length)];
    const body = Buffer.from(text, 'latin1');
    const cuts = Array.from({ length: rand(5) }, () => rand(body.length + 1)).sort((x, y) => x - y);
    assert.equal(streamed(body, cuts), expected(body), `${JSON.stringify(text)} cut at ${cuts.join(',')}`);
  }
});
