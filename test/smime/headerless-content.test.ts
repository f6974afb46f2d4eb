/**
 * Content with no MIME header inside an envelope or an opaque signature (issue 12
 * item 7): `openssl cms -encrypt` and `-sign -nodetach` without -text put the bare
 * content in, as some AS2 servers do. RFC 2045 makes an entity without header fields
 * text/plain; OpenSSL returns the content as it is. Kakitome reads it as that
 * text/plain body, in memory and streaming alike, and says so; content whose first
 * line is a header field keeps the strict MIME reading.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough, Readable } from 'node:stream';
import { TestPki } from '../helpers/pki.ts';
import { OPENSSL, requireOpenssl } from '../peers/openssl.ts';
import { runPeerOk, Workdir } from '../peers/run-peer.ts';
import { decryptMessage } from '../../src/smime/decrypt-message.ts';
import { decryptMessageStream } from '../../src/smime/decrypt-message-stream.ts';
import { verifyMessage } from '../../src/smime/verify-message.ts';
import { inspectMessage } from '../../src/smime/inspect-message.ts';
import { encryptData } from '../../src/cms/enveloped-data/encrypt.ts';
import { splitMessage } from '../../src/smime/split-message.ts';
import { startsWithHeaderField } from '../../src/mime/read-content-entity.ts';
import { createSignerValidator } from '../../src/pki/create-signer-validator.ts';
import { DEFAULT_LIMITS } from '../../src/limits.ts';
import { isKakitomeError } from '../../src/errors.ts';
import type { MessageVerdict } from '../../src/smime/verdict.ts';

const pki = new TestPki('Kakitome Headerless Root');
const w = new Workdir('headerless');
after(() => {
  pki.cleanup();
  w.cleanup();
});
const alice = pki.identity('rsa2048', 'alice');
const bob = pki.identity('rsa2048', 'bob');
const bobKeys = [{ key: bob.key, certificate: bob.cert }];
const validateSigner = createSignerValidator({ anchors: [pki.caCert], revocation: { mode: 'off' }, fetchCaIssuers: false });

/** `openssl cms -encrypt` without -text: S/MIME output whose plaintext is `content` as it is. */
async function opensslEncrypt(content: Buffer, binary: boolean): Promise<Buffer> {
  requireOpenssl();
  const out = w.path('enc.eml');
  await runPeerOk(OPENSSL, ['cms', '-encrypt', ...(binary ? ['-binary'] : []), '-aes-256-gcm', '-in', w.write('content', content), '-out', out, '-from', alice.email, '-to', bob.email, '-subject', 'Invoice 42', bob.certPath]);
  return w.read(out);
}

async function decryptStreaming(input: Buffer): Promise<{ verdict: MessageVerdict; output: Buffer }> {
  const out = new PassThrough();
  const parts: Buffer[] = [];
  out.on('data', (c: Buffer) => parts.push(c));
  // Small chunks: the first line's decision must not depend on where the plaintext is cut.
  const chunks = Array.from({ length: Math.ceil(input.length / 7) }, (_, i) => input.subarray(i * 7, i * 7 + 7));
  const verdict = await decryptMessageStream(Readable.from(chunks), { keys: bobKeys, validateSigner, output: out });
  return { verdict, output: Buffer.concat(parts) };
}

const body = (message: Buffer): Buffer => splitMessage(message, DEFAULT_LIMITS).root.body;

const contents: Array<[string, Buffer, boolean]> = [
  ['plain text, LF line breaks', Buffer.from('Hello Bob,\nthe invoice is attached.\n'), false],
  ['an X12 interchange (AS2), CRLF, -binary', Buffer.from('ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *261123*1200*U*00401*000000001*0*P*>~\r\nGS*IN*SENDER*RECEIVER*20261123*1200*1*X*004010~\r\n'), true],
  ['an EDIFACT interchange on one line, no final line break', Buffer.from("UNB+UNOC:3+SENDER+RECEIVER+261123:1200+1'UNH+1+INVOIC:D:96A:UN'"), true],
  ['text that starts with an indented line', Buffer.from('    Dear Bob:\n\n    thank you.\n'), false],
  ['text whose first line starts like an mbox separator', Buffer.from('From the desk of Alice\nNothing here is a header.\n'), false],
];

