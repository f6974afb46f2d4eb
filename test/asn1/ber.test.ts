import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decode, readOctets, readIntegerBytes, readBigInt, readOid, readTime, readBitString, readBoolean, readString, Tag } from '../../src/asn1/ber.ts';
import { integer, oid, sequence, octetString, setOf, time, tlv, utf8String, compareDer, encodeLength } from '../../src/asn1/der.ts';
import { errorCode } from '../helpers/error-code.ts';

const h = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const code = errorCode;

test('definite and indefinite lengths decode to the same structure', () => {
  const der = h('30 06 04 01 aa 04 01 bb');
  const ber = h('30 80 04 01 aa 04 01 bb 00 00');
  for (const b of [der, ber]) {
    const t = decode(b);
    const kids = t.children();
    assert.equal(kids.length, 2);
    assert.deepEqual([...readOctets(kids[0]!)], [0xaa]);
    assert.deepEqual([...readOctets(kids[1]!)], [0xbb]);
  }
  assert.equal(decode(ber).indefinite, true);
  assert.equal(decode(ber).end, ber.length);
});

test('constructed (segmented) OCTET STRING is joined, nested segments too', () => {
  const b = h('24 80 04 02 01 02 24 80 04 01 03 00 00 04 01 04 00 00');
  assert.deepEqual([...readOctets(decode(b))], [1, 2, 3, 4]);
});

test('a segment that is not an OCTET STRING is rejected', () => {
  assert.equal(code(() => readOctets(decode(h('24 03 02 01 05')))), 'MALFORMED');
});

test('trailing data after the outermost value is rejected', () => {
  assert.equal(code(() => decode(h('04 01 aa 00'))), 'MALFORMED');
});

test('lengths running past the enclosing value are rejected', () => {
  assert.equal(code(() => decode(h('04 05 aa'))), 'MALFORMED');
  assert.equal(code(() => decode(h('30 04 04 05 aa bb'))), 'MALFORMED');
  assert.equal(code(() => decode(h('30 84 ff ff ff ff 00'))), 'MALFORMED');
});

test('length fields longer than four octets, and the reserved 0xff form, are rejected', () => {
  assert.equal(code(() => decode(h('04 85 00 00 00 00 01 aa'))), 'MALFORMED');
  assert.equal(code(() => decode(h('04 ff aa'))), 'MALFORMED');
});

test('indefinite length on a primitive and a missing end-of-contents are rejected', () => {
  assert.equal(code(() => decode(h('04 80 aa 00 00'))), 'MALFORMED');
  assert.equal(code(() => decode(h('30 80 04 01 aa'))), 'MALFORMED');
});

test('high tag numbers are rejected', () => {
  assert.equal(code(() => decode(h('1f 81 00 00'))), 'MALFORMED');
});

test('nesting deeper than the limit fails with LIMIT, at any encoding', () => {
  let v: Buffer = h('05 00');
  for (let i = 0; i < 60; i++) v = sequence(v);
  assert.equal(code(() => decode(v)), 'LIMIT');
  let ind: Buffer = h('05 00');
  for (let i = 0; i < 60; i++) ind = Buffer.concat([h('30 80'), ind, h('00 00')]);
  assert.equal(code(() => decode(ind)), 'LIMIT');
  assert.doesNotThrow(() => decode(v, { maxDepth: 100 }));
});

test('DER mode refuses indefinite lengths, non-minimal lengths and constructed strings', () => {
  assert.equal(code(() => decode(h('30 80 05 00 00 00'), { der: true })), 'MALFORMED');
  assert.equal(code(() => decode(h('04 81 01 aa'), { der: true })), 'MALFORMED');
  assert.equal(code(() => decode(h('24 03 04 01 aa'), { der: true })), 'MALFORMED');
  assert.doesNotThrow(() => decode(h('04 81 01 aa')));
});

test('INTEGER must be minimally encoded', () => {
  assert.equal(code(() => readIntegerBytes(decode(h('02 02 00 7f')))), 'MALFORMED');
  assert.equal(code(() => readIntegerBytes(decode(h('02 02 ff 80')))), 'MALFORMED');
  assert.equal(code(() => readIntegerBytes(decode(h('02 00')))), 'MALFORMED');
});

test('integer() and readBigInt() round-trip across sign and size boundaries', () => {
  for (const n of [0n, 1n, 127n, 128n, 255n, 256n, -1n, -127n, -128n, -129n, -256n, -257n, 2n ** 64n, -(2n ** 64n), 2n ** 63n - 1n]) {
    const enc = integer(n);
    assert.equal(readBigInt(decode(enc)), n, `value ${n}`);
  }
  assert.deepEqual([...integer(128)], [0x02, 0x02, 0x00, 0x80]);
  assert.deepEqual([...integer(-128)], [0x02, 0x01, 0x80]);
});

