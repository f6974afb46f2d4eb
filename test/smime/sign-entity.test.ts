import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { encode as encodeBase64, wrap as wrapBase64 } from 'libbase64';
import { base64Lines, signEntityParts } from '../../src/smime/sign-entity.ts';
import { buildEntity, buildMultipartBody } from '../../src/mime/build-entity.ts';
import { parseEntity } from '../../src/mime/parse-entity.ts';
import { decodeBody } from '../../src/mime/decode-body.ts';
import { TestPki } from '../helpers/pki.ts';

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
