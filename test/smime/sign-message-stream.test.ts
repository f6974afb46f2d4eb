import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { TestPki } from '../helpers/pki.ts';
import { signMessageStream } from '../../src/smime/sign-message-stream.ts';
import { signMessage } from '../../src/smime/sign-message.ts';
import { verifyMessage } from '../../src/smime/verify-message.ts';
import { createSignerValidator } from '../../src/pki/create-signer-validator.ts';
import { parseEntity } from '../../src/mime/parse-entity.ts';
import { walkEntities } from '../../src/mime/entity.ts';
import { canonicalizeLfOnly } from '../../src/mime/canonicalize-line-breaks.ts';
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

test('streamed signing enforces limits', async () => {
  const big = Buffer.from(`From: alice@example.com\r\nX-Long: ${'x'.repeat(5000)}\r\n\r\nbody\r\n`);
  await assert.rejects(run(big, 1024, { limits: { maxHeaderBytes: 1000 } }), (e) => isKakitomeError(e, 'LIMIT'));
});

// Changed on purpose: signMessageStream used to refuse `opaque`; it now streams the encapsulated form.
test('streamed opaque signing (application/pkcs7-mime signed-data): verified by us and by openssl at any chunk size', async () => {
  const msg = Buffer.concat([
    Buffer.from('From: alice@example.com\r\nSubject: opaque\r\nContent-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\nContent-Type: text/plain\r\n\r\nhello\r\n--o\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n'),
    binary.subarray(0, 200_000),
    Buffer.from('\r\n--o--\r\n'),
  ]);
  for (const chunk of [1, 1000, 1 << 20]) {
    if (chunk === 1) {
      // One-byte chunks over the small text part only (the binary part makes it slow).
      const small = Buffer.from('From: alice@example.com\r\nSubject: s\r\n\r\ntiny body\r\n');
      const r = await run(small, 1, { opaque: true });
      assert.equal((await verifyMessage(r.out, { validateSigner })).status, 'trusted');
      continue;
    }
    const { out } = await run(msg, chunk, { opaque: true });
    const outer = parseEntity(out);
    assert.equal(outer.contentType.mediaType, 'application/pkcs7-mime');
    assert.equal(outer.contentType.params['smime-type'], 'signed-data');
    const v = await verifyMessage(out, { validateSigner });
    assert.equal(v.status, 'trusted', v.summary);
    assert.equal(v.protectedHeaders?.mode, 'clear');
    assert.deepEqual(decodeBody(parseEntity(v.output).children[1]!), binary.subarray(0, 200_000));
    const path = join(pki.dir, `opaque-${chunk}.eml`);
    writeFileSync(path, out);
    execFileSync('openssl', ['smime', '-verify', '-in', path, '-CAfile', pki.caPath, '-out', '/dev/null'], { stdio: ['ignore', 'pipe', 'pipe'] });
  }
});

/** Leaves of a message, decoded: what a reader sees, whatever transfer encoding carried it. */
function decodedLeaves(message: Buffer): Buffer[] {
  return [...walkEntities(parseEntity(message))].filter((e) => e.contentType.type !== 'multipart').map((e) => decodeBody(e));
}

/** A deterministic pseudo-random source (the property test must be reproducible). */
function prng(seed: number): () => number {
  let s = seed;
  return () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
}

const crlf = (lines: string[]): Buffer => Buffer.from(lines.join('\r\n'), 'latin1');
const bigBase64 = Buffer.from(Array.from({ length: 1_900_000 }, (_, i) => (i * 131 + (i >> 10)) & 0xff));
const corpus: Record<string, Buffer> = {
  nested: Buffer.concat([
    crlf([
      'From: alice@example.com', 'To: bob@example.com', 'Subject: =?UTF-8?B?5Lit6Lqr?=', 'Message-ID: <1@example.com>', 'MIME-Version: 1.0',
      'Content-Type: multipart/mixed; boundary="outer"', '', 'preamble', '--outer', 'Content-Type: multipart/alternative; boundary="outer1"', '',
      '--outer1', 'Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: 8bit', '', 'größer --outer', '--outerX is text', '--outer1x too',
      '--outer1  ', 'Content-Type: text/html; charset=us-ascii', 'Content-Transfer-Encoding: quoted-printable', '', '<p>a=3Db</p>', '--outer1--', 'inner epilogue',
      '--outer', 'Content-Type: application/octet-stream', 'Content-Transfer-Encoding: base64', '', '',
    ]),
    Buffer.from(bigBase64.toString('base64').replace(/.{76}/g, '$&\r\n'), 'latin1'),
    crlf(['', '--outer', 'Content-Type: application/x-raw', 'Content-Transfer-Encoding: binary', '', '']),
    Buffer.from(Array.from({ length: 70_000 }, (_, i) => (i * 37) & 0xff).filter((b) => b !== 0x2d)),
    crlf(['', '--outer', 'Content-Type: message/rfc822', '', 'Subject: inner', 'Content-Type: multipart/mixed; boundary=in', '', '--in', '', 'x', '--in--', '--outer-- ', 'epilogue', '']),
  ]),
  lfOnly: Buffer.from('From: alice@example.com\nSubject: lf\nContent-Type: multipart/mixed; boundary=z\n\n--z\nContent-Type: text/plain\n\nline\n--z\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n\xe2\x82\xac\n--z--\n', 'latin1'),
  headerOnlyAndTruncated: crlf(['From: alice@example.com', 'Content-Type: multipart/mixed; boundary=t', '', '--t', 'Content-Type: text/plain', '--t', '', 'no close delimiter', '']),
  singleBinary: Buffer.concat([crlf(['From: alice@example.com', 'Content-Type: image/png', 'Content-Transfer-Encoding: binary', '', '']), Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 13) & 0xff))]),
};