for (const [what, content, binary] of contents) {
  test(`openssl cms -encrypt without -text: ${what} decrypts as a text/plain body, in memory and streaming`, async () => {
    const sealed = await opensslEncrypt(content, binary);
    const { message, verdict } = await decryptMessage(sealed, { keys: bobKeys, validateSigner });
    assert.equal(verdict.status, 'unsigned', verdict.summary);
    assert.ok(verdict.warnings.some((x) => /no MIME header/.test(x)), verdict.warnings.join(' | '));
    // The body is the content as sent (CRLF where the content was LF-only, as every plaintext is read).
    const expected = content.includes(0x0d) || !content.includes(0x0a) ? content : Buffer.from(content.toString('latin1').replace(/\n/g, '\r\n'), 'latin1');
    assert.deepEqual(body(message), expected);
    const parsed = splitMessage(message, DEFAULT_LIMITS);
    assert.equal(parsed.root.contentType.mediaType, 'text/plain');
    assert.ok(parsed.messageHeaders.some((h) => h.name === 'Subject' && h.value === 'Invoice 42'));
    const streamed = await decryptStreaming(sealed);
    assert.deepEqual(streamed.output, message);
    assert.equal(streamed.verdict.status, verdict.status);
    assert.deepEqual(streamed.verdict.warnings.filter((x) => !x.startsWith('Streaming ')), verdict.warnings);
  });
}

test('openssl cms -sign -nodetach without -text: the headerless signed content verifies and is read as text/plain', async () => {
  requireOpenssl();
  const content = Buffer.from('Pay 100 EUR to Alice.\n');
  const out = w.path('signed.eml');
  await runPeerOk(OPENSSL, ['cms', '-sign', '-nodetach', '-md', 'sha256', '-in', w.write('content', content), '-signer', alice.certPath, '-inkey', alice.keyPath, '-out', out, '-from', alice.email, '-to', bob.email, '-subject', 'pay']);
  const signed = w.read(out);
  const v = await verifyMessage(signed, { validateSigner });
  assert.equal(v.status, 'trusted', v.summary);
  assert.ok(v.warnings.some((x) => /no MIME header/.test(x)));
  assert.deepEqual(body(v.output), Buffer.from('Pay 100 EUR to Alice.\r\n'));
  // inspect describes the content as a text/plain entity instead of failing on it.
  const report = inspectMessage(signed);
  assert.match(JSON.stringify(report), /text\/plain/);
});

test('content whose first line is a header field keeps the strict MIME reading (MALFORMED further down), in both paths', async () => {
  const content = Buffer.from('Note: this looks like a header\r\nbut this line is not one\r\n\r\nbody\r\n');
  const der = encryptData(content, { recipients: [{ certificate: bob.cert }], contentEncryption: 'aes-256-gcm' });
  const sealed = Buffer.concat([
    Buffer.from(`From: ${alice.email}\r\nTo: ${bob.email}\r\nSubject: strict\r\nMIME-Version: 1.0\r\nContent-Type: application/pkcs7-mime; smime-type=authEnveloped-data\r\nContent-Transfer-Encoding: base64\r\n\r\n`),
    Buffer.from(der.toString('base64').replace(/.{76}/g, '$&\r\n') + '\r\n'),
  ]);
  await assert.rejects(decryptMessage(sealed, { keys: bobKeys }), (e: unknown) => isKakitomeError(e, 'MALFORMED'));
  await assert.rejects(decryptStreaming(sealed), (e: unknown) => isKakitomeError(e, 'MALFORMED'));
});

test('the first-line decision: header field, empty header section, text, or not yet known', () => {
  const starts = (s: string) => startsWithHeaderField(Buffer.from(s, 'latin1'), 998);
  assert.equal(starts('Content-Type: text/plain\r\n'), true);
  assert.equal(starts('Subject : obsolete space before the colon'), true);
  assert.equal(starts('\r\nbody'), true);
  assert.equal(starts('\nbody'), true);
  assert.equal(starts('hello world'), false);
  assert.equal(starts('hello\r\n'), false);
  assert.equal(starts(': no name'), false);
  assert.equal(starts(' indented'), false);
  assert.equal(starts('\u00e9t\u00e9: 8-bit name'), false);
  assert.equal(starts('\rx'), false);
  for (const partial of ['', '\r', 'Content-Typ', 'Subject  ']) assert.equal(starts(partial), undefined, JSON.stringify(partial));
  // A name that runs past the line limit is left to the header parser (LIMIT there).
  assert.equal(startsWithHeaderField(Buffer.alloc(2000, 0x61), 998), true);
});
