import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { encode as encodeBase64, wrap as wrapBase64 } from 'libbase64';
import { base64Lines, multipartSignedContentType, SignatureLines, signEntityParts } from '../../src/smime/sign-entity.ts';
import { buildEntity, buildMultipartBody, createBoundary, formatHeaderField, formatParameterizedValue } from '../../src/mime/build-entity.ts';
import { parseEntity } from '../../src/mime/parse-entity.ts';
import { parseContentType } from '../../src/mime/parse-content-type.ts';
import { decodeBody } from '../../src/mime/decode-body.ts';
import { TestPki } from '../helpers/pki.ts';
import { signData } from '../../src/cms/signed-data/sign.ts';

const pki = new TestPki();
after(() => pki.cleanup());

test('base64Lines writes what libbase64 encode + wrap(76) + CRLF wrote, for every length', () => {
  for (let n = 0; n < 400; n++) {
    const input = Buffer.from(Array.from({ length: n }, (_, i) => (i * 37 + n) & 0xff));
    const general = Buffer.from(`${wrapBase64(encodeBase64(input), 76).replace(/\r?\n/g, '\r\n')}\r\n`, 'latin1');
    assert.equal(base64Lines(input).toString('latin1'), general.toString('latin1'), `length ${n}`);
    assert.equal(base64Lines(new Uint8Array(input)).toString('latin1'), general.toString('latin1'), `Uint8Array length ${n}`);
  }
});

test('SignatureLines writes what base64Lines writes, whatever prefixes the signatures share', () => {
  const lines = new SignatureLines();
  const heads = Array.from({ length: 6 }, (_, h) => Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 31 + h * 7) & 0xff)));
  let seed = 1;
  const random = (n: number) => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n;
  let reused = 0;
  for (let round = 0; round < 600; round++) {
    // Mostly one head and one of three lengths (a signer's DERs), sometimes another head, another length, a tiny or a huge input.
    const head = heads[round < 200 ? 0 : random(round % 50 < 40 ? 2 : 6)]!;
    const length = [2530, 2531, 2529, 57, 114, 0, 1, 58, 20_000][round % 97 === 0 ? 3 + random(6) : round % 89 === 0 ? 8 : random(3)]!;
    const shared = Math.min(length, length > 200 ? length - 1 - random(400) : random(length + 1));
    const der = Buffer.alloc(length);
    for (let i = 0; i < length; i++) der[i] = i < shared ? (head[i % head.length]! ^ length) & 0xff : random(256);
    const input = round % 3 === 0 ? new Uint8Array(der) : der;
    const before = Buffer.from(der);
    const out = lines.encode(input);
    assert.equal(out.toString('latin1'), base64Lines(der).toString('latin1'), `round ${round}, length ${length}, shared ${shared}`);
    assert.deepEqual(der, before, 'the input is not changed');
    if (round > 3 && length === 2530 && shared > 2000) reused++;
  }
  assert.ok(reused > 50);
});

test('SignatureLines copies the lines of a signer\'s certificates in every signature: DERs of every length, the same content again, a new signing second', () => {
  const lines = new SignatureLines();
  const a = pki.identity('p256', 'lines-a');
  const b = pki.identity('p256', 'lines-b');
  const same = Buffer.from('Content-Type: text/plain\r\n\r\nthe same content every time\r\n');
  const start = Date.UTC(2026, 11, 7, 18, 0, 0);
  const lengths = new Set<number>();
  for (let i = 0; i < 240; i++) {
    // Mostly one signer, whose content repeats (the pathological case for runs learned
    // whole: two DERs of a second share everything but the signature); the second signer
    // now and then; the signing time moving on a second every five signatures.
    const id = i % 11 === 5 ? b : a;
    const content = i % 2 === 0 ? same : Buffer.from(`Content-Type: text/plain\r\n\r\nmessage ${i}\r\n`);
    const der = signData(content, { signers: [{ certificate: id.cert, key: id.key }], certificates: [id.cert, pki.caCert], detached: true, now: new Date(start + Math.floor(i / 5) * 1000) });
    const before = lines.copiedOctets;
    assert.equal(lines.encode(der).toString('latin1'), base64Lines(der).toString('latin1'), `signature ${i}`);
    if (id === a) lengths.add(der.length);
    // After the first few signatures of each signer (the second signs one in eleven): at least the lines of its certificates.
    if (id === a ? i >= 30 : i >= 120) assert.ok(lines.copiedOctets - before >= id.cert.der.length + pki.caCert.der.length - 2 * 57, `signature ${i} (${der.length} octets) copied ${lines.copiedOctets - before}`);
  }
  assert.ok(lengths.size >= 2, 'ECDSA DERs of more than one length');
});

test('the multipart/signed body is what buildMultipartBody writes around the content and the signature part', () => {
  const id = pki.identity('p256', 'signer');
  const entity = Buffer.from('Content-Type: text/plain\r\n\r\nhello\r\n');
  const parts = signEntityParts(entity, { signers: [{ certificate: id.cert, key: id.key }] });
  const signed = parseEntity(buildEntity(parts.headers, parts.body));
  const boundary = signed.contentType.params.boundary!;
  const der = decodeBody(signed.children[1]!);
  const signaturePart = buildEntity(
    [
      ['Content-Type', 'application/pkcs7-signature; name=smime.p7s'],
      ['Content-Transfer-Encoding', 'base64'],
      ['Content-Disposition', 'attachment; filename=smime.p7s'],
    ],
    base64Lines(der),
  );
  const general = buildMultipartBody(boundary, [entity, signaturePart], 'This is a cryptographically signed message in MIME format.');
  assert.equal(parts.body.toString('latin1'), general.toString('latin1'));
  assert.deepEqual(signed.children[0]!.raw, entity);
});

test('the multipart/signed Content-Type from its template equals formatParameterizedValue + formatHeaderField', () => {
  for (const micalg of ['sha-256', 'sha-384', 'sha-256,sha-512', 'unknown', 'sha-1']) {
    for (const boundary of [createBoundary(), createBoundary(), createBoundary(), 'short', '----=_Kakitome_with space in it', `----=_Kakitome_${'-'.repeat(20)}`]) {
      const value = formatParameterizedValue('multipart/signed', { protocol: 'application/pkcs7-signature', micalg, boundary });
      const field = multipartSignedContentType(micalg, boundary);
      assert.equal(field.value, value, `${micalg} ${boundary}`);
      assert.equal(field.raw.toString('latin1'), formatHeaderField('Content-Type', value).toString('latin1'), `${micalg} ${boundary}`);
      assert.equal(parseContentType(field.value).params.boundary, boundary);
    }
  }
});

test('boundaries are fresh: 120 random bits each, never repeated across pool refills', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 2000; i++) {
    const b = createBoundary();
    assert.match(b, /^----=_Kakitome_[A-Za-z0-9_-]{20}$/);
    assert.ok(!seen.has(b));
    seen.add(b);
  }
});
