import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseEntity } from '../../src/mime/parse-entity.ts';
import { getHeaderValue, walkEntities } from '../../src/mime/entity.ts';
import { decodeBody } from '../../src/mime/decode-body.ts';
import { decodeText } from '../../src/mime/decode-text.ts';
import { decodeHeaderText } from '../../src/mime/decode-header-text.ts';
import { canonicalizeLineBreaks, hasBareLineFeed } from '../../src/mime/canonicalize-line-breaks.ts';
import { parseAddresses } from '../../src/mime/parse-addresses.ts';
import { isKakitomeError } from '../../src/errors.ts';

const CRLF = '\r\n';
const mixed = [
  'From: =?ISO-2022-JP?B?GyRCOzNFRBsoQg==?= <yamada@example.jp>',
  'To: "Suzuki, Hanako" <hanako@example.jp>, bob@example.com',
  'Subject: =?UTF-8?B?5pel5pys6Kqe44Gu5Lu25ZCN?=',
  '  =?UTF-8?B?77yI57aa44GN77yJ?=',
  'MIME-Version: 1.0',
  'Content-Type: multipart/mixed;',
  ' boundary="b1"',
  '',
  'preamble text',
  '--b1',
  'Content-Type: text/plain; charset=utf-8',
  'Content-Transfer-Encoding: 8bit',
  '',
  'こんにちは',
  '--b1x is not a delimiter',
  '--b1',
  'Content-Type: application/octet-stream',
  "Content-Disposition: attachment; filename*=UTF-8''%E8%B3%87%E6%96%99.bin",
  'Content-Transfer-Encoding: base64',
  '',
  'AAECAwQF',
  '--b1--  ',
  'epilogue',
].join(CRLF);

test('multipart: children keep their exact bytes; the CRLF before a delimiter belongs to it', () => {
  const buf = Buffer.from(mixed);
  const m = parseEntity(buf);
  assert.equal(m.contentType.mediaType, 'multipart/mixed');
  assert.equal(m.children.length, 2);
  const [text, bin] = m.children as [typeof m, typeof m];
  assert.equal(text.raw.toString(), ['Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: 8bit', '', 'こんにちは', '--b1x is not a delimiter'].join(CRLF));
  assert.equal(decodeBody(text).toString('utf8'), 'こんにちは\r\n--b1x is not a delimiter');
  assert.deepEqual([...decodeBody(bin)], [0, 1, 2, 3, 4, 5]);
  assert.equal(bin.transferEncoding, 'base64');
  assert.equal(m.preamble?.toString(), 'preamble text');
  assert.equal(m.epilogue?.toString(), 'epilogue');
  // The views point into the input: offsets are exact.
  assert.equal(buf.subarray(text.offset, text.offset + text.raw.length).toString(), text.raw.toString());
  // Header fields keep their raw bytes, folding included.
  const subject = m.headers.find((h) => h.name === 'Subject')!;
  assert.equal(subject.raw.toString(), 'Subject: =?UTF-8?B?5pel5pys6Kqe44Gu5Lu25ZCN?=\r\n  =?UTF-8?B?77yI57aa44GN77yJ?=\r\n');
  assert.equal(decodeHeaderText(subject.value), '日本語の件名（続き）');
  assert.equal(decodeHeaderText(getHeaderValue(m, 'from')!), '山田 <yamada@example.jp>');
  assert.deepEqual(parseAddresses(getHeaderValue(m, 'to')!), ['hanako@example.jp', 'bob@example.com']);
});

test('ISO-2022-JP bodies and RFC 2231 file names decode through libmime', () => {
  // '日本語の本文です' in ISO-2022-JP (RFC 1468), as Japanese mail clients still send it.
  const jis = Buffer.from('1b2442467c4b5c386c244e4b5c4a38244724391b2842', 'hex');
  const msg = Buffer.concat([Buffer.from('Content-Type: text/plain; charset=ISO-2022-JP\r\nContent-Disposition: attachment;\r\n filename*0*=UTF-8\'\'%E8%B3%87;\r\n filename*1*=%E6%96%99.txt\r\n\r\n'), jis, Buffer.from('\r\n')]);
  const e = parseEntity(msg);
  assert.equal(e.contentType.params.charset, 'ISO-2022-JP');
  assert.equal(decodeText(e).trim(), '日本語の本文です');
  const m = parseEntity(Buffer.from(mixed));
  assert.ok(m.children[1]!.headers.some((h) => h.name === 'Content-Disposition'));
});