test('property: the streamed signature is byte-identical whatever the chunking (1 byte to 1 MiB), and verifies with verifyMessage and openssl', async () => {
  const now = new Date('2026-11-23T12:00:00Z');
  for (const [name, message] of Object.entries(corpus)) {
    const rnd = prng(name.length * 7919);
    const sizings: Array<() => number> = [() => 1 << 20, () => 4096, () => 1 + Math.floor(rnd() ** 4 * (1 << 20)), () => 1 + Math.floor(rnd() * 300)];
    if (message.length < 100_000) sizings.push(() => 1, () => 2, () => 3);
    let reference: Buffer | undefined;
    let signed: Buffer | undefined;
    for (const size of sizings) {
      const out = new PassThrough();
      const parts: Buffer[] = [];
      out.on('data', (c: Buffer) => parts.push(c));
      const pieces = function* () {
        for (let at = 0; at < message.length; ) {
          const n = size();
          yield message.subarray(at, at + n);
          at += n;
        }
      };
      await signMessageStream(Readable.from(pieces()), out, { signers, now });
      const bytes = Buffer.concat(parts).toString('latin1');
      const boundary = /boundary="?([^";\r\n]+)"?/.exec(bytes)![1]!;
      // Everything but the boundary (random) and the ECDSA signature (randomised) must be identical.
      const payload = Buffer.from(bytes.slice(0, bytes.indexOf(`\r\n--${boundary}\r\nContent-Type: application/pkcs7-signature`)).replaceAll(boundary, 'BOUNDARY'), 'latin1');
      if (!reference) {
        reference = payload;
        signed = Buffer.concat(parts);
      } else assert.deepEqual(payload, reference, `${name}: output differs with another chunking`);
    }
    const v = await verifyMessage(signed!, { validateSigner });
    assert.equal(v.status, 'trusted', `${name}: ${v.summary}`);
    assert.deepEqual(decodedLeaves(v.output), decodedLeaves(canonicalizeLfOnly(message)), `${name}: content changed`);
    const path = join(pki.dir, `property-${name}.eml`);
    writeFileSync(path, signed!);
    execFileSync('openssl', ['smime', '-verify', '-in', path, '-CAfile', pki.caPath, '-out', '/dev/null'], { stdio: ['ignore', 'pipe', 'pipe'] });
  }
});

test('streamed signing: the streaming size limit replaces maxMessageBytes; unknown encodings, empty input and bad multiparts are refused', async () => {
  const msg = Buffer.from('From: alice@example.com\r\nSubject: s\r\n\r\nbody\r\n');
  // maxMessageBytes bounds the in-memory APIs only.
  assert.equal((await verifyMessage((await run(msg, 10, { limits: { maxMessageBytes: 10 } })).out)).status, 'valid-untrusted');
  await assert.rejects(run(msg, 10, { limits: { maxStreamMessageBytes: 20 } }), (e) => isKakitomeError(e, 'LIMIT'));
  await assert.rejects(run(Buffer.from('Content-Transfer-Encoding: x-uuencode\r\n\r\nbegin\r\n'), 5), (e) => isKakitomeError(e, 'UNSUPPORTED_ALG'));
  await assert.rejects(run(Buffer.alloc(0), 5), (e) => isKakitomeError(e, 'MALFORMED'));
  await assert.rejects(run(Buffer.from('Content-Type: multipart/mixed\r\n\r\n--x\r\n\r\na\r\n--x--\r\n'), 5), (e) => isKakitomeError(e, 'MALFORMED'));
  await assert.rejects(run(Buffer.from('Content-Type: text/plain\r\nContent-Type: text/html\r\n\r\nx\r\n'), 5), (e) => isKakitomeError(e, 'MALFORMED'));
  await assert.rejects(run(Buffer.from('Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n--a--\r\n'), 5, { limits: { maxMimeDepth: 0 } }), (e) => isKakitomeError(e, 'LIMIT'));
  const r = await run(Buffer.from('Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: 8bit\r\n\r\nSubject: \xe9\r\n\r\nx\r\n--a--\r\n', 'latin1'), 5);
  assert.ok(r.warnings.some((w) => /message\/rfc822 part is 8bit/.test(w)));
});

test('regression (fuzz seed 1013, sign-message-stream:15057): a Content-Type parameter name that is no token is refused, not written as an encoded-word that hides the boundary', async () => {
  // Rewritten with hp="clear", `;\xbe;` became `=?UTF-8?B?wr49IiI7?= boundary=z`: both writers signed a
  // message their reader refused ("multipart/mixed without a boundary parameter").
  const msg = Buffer.from('From: alice@example.com\r\nContent-Type: multipart/mixed;\xbe; boundary=z\r\n\r\n--z\r\nContent-Type: text/plain\r\n\r\nx\r\n--z--\r\n', 'latin1');
  for (const opaque of [false, true]) {
    await assert.rejects(run(msg, 3, { opaque }), (e) => isKakitomeError(e, 'MALFORMED'));
    assert.throws(() => signMessage(msg, { signers, opaque }), (e) => isKakitomeError(e, 'MALFORMED'));
  }
  // An ASCII parameter without a value stays accepted and reads back with its boundary.
  const ok = await run(Buffer.from(msg.toString('latin1').replace('\xbe', 'x'), 'latin1'), 3);
  assert.equal((await verifyMessage(ok.out, { validateSigner })).status, 'trusted');
});
