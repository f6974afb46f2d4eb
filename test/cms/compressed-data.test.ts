import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deflateSync } from 'node:zlib';
import { compressData, decompressData } from '../../src/cms/compressed-data.ts';
import { decode } from '../../src/asn1/ber.ts';
import { sequence, integer, oid, explicit, octetString, tlv } from '../../src/asn1/der.ts';
import { OID } from '../../src/asn1/oids.ts';
import { encodeContentInfo } from '../../src/cms/content-info.ts';
import { encodeAlgorithmIdentifier } from '../../src/cms/algorithm-identifier.ts';
import { isKakitomeError, type ErrorCode } from '../../src/errors.ts';

const text = Buffer.from('Content-Type: text/plain\r\n\r\nCompressed before encryption, RFC 3274.\r\n'.repeat(50));

function code(fn: () => unknown, expected: ErrorCode): void {
  assert.throws(fn, (e: unknown) => isKakitomeError(e, expected) || assert.fail(`expected ${expected}, got ${String(e)}`));
}

function craft(compressed: Uint8Array, o: { version?: number; alg?: Buffer; eContent?: Buffer | null } = {}): Buffer {
  const e = o.eContent === null ? [] : [o.eContent ?? explicit(0, octetString(compressed))];
  return encodeContentInfo(OID.compressedData, sequence(integer(o.version ?? 0), o.alg ?? encodeAlgorithmIdentifier(OID.zlibCompress), sequence(oid(OID.data), ...e)));
}

test('round trip, DER output, content type kept, real compression', () => {
  const der = compressData(text);
  decode(der, { der: true });
  assert.ok(der.length < text.length / 5);
  assert.deepEqual(decompressData(der), { content: text, contentType: OID.data });
  const signed = compressData(text, { contentType: OID.signedData });
  assert.equal(decompressData(signed).contentType, OID.signedData);
  assert.equal(decompressData(compressData(new Uint8Array(0))).content.length, 0);
});

test('maxDecompressedBytes: exactly at the bound passes, one byte over is LIMIT', () => {
  const der = compressData(text);
  assert.equal(decompressData(der, { limits: { maxDecompressedBytes: text.length } }).content.length, text.length);
  code(() => decompressData(der, { limits: { maxDecompressedBytes: text.length - 1 } }), 'LIMIT');
});

test('a compression bomb stops at the bound without inflating everything', { timeout: 30_000 }, () => {
  const bomb = craft(deflateSync(Buffer.alloc(64 * 1024 * 1024), { level: 9 }));
  assert.ok(bomb.length < 100_000);
  const before = process.memoryUsage().rss;
  code(() => decompressData(bomb, { limits: { maxDecompressedBytes: 1024 * 1024 } }), 'LIMIT');
  const grew = process.memoryUsage().rss - before;
  assert.ok(grew < 32 * 1024 * 1024, `RSS grew by ${grew}`);
});

test('BER: indefinite lengths and a segmented eContent', () => {
  const z = deflateSync(text);
  const seg = (d: Buffer, n: number) => Array.from({ length: Math.ceil(d.length / n) }, (_, i) => octetString(d.subarray(i * n, i * n + n)));
  const indef = (tag: number, ...c: Uint8Array[]) => Buffer.concat([Buffer.of(tag, 0x80), ...c, Buffer.of(0, 0)]);
  const ber = indef(0x30, oid(OID.compressedData), indef(0xa0, indef(0x30, integer(0), encodeAlgorithmIdentifier(OID.zlibCompress), indef(0x30, oid(OID.data), indef(0xa0, indef(0x24, ...seg(z, 13)))))));
  assert.deepEqual(decompressData(ber).content, text);
});

test('refused and malformed CompressedData', () => {
  const z = deflateSync(text);
  code(() => decompressData(craft(z, { alg: encodeAlgorithmIdentifier('1.2.840.113549.1.9.16.3.99') })), 'UNSUPPORTED_ALG');
  code(() => decompressData(craft(z, { version: 1 })), 'MALFORMED');
  code(() => decompressData(craft(z, { eContent: null })), 'MALFORMED');
  code(() => decompressData(craft(z, { eContent: explicit(0, tlv(0x02, Buffer.of(1))) })), 'MALFORMED');
  const damaged = Buffer.from(z);
  damaged[5]! ^= 0xff;
  damaged[6]! ^= 0xff;
  code(() => decompressData(craft(damaged.subarray(0, 8))), 'MALFORMED');
  code(() => decompressData(compressData(text), { limits: { maxCmsBytes: 10 } }), 'LIMIT');
  code(() => decompressData(encodeContentInfo(OID.data, octetString(text))), 'MALFORMED');
});
