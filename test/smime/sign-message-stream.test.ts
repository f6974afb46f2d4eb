import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { TestPki } from '../helpers/pki.ts';
import { signMessageStream } from '../../src/smime/sign-message-stream.ts';
import { verifyMessage } from '../../src/smime/verify-message.ts';
import { createSignerValidator } from '../../src/pki/create-signer-validator.ts';
import { parseEntity } from '../../src/mime/parse-entity.ts';
import { decodeBody } from '../../src/mime/decode-body.ts';
import { decodeText } from '../../src/mime/decode-text.ts';
import { isKakitomeError } from '../../src/errors.ts';

const pki = new TestPki();
after(() => pki.cleanup());
const alice = pki.identity('p256', 'alice');
const signers = [{ certificate: alice.cert, key: alice.key }];
const validateSigner = createSignerValidator({ anchors: [pki.caCert], revocation: { mode: 'off' }, fetchCaIssuers: false });

async function run(input: Buffer, chunk: number, options: Partial<Parameters<typeof signMessageStream>[2]> = {}): Promise<{ out: Buffer; warnings: string[] }> {
  const out = new PassThrough();
  const parts: Buffer[] = [];
  out.on('data', (c: Buffer) => parts.push(c));
  const pieces = function* () {
    for (let i = 0; i < input.length; i += chunk) yield input.subarray(i, i + chunk);
  };
  const r = await signMessageStream(Readable.from(pieces()), out, { signers, ...options });
  return { out: Buffer.concat(parts), warnings: r.warnings };
}

const binary = Buffer.from(Array.from({ length: 1 << 20 }, (_, i) => (i * 31 + (i >> 8)) & 0xff));

test('streamed multipart/signed: binary and 8-bit parts become base64, chunk boundaries anywhere, verified by us and openssl', async () => {
  const msg = Buffer.concat([
    Buffer.from('From: alice@example.com\r\nTo: bob@example.com\r\nSubject: =?UTF-8?B?5aSn44GN44Gq5re75LuY?=\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n大きな添付ファイルです。\r\n--b\r\nContent-Type: application/octet-stream; name=big.bin\r\nContent-Transfer-Encoding: binary\r\n\r\n'),
    binary,
    Buffer.from('\r\n--b--\r\n'),
  ]);
  for (const chunk of [1000, 65536]) {
    const { out, warnings } = await run(msg, chunk);
    assert.deepEqual(warnings, []);
    const v = await verifyMessage(out, { validateSigner });
    assert.equal(v.status, 'trusted', v.summary);
    assert.equal(v.protectedHeaders?.mode, 'clear');
    const m = parseEntity(v.output);
    assert.equal(decodeText(m.children[0]!), '大きな添付ファイルです。');
    assert.equal(m.children[1]!.transferEncoding, 'base64');
    assert.deepEqual(decodeBody(m.children[1]!), binary);
    const path = join(pki.dir, `stream-${chunk}.eml`);
    writeFileSync(path, out);
    execFileSync('openssl', ['smime', '-verify', '-in', path, '-CAfile', pki.caPath, '-out', '/dev/null'], { stdio: ['ignore', 'pipe', 'pipe'] });
  }
});

test('streamed signing converts LF-only input and reports 8-bit bytes in a part declared 7bit', async () => {
  const lf = Buffer.from('From: alice@example.com\nSubject: lf\n\nplain body\nline two\n');
  const { out, warnings } = await run(lf, 7);
  assert.ok(warnings.some((w) => /bare LF/.test(w)));
  const v = await verifyMessage(out);
  assert.equal(v.status, 'valid-untrusted');
  assert.equal(decodeBody(parseEntity(v.output)).toString(), 'plain body\r\nline two\r\n');
  const mislabelled = Buffer.from('From: alice@example.com\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nüber\r\n');
  const r = await run(mislabelled, 4096, { headerProtection: false });
  assert.ok(r.warnings.some((w) => /declared 7-bit carries 8-bit/.test(w)));
  assert.equal((await verifyMessage(r.out)).status, 'valid-untrusted');
});

test('streamed signing enforces limits and refuses the opaque form', async () => {
  const big = Buffer.from(`From: alice@example.com\r\nX-Long: ${'x'.repeat(5000)}\r\n\r\nbody\r\n`);
  await assert.rejects(run(big, 1024, { limits: { maxHeaderBytes: 1000 } }), (e) => isKakitomeError(e, 'LIMIT'));
  await assert.rejects(run(Buffer.from('Subject: x\r\n\r\nbody\r\n'), 1024, { opaque: true }), (e) => isKakitomeError(e, 'INVALID_ARGUMENT'));
});
