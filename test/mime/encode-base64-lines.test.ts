import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { encode as encodeBase64, wrap as wrapBase64 } from 'libbase64';
import { Base64LineEncoder, encodeBase64Lines, encodedLength } from '../../src/mime/encode-base64-lines.ts';

/** The reference: libbase64, as sign-entity.ts writes base64 bodies (CRLF after every line). */
const reference = (b: Buffer): Buffer => (b.length === 0 ? Buffer.alloc(0) : Buffer.from(`${wrapBase64(encodeBase64(b), 76).replace(/\r?\n/g, '\r\n')}\r\n`, 'latin1'));

test('base64 lines equal libbase64 for every length around the line and block sizes', () => {
  const data = randomBytes(57 * 1024 * 2 + 200);
  for (const n of [0, 1, 2, 3, 56, 57, 58, 113, 114, 115, 57 * 1024 - 1, 57 * 1024, 57 * 1024 + 1, data.length]) {
    const got = encodeBase64Lines(data.subarray(0, n));
    assert.deepEqual(got, reference(data.subarray(0, n)), `length ${n}`);
    assert.equal(got.length, encodedLength(n));
  }
});

test('the streaming encoder gives the same bytes however its input is cut', () => {
  const data = randomBytes(300_000);
  const expected = reference(data);
  let seed = 7;
  const rnd = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  for (const size of [() => 1, () => 56, () => 57, () => 58, () => 1 + Math.floor(rnd() * 5000), () => 1 << 20]) {
    const enc = new Base64LineEncoder();
    const out: Buffer[] = [];
    for (let at = 0; at < data.length; ) {
      const n = size();
      // The encoder must not keep a view on the caller's buffer: hand it a copy and destroy the copy after.
      const piece = Buffer.from(data.subarray(at, at + n));
      const lines = enc.push(piece);
      piece.fill(0);
      if (lines) out.push(lines);
      at += n;
    }
    const last = enc.end();
    if (last) out.push(last);
    assert.deepEqual(Buffer.concat(out), expected);
  }
  assert.equal(new Base64LineEncoder().end(), undefined);
});
