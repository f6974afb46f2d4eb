import { test } from 'node:test';
import assert from 'node:assert/strict';
import libmime from 'libmime';
import { parseContentType, readSimpleParameterizedValue } from '../../src/mime/parse-content-type.ts';
import { seededRandom } from '../helpers/seeded-random.ts';

function viaLibmime(s: string): { value: string; params: Array<[string, string]> } {
  const p = libmime.parseHeaderValue(s);
  return { value: String(p.value), params: Object.entries(p.params ?? {}).map(([k, v]) => [k, String(v)]) };
}

test('the simple-value reader agrees with libmime on every value it accepts (generated values)', () => {
  const pieces = ['text', '/', 'plain', ';', ' ', '\t', 'charset', '=', '"', 'utf-8', 'a b', '\\', '(', ')', '*', '*0', "utf-8''%41", 'é', '__proto__', 'BOUNDARY', '----=_x', ',', '?', '=?utf-8?B?YQ==?=', "'"];
  const rnd = seededRandom(11);
  let accepted = 0;
  for (let t = 0; t < 30000; t++) {
    let s = rnd(2) ? 'multipart/signed' : 'Text/Plain';
    for (let j = rnd(8); j > 0; j--) s += pieces[rnd(pieces.length)];
    if (rnd(3) === 0) s += `; protocol="application/pkcs7-signature"; micalg=sha-256; boundary="b${rnd(99)}"`;
    const fast = readSimpleParameterizedValue(s);
    if (!fast) continue;
    accepted++;
    assert.deepEqual({ value: fast.value, params: Object.entries(fast.params) }, viaLibmime(s), JSON.stringify(s));
  }
  assert.ok(accepted > 3000, `only ${accepted} generated values took the fast path`);
});

test('values outside the simple form are declined and read by libmime', () => {
  for (const s of [
    "text/plain; name*0*=utf-8''%E6%97%A5; name*1=.txt",
    'text/plain; charset = utf-8',
    'text/plain; name="a\\"b"',
    'text/plain (comment); charset=x',
    'text/plain; charset=x; charset=y',
    'text/plain; name="日本"',
    'text/plain; a=b c',
    'text/plain;; a=b',
  ]) {
    assert.equal(readSimpleParameterizedValue(s), undefined, s);
    const ct = parseContentType(s);
    const lib = viaLibmime(s);
    if (!/^[a-z0-9.+-]+\/[a-z0-9.+-]+$/i.test(lib.value.trim())) {
      // libmime keeps the comment in the type; RFC 2045 section 5.2 then says text/plain.
      assert.equal(ct.defaulted, true, s);
      continue;
    }
    assert.equal(ct.mediaType, lib.value.trim().toLowerCase(), s);
    assert.deepEqual(Object.entries(ct.params), lib.params.map(([k, v]) => [k.toLowerCase(), v]), s);
  }
});

test('parseContentType reads the common forms the same through either path', () => {
  for (const s of [
    'text/plain; charset=utf-8',
    'multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256; boundary="----=_Kakitome_abc"',
    'Application/PKCS7-MIME; smime-type=signed-data; name=smime.p7m',
    'text/plain; __proto__=x',
    'text/plain;',
    'multipart/mixed; boundary=""',
  ]) {
    const ct = parseContentType(s);
    const lib = viaLibmime(s);
    assert.equal(ct.defaulted, false);
    assert.equal(ct.mediaType, lib.value.toLowerCase());
    assert.equal(`${ct.type}/${ct.subtype}`, ct.mediaType);
    assert.deepEqual(Object.entries(ct.params), lib.params, s);
  }
  assert.equal(parseContentType('not a type').defaulted, true);
});

test('parameter maps inherit nothing, through either path: "__proto__" and "constructor" are plain names', () => {
  for (const s of ['text/plain; __proto__=x; constructor=y', 'text/plain; __proto__ = x; constructor = y']) {
    const { params } = parseContentType(s);
    assert.deepEqual(Object.entries(params), [['__proto__', 'x'], ['constructor', 'y']], s);
    assert.equal(Object.hasOwn(params, '__proto__'), true);
    const bare = parseContentType('text/plain; charset=utf-8').params as Record<string, unknown>;
    assert.equal(bare.toString, undefined);
    assert.equal(bare.hasOwnProperty, undefined);
    assert.equal('valueOf' in bare, false);
  }
});