test('LF-only input parses and canonicalizes to CRLF', () => {
  const lf = Buffer.from(mixed.replaceAll('\r\n', '\n'));
  assert.equal(hasBareLineFeed(lf), true);
  const m = parseEntity(lf);
  assert.equal(m.children.length, 2);
  assert.equal(m.children[0]!.body.toString(), 'こんにちは\n--b1x is not a delimiter');
  const crlf = canonicalizeLineBreaks(lf);
  assert.equal(crlf.toString(), mixed);
  assert.equal(canonicalizeLineBreaks(crlf), crlf, 'canonical input is returned as is');
});

test('ambiguity and structure errors are MALFORMED', () => {
  const cases = [
    'Content-Type: text/plain\r\nContent-Type: text/html\r\n\r\nx',
    'Content-Transfer-Encoding: base64\r\nContent-Transfer-Encoding: 8bit\r\n\r\nx',
    'Content-Type: multipart/mixed\r\n\r\n--x\r\n\r\nbody\r\n--x--\r\n',
    'Content-Type: multipart/mixed; boundary=zz\r\n\r\nno delimiter here\r\n',
    ' continuation first\r\n\r\n',
    'No colon here\r\n\r\n',
    'Bad\x01Name: x\r\n\r\n',
  ];
  for (const c of cases) assert.throws(() => parseEntity(Buffer.from(c)), (e) => isKakitomeError(e, 'MALFORMED'), JSON.stringify(c));
});

test('QUIRK paths are accepted with a warning: missing close delimiter, mbox From line', () => {
  const m = parseEntity(Buffer.from('From someone Mon Jan 1 00:00:00 2024\r\nContent-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\n\r\npart\r\n'));
  assert.equal(m.children.length, 1);
  assert.equal(m.children[0]!.body.toString(), 'part\r\n');
  assert.ok(m.warnings.some((w) => /mbox/.test(w)));
  assert.ok(m.warnings.some((w) => /close delimiter/.test(w)));
});

test('limits: header bytes, line length, parts and depth fail with LIMIT', () => {
  const long = Buffer.from(`Subject: ${'x'.repeat(2000)}\r\n\r\nbody`);
  assert.throws(() => parseEntity(long, { limits: { maxLineLength: 1000 } }), (e) => isKakitomeError(e, 'LIMIT'));
  const many = Buffer.from(`${Array.from({ length: 50 }, (_, i) => `X-H${i}: value`).join('\r\n')}\r\n\r\nbody`);
  assert.throws(() => parseEntity(many, { limits: { maxHeaderBytes: 200 } }), (e) => isKakitomeError(e, 'LIMIT'));
  const parts = `Content-Type: multipart/mixed; boundary=p\r\n\r\n${'--p\r\n\r\nx\r\n'.repeat(20)}--p--\r\n`;
  assert.throws(() => parseEntity(Buffer.from(parts), { limits: { maxMimeParts: 10 } }), (e) => isKakitomeError(e, 'LIMIT'));
  assert.equal(parseEntity(Buffer.from(parts)).children.length, 20);
  let nested = 'Content-Type: text/plain\r\n\r\nleaf\r\n';
  for (let i = 0; i < 10; i++) nested = `Content-Type: multipart/mixed; boundary=d${i}\r\n\r\n--d${i}\r\n${nested}\r\n--d${i}--\r\n`;
  assert.throws(() => parseEntity(Buffer.from(nested), { limits: { maxMimeDepth: 5 } }), (e) => isKakitomeError(e, 'LIMIT'));
  assert.equal([...walkEntities(parseEntity(Buffer.from(nested)))].length, 11);
  assert.throws(() => parseEntity(Buffer.alloc(100), { limits: { maxMessageBytes: 50 } }), (e) => isKakitomeError(e, 'LIMIT'));
});

test('defaults: no Content-Type is text/plain us-ascii; inside multipart/digest it is message/rfc822', () => {
  assert.equal(parseEntity(Buffer.from('Subject: x\r\n\r\nhi')).contentType.mediaType, 'text/plain');
  const d = parseEntity(Buffer.from('Content-Type: multipart/digest; boundary=g\r\n\r\n--g\r\n\r\nSubject: inner\r\n\r\nx\r\n--g--\r\n'));
  assert.equal(d.children[0]!.contentType.mediaType, 'message/rfc822');
  const odd = parseEntity(Buffer.from('Content-Type: garbage\r\n\r\nx'));
  assert.equal(odd.contentType.mediaType, 'text/plain');
  assert.ok(odd.warnings.length > 0);
});

test('parseAddresses skips display names, comments and groups', () => {
  assert.deepEqual(parseAddresses('"Doe, John (x)" <John@Example.COM> (comment), undisclosed:;'), ['john@example.com']);
  assert.deepEqual(parseAddresses('team: a@example.com, b@example.com;'), ['a@example.com', 'b@example.com']);
  assert.deepEqual(parseAddresses('not an address'), []);
});
