import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseEntity } from '../../src/mime/parse-entity.ts';
import { encodeSevenBit, isSevenBitData } from '../../src/mime/encode-seven-bit.ts';
import { decodeBody } from '../../src/mime/decode-body.ts';
import { decodeText } from '../../src/mime/decode-text.ts';
import { buildEntity, buildMultipartBody, formatHeaderField } from '../../src/mime/build-entity.ts';
import { decodeHeaderText } from '../../src/mime/decode-header-text.ts';
import { seededRandom } from '../helpers/seeded-random.ts';
import { isKakitomeError } from '../../src/errors.ts';

const binary = Buffer.from([0, 1, 2, 0xff, 0x0d, 0x0a, 0x80, 0x0a]);

test('8bit text becomes quoted-printable, binary becomes base64, 7-bit parts keep their bytes', () => {
  const seven = 'Content-Type: text/plain\r\n\r\nplain ascii\r\n';
  const body = buildMultipartBody('m', [
    Buffer.from(seven),
    Buffer.from('Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n日本語テキスト\r\n'),
    Buffer.concat([Buffer.from('Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n'), binary]),
  ]);
  const msg = buildEntity([['Content-Type', 'multipart/mixed; boundary=m']], body);
  const r = encodeSevenBit(parseEntity(msg));
  assert.equal(r.changed, true);
  assert.equal(isSevenBitData(r.bytes), true);
  const out = parseEntity(r.bytes);
  assert.equal(out.children[0]!.raw.toString(), seven, 'untouched part is byte-identical');
  assert.equal(out.children[1]!.transferEncoding, 'quoted-printable');
  assert.equal(decodeText(out.children[1]!), '日本語テキスト\r\n');
  assert.equal(out.children[2]!.transferEncoding, 'base64');
  assert.deepEqual(decodeBody(out.children[2]!), binary);
});

test('7-bit input is returned as the same bytes; long lines are re-encoded', () => {
  const msg = Buffer.from('Content-Type: text/plain\r\n\r\nshort\r\n');
  const r = encodeSevenBit(parseEntity(msg));
  assert.equal(r.changed, false);
  assert.deepEqual(r.bytes, msg);
  const long = Buffer.from(`Content-Type: text/plain\r\n\r\n${'a'.repeat(1200)}\r\n`);
  const l = encodeSevenBit(parseEntity(long));
  assert.equal(l.changed, true);
  assert.equal(decodeBody(parseEntity(l.bytes)).toString(), `${'a'.repeat(1200)}\r\n`);
});

test('8-bit message/rfc822 is encoded inside, not as a whole', () => {
  const msg = Buffer.from('Content-Type: message/rfc822\r\nContent-Transfer-Encoding: 8bit\r\n\r\nSubject: x\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nüber\r\n');
  const r = encodeSevenBit(parseEntity(msg));
  assert.equal(isSevenBitData(r.bytes), true);
  const inner = parseEntity(parseEntity(r.bytes).body);
  assert.equal(decodeText(inner), 'über\r\n');
});

test('formatHeaderField encodes non-ASCII as RFC 2047 words and folds long values', () => {
  const f = formatHeaderField('Subject', '会議の議事録について、次回の予定と資料の確認をお願いします。よろしくお願いいたします');
  const text = f.toString('latin1');
  assert.equal(isSevenBitData(f), true);
  assert.ok(text.split('\r\n').every((line) => line.length <= 78));
  const e = parseEntity(Buffer.concat([f, Buffer.from('\r\n')]));
  assert.equal(decodeHeaderText(e.headers[0]!.value), '会議の議事録について、次回の予定と資料の確認をお願いします。よろしくお願いいたします');
});

/** The octet-by-octet reading of RFC 2045 section 2.7 that isSevenBitData must agree with. */
function sevenBitReference(buf: Uint8Array): boolean {
  let lineLength = 0;
  for (let i = 0; i < buf.length; i++) {
    const b = buf[i]!;
    if (b === 0 || b > 127) return false;
    if (b === 0x0d) {
      if (buf[i + 1] !== 0x0a) return false;
      continue;
    }
    if (b === 0x0a) {
      if (i === 0 || buf[i - 1] !== 0x0d) return false;
      lineLength = 0;
      continue;
    }
    if (++lineLength > 998) return false;
  }
  return true;
}

test('isSevenBitData agrees with the octet-by-octet definition on generated data (line limits, bare CR/LF, NUL, 8-bit)', () => {
  const pieces = [Buffer.from('abc'), Buffer.from('\r\n'), Buffer.from('\r'), Buffer.from('\n'), Buffer.from([0]), Buffer.from([0x80]), Buffer.from([0x09, 0x0b, 0x0c]), Buffer.from('x'.repeat(997)), Buffer.from('x'.repeat(998)), Buffer.from('y')];
  const rnd = seededRandom(3);
  let trues = 0;
  for (let t = 0; t < 20000; t++) {
    const parts: Buffer[] = [];
    for (let j = rnd(6); j > 0; j--) parts.push(pieces[rnd(pieces.length)]!);
    const buf = Buffer.concat(parts);
    const want = sevenBitReference(buf);
    if (want) trues++;
    assert.equal(isSevenBitData(buf), want, JSON.stringify(buf.toString('latin1').slice(0, 60)));
  }
  assert.ok(trues > 1000);
});

test('an unknown transfer encoding is never relabelled: 7-bit bytes pass as they are, 8-bit ones are UNSUPPORTED_ALG', () => {
  const uu = Buffer.from('Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 a.bin\r\n#86)C\r\n`\r\nend\r\n');
  const kept = encodeSevenBit(parseEntity(uu));
  assert.equal(kept.changed, false);
  assert.deepEqual(kept.bytes, uu);
  const eight = Buffer.from('Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: x-custom\r\n\r\n\xff\xfe\r\n', 'latin1');
  assert.throws(() => encodeSevenBit(parseEntity(eight)), (e) => isKakitomeError(e, 'UNSUPPORTED_ALG'));
});