test('OIDs round-trip and non-minimal arcs are rejected', () => {
  for (const s of ['1.2.840.113549.1.7.2', '2.16.840.1.101.3.4.2.1', '1.3.101.112', '2.999.3', '0.9.2342.19200300.100.1.1']) {
    assert.equal(readOid(decode(oid(s))), s);
  }
  assert.equal(code(() => readOid(decode(h('06 03 2a 80 01')))), 'MALFORMED');
  assert.equal(code(() => readOid(decode(h('06 02 2a 86')))), 'MALFORMED');
});

test('times follow the RFC 5280 profile', () => {
  const d = new Date(Date.UTC(2026, 10, 23, 12, 34, 56));
  assert.equal(readTime(decode(time(d))).getTime(), d.getTime());
  const far = new Date(Date.UTC(2061, 0, 1));
  assert.equal(decode(time(far)).tag, Tag.GENERALIZED_TIME);
  assert.equal(readTime(decode(time(far))).getTime(), far.getTime());
  assert.equal(readTime(decode(tlv(Tag.UTC_TIME, Buffer.from('491231235959Z')))).getUTCFullYear(), 2049);
  assert.equal(readTime(decode(tlv(Tag.UTC_TIME, Buffer.from('500101000000Z')))).getUTCFullYear(), 1950);
  for (const bad of ['2611231234Z', '261123123456+0900', '261323123456Z', '260230123456Z', '261123253456Z']) {
    assert.equal(code(() => readTime(decode(tlv(Tag.UTC_TIME, Buffer.from(bad))))), 'MALFORMED', bad);
  }
});

test('BIT STRING, BOOLEAN and strings', () => {
  assert.equal(readBitString(decode(h('03 02 07 80'))).unusedBits, 7);
  assert.equal(code(() => readBitString(decode(h('03 01 01')))), 'MALFORMED');
  assert.equal(readBoolean(decode(h('01 01 ff'))), true);
  assert.equal(code(() => readBoolean(decode(h('01 01 01'), { der: true }))), 'MALFORMED');
  assert.equal(readString(decode(utf8String('書留'))), '書留');
  assert.equal(readString(decode(h('1e 04 66 f8 75 59'))), '書留');
});

test('tlv writes the minimal definite length at every boundary (as encodeLength), and DER decoding reads it back', () => {
  for (const n of [0, 1, 127, 128, 255, 256, 65_535, 65_536, 0xff_ffff, 0x100_0000]) {
    const content = Buffer.alloc(n, 0x5a);
    const out = tlv(Tag.OCTET_STRING, content.subarray(0, n >> 1), content.subarray(n >> 1));
    const head = encodeLength(n);
    assert.equal(out.length, 1 + head.length + n, `length ${n}`);
    assert.equal(out[0], Tag.OCTET_STRING);
    assert.deepEqual(out.subarray(1, 1 + head.length), head, `length octets of ${n}`);
    assert.equal(readOctets(decode(out, { der: true })).length, n);
  }
});

test('setOf sorts members in DER order', () => {
  const a = octetString(h('02'));
  const b = octetString(h('01 ff'));
  const c = octetString(h('01'));
  const s = setOf([a, b, c]);
  const kids = decode(s).children().map((k) => Buffer.from(k.bytes).toString('hex'));
  assert.deepEqual(kids, ['0401' + '01', '0401' + '02', '0402' + '01ff']);
  assert.ok(compareDer(h('01'), h('01 00')) === 0);
});

test('values are views into the input, not copies', () => {
  const b = h('30 03 04 01 aa');
  const t = decode(b).children()[0]!;
  assert.equal(t.value.buffer, b.buffer);
});

test('BOOLEAN, INTEGER, ENUMERATED, NULL and OID have the one form X.690 gives them, in BER too', () => {
  // A NULL carrying contents octets (X.690 8.8.2): once accepted in an unprotected
  // AlgorithmIdentifier, so one SignedData had several encodings that verified.
  for (const bad of ['05 01 00', '05 02 7f 7f', '30 05 30 03 05 01 00', '30 80 05 01 00 00 00', '25 00', '01 00', '01 02 00 ff', '21 03 01 01 ff', '02 00', '22 03 02 01 01', '06 00', '0a 00']) {
    assert.equal(code(() => decode(h(bad))), 'MALFORMED', bad);
  }
  for (const good of ['05 00', '05 81 00', '01 01 ff', '02 01 00', '06 03 2a 86 48', '0a 01 01', '30 02 05 00', '30 80 05 00 00 00']) {
    decode(h(good));
  }
  // Context-specific and application tags with the same numbers are not these types.
  decode(h('85 02 7f 7f'));
  decode(h('a5 00'));
  decode(h('45 01 00'));
});
