/**
 * Header protection that today's clients can read (issue 12 item 2). Outlook, Apple
 * Mail, iOS Mail, Gmail (and Thunderbird for S/MIME) show only the outer header
 * fields, so encryption keeps them readable by default (RFC 9788
 * hcp_no_confidentiality, protected inside); hideSubject puts "[...]" outside
 * (hcp_baseline) and the Legacy Display Element (RFC 9788 section 4.5) at the top of
 * each main body part, where those clients show it. encryptMessage and
 * encryptMessageStream must write the same text; `openssl cms -decrypt` stands for
 * a client that does not read protected headers.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable, PassThrough } from 'node:stream';
import { TestPki } from '../helpers/pki.ts';
import { encryptMessage, type EncryptMessageOptions } from '../../src/smime/encrypt-message.ts';
import { encryptMessageStream } from '../../src/smime/encrypt-message-stream.ts';
import { decryptMessage } from '../../src/smime/decrypt-message.ts';
import { signMessage } from '../../src/smime/sign-message.ts';
import { parseEntity } from '../../src/mime/parse-entity.ts';
import { decodeText } from '../../src/mime/decode-text.ts';
import { decodeHeaderText } from '../../src/mime/decode-header-text.ts';
import { getHeaderFields, getHeaderValue, walkEntities, type MimeEntity } from '../../src/mime/entity.ts';
import { LEGACY_DISPLAY_MAX_BODY_BYTES } from '../../src/smime/legacy-display.ts';
import { isKakitomeError } from '../../src/errors.ts';

const pki = new TestPki('Kakitome Legacy Display Root');
after(() => pki.cleanup());
const bob = pki.identity('p256', 'bob');
const alice = pki.identity('rsa2048', 'alice');
const bobKeys = [{ key: bob.key, certificate: bob.cert }];

const crlf = (lines: string[]): Buffer => Buffer.from(lines.join('\r\n'), 'utf8');
const HEAD = ['From: Alice <alice@example.com>', 'To: Bob <bob@example.com>', 'Subject: =?UTF-8?B?5Lya6K2w?= on Friday', 'Date: Mon, 23 Nov 2026 10:00:00 +0900', 'Message-ID: <hp@example.com>', 'Keywords: board', 'MIME-Version: 1.0'];
const SUBJECT = '会議 on Friday';

async function streamed(message: Buffer, options: EncryptMessageOptions): Promise<{ bytes: Buffer; warnings: string[] }> {
  const out = new PassThrough();
  const parts: Buffer[] = [];
  out.on('data', (c: Buffer) => parts.push(c));
  const pieces = Array.from({ length: Math.ceil(message.length / 97) }, (_, i) => message.subarray(i * 97, i * 97 + 97));
  const { warnings } = await encryptMessageStream(Readable.from(pieces), out, options);
  return { bytes: Buffer.concat(parts), warnings };
}

/** Each leaf of the decrypted payload: media type, parameters that matter here, and decoded text (or bytes). */
function leaves(entity: MimeEntity): Array<{ type: string; legacy?: string; charset?: string; text: string }> {
  return [...walkEntities(entity)].filter((e) => e.contentType.type !== 'multipart').map((e) => ({
    type: e.contentType.mediaType,
    ...(e.contentType.params['hp-legacy-display'] ? { legacy: e.contentType.params['hp-legacy-display'] } : {}),
    ...(e.contentType.type === 'text' ? { charset: e.contentType.params.charset ?? '' } : {}),
    text: e.contentType.type === 'text' ? decodeText(e) : e.body.toString('latin1'),
  }));
}

/** Encrypts in memory and streaming, checks both decrypt to the same leaves with the same warnings, returns the in-memory outcome. */
async function encryptBothWays(message: Buffer, options: Partial<EncryptMessageOptions> = {}) {
  const warnings: string[] = [];
  const mem = encryptMessage(message, { recipients: [{ certificate: bob.cert }], ...options, warnings });
  const st = await streamed(message, { recipients: [{ certificate: bob.cert }], ...options });
  const a = await decryptMessage(mem, { keys: bobKeys });
  const b = await decryptMessage(st.bytes, { keys: bobKeys });
  const la = leaves(parseEntity(a.message));
  assert.deepEqual(leaves(parseEntity(b.message)), la, 'streaming writes the same text as encryptMessage');
  assert.deepEqual(st.warnings.filter((w) => /legacy display/.test(w)), warnings.filter((w) => /legacy display/.test(w)), 'the same warnings');
  return { sealed: mem, outer: parseEntity(mem), verdict: a.verdict, decrypted: parseEntity(a.message), leaves: la, warnings };
}

test('by default the header fields stay readable outside and are protected inside (hp="cipher", HP-Outer equal to them)', async () => {
  const msg = crlf([...HEAD, 'Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: 8bit', '', '金曜日の会議の資料です。', '']);
  const r = await encryptBothWays(msg);
  assert.equal(decodeHeaderText(getHeaderValue(r.outer, 'subject')!), SUBJECT);
  assert.equal(getHeaderValue(r.outer, 'keywords'), 'board');
  assert.equal(r.verdict.protectedHeaders?.mode, 'cipher');
  assert.deepEqual(r.verdict.protectedHeaders?.mismatches, []);
  assert.deepEqual(r.leaves, [{ type: 'text/plain', charset: 'utf-8', text: '金曜日の会議の資料です。\r\n' }], 'no legacy display when nothing is hidden');
  // What the recipient's client reads without header protection: the payload, with each outer field recorded as is.
  const path = join(pki.dir, 'default.eml');
  writeFileSync(path, r.sealed);
  const payload = parseEntity(execFileSync('openssl', ['cms', '-decrypt', '-in', path, '-recip', bob.certPath, '-inkey', bob.keyPath]));
  assert.equal(payload.contentType.params.hp, 'cipher');
  const hpOuter = getHeaderFields(payload, 'hp-outer').map((f) => decodeHeaderText(f.value));
  assert.ok(hpOuter.includes(`Subject: ${SUBJECT}`), hpOuter.join(' | '));
  assert.ok(hpOuter.includes('Keywords: board'));
});

test('hideSubject: "[...]" outside, and every main body part of a multipart/alternative starts with the Subject (text and HTML)', async () => {
  const msg = crlf([...HEAD, 'Content-Type: multipart/alternative; boundary="alt"', '',
    '--alt', 'Content-Type: text/plain; charset=us-ascii', 'Content-Transfer-Encoding: 7bit', '', 'See you on Friday.',
    '--alt', 'Content-Type: text/html; charset=utf-8', 'Content-Transfer-Encoding: quoted-printable', '', '<!DOCTYPE html><html><head><title>x</title></head><body class=3D"m"><p>See you =E2=80=94 Friday.</p></body></html>',
    '--alt--', '']);
  const r = await encryptBothWays(msg, { hideSubject: true });
  assert.equal(getHeaderValue(r.outer, 'subject'), '[...]');
  assert.equal(getHeaderValue(r.outer, 'keywords'), undefined, 'hcp_baseline removes Keywords');
  assert.deepEqual(r.verdict.protectedHeaders?.mismatches, []);
  // A us-ascii part becomes utf-8 to carry a non-ASCII Subject.
  assert.deepEqual(r.leaves[0], { type: 'text/plain', legacy: '1', charset: 'utf-8', text: `Subject: ${SUBJECT}\r\n\r\nSee you on Friday.` });
  const html = r.leaves[1]!;
  assert.equal(html.legacy, '1');
  // The element goes right after <body>, so the DOCTYPE still comes first (no quirks mode).
  assert.equal(html.text, `<!DOCTYPE html><html><head><title>x</title></head><body class="m">\r\n<div class="header-protection-legacy-display"><pre>Subject: ${SUBJECT}</pre></div>\r\n<p>See you — Friday.</p></body></html>`);
  // The restored message shows the real Subject too.
  assert.equal(decodeHeaderText(getHeaderValue(r.decrypted, 'subject')!), SUBJECT);
});

test('hideSubject: in a multipart/mixed only the first part is the body; attachments (even text ones) are left alone; nested alternatives are reached', async () => {
  const attachment = Buffer.from(Array.from({ length: 400 }, (_, i) => (i * 7) & 0xff)).toString('base64');
  const msg = crlf([...HEAD, 'Content-Type: multipart/mixed; boundary="mix"', '', 'preamble',
    '--mix', 'Content-Type: multipart/related; boundary="rel"', '',
    '--rel', 'Content-Type: multipart/alternative; boundary="alt"', '',
    '--alt', 'Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: base64', '', Buffer.from('本文です。\r\n').toString('base64'),
    '--alt', 'Content-Type: text/html; charset=utf-8', '', '<p>本文</p>',
    '--alt--',
    '--rel', 'Content-Type: image/png', 'Content-Transfer-Encoding: base64', '', attachment,
    '--rel--',
    '--mix', 'Content-Type: text/plain; charset=utf-8', 'Content-Disposition: attachment; filename=notes.txt', '', 'notes',
    '--mix', 'Content-Type: text/plain; charset=utf-8', '', 'a second inline text part is no main body part',
    '--mix--', 'epilogue', '']);
  const r = await encryptBothWays(msg, { hideSubject: true });
  const marked = r.leaves.filter((l) => l.legacy === '1').map((l) => l.type);
  assert.deepEqual(marked, ['text/plain', 'text/html']);
  assert.equal(r.leaves[0]!.text, `Subject: ${SUBJECT}\r\n\r\n本文です。\r\n`);
  assert.equal(r.leaves[1]!.text, `<div class="header-protection-legacy-display"><pre>Subject: ${SUBJECT}</pre></div>\r\n<p>本文</p>`);
  assert.deepEqual(r.leaves.slice(3).map((l) => l.text), ['notes', 'a second inline text part is no main body part']);
  // The bytes of parts that were not changed travel unchanged.
  assert.equal(r.leaves[2]!.text.replace(/\r\n/g, ''), attachment);
});

test('hideSubject: a legacy charset is re-encoded as UTF-8 to carry the Subject; one Node cannot read is left alone, with a warning', async () => {
  const latin1 = Buffer.concat([crlf([...HEAD, 'Content-Type: text/plain; charset=iso-8859-1', 'Content-Transfer-Encoding: 8bit', '', '']), Buffer.from('Caf\xe9 at noon.\r\n', 'latin1')]);
  const r = await encryptBothWays(latin1, { hideSubject: true });
  assert.deepEqual(r.leaves, [{ type: 'text/plain', legacy: '1', charset: 'utf-8', text: `Subject: ${SUBJECT}\r\n\r\nCafé at noon.\r\n` }]);
  const unknown = crlf([...HEAD, 'Content-Type: text/plain; charset=x-unknown-charset', '', 'plain words', '']);
  const u = await encryptBothWays(unknown, { hideSubject: true });
  assert.deepEqual(u.leaves, [{ type: 'text/plain', charset: 'x-unknown-charset', text: 'plain words\r\n' }]);
  assert.ok(u.warnings.some((w) => /charset "x-unknown-charset" got no legacy display/.test(w)), u.warnings.join(' | '));
  // An ASCII Subject needs no re-encoding: any ASCII-compatible charset takes it as it is.
  const ascii = Buffer.from(unknown.toString('latin1').replace(/^Subject: .*$/m, 'Subject: Lunch'), 'latin1');
  const a = await encryptBothWays(ascii, { hideSubject: true });
  assert.deepEqual(a.leaves, [{ type: 'text/plain', legacy: '1', charset: 'x-unknown-charset', text: 'Subject: Lunch\r\n\r\nplain words\r\n' }]);
});

test('hideSubject: a main body part over the size bound, or content signed already, gets no display (the same warning on both paths)', async () => {
  const big = crlf([...HEAD, 'Content-Type: text/plain; charset=utf-8', '', 'x'.repeat(LEGACY_DISPLAY_MAX_BODY_BYTES + 10), '']);
  const r = await encryptBothWays(big, { hideSubject: true });
  assert.equal(r.leaves[0]!.legacy, undefined);
  assert.ok(r.warnings.some((w) => /more than 1048576 bytes got no legacy display/.test(w)));
  assert.equal(getHeaderValue(r.outer, 'subject'), '[...]');
  // A message signed before it is encrypted: its body is under a signature that the display would break.
  const signed = signMessage(crlf([...HEAD, 'Content-Type: text/plain', '', 'signed text', '']), { signers: [{ certificate: alice.cert, key: alice.key }] });
  const s = await encryptBothWays(signed, { hideSubject: true });
  assert.ok(s.warnings.some((w) => /already signed inside/.test(w)), s.warnings.join(' | '));
  assert.ok(!s.leaves.some((l) => l.legacy));
});

test('hideSubject with sign-then-encrypt: the display is inside the signature; openssl (a client without header protection) shows it', async () => {
  const msg = crlf([...HEAD.map((h) => h.replace('Alice <alice@example.com>', 'alice@example.com')), 'Content-Type: text/plain; charset=utf-8', '', 'Signed and sealed.', '']);
  const sealed = encryptMessage(msg, { recipients: [{ certificate: bob.cert }], hideSubject: true, sign: { signers: [{ certificate: alice.cert, key: alice.key }] } });
  const path = join(pki.dir, 'signed-sealed.eml');
  writeFileSync(path, sealed);
  const inner = execFileSync('openssl', ['cms', '-decrypt', '-in', path, '-recip', bob.certPath, '-inkey', bob.keyPath]);
  writeFileSync(path + '.inner', inner);
  const verified = parseEntity(execFileSync('openssl', ['smime', '-verify', '-in', path + '.inner', '-CAfile', pki.caPath], { stdio: ['ignore', 'pipe', 'ignore'] }));
  assert.equal(verified.contentType.params['hp-legacy-display'], '1');
  assert.equal(decodeText(verified), `Subject: ${SUBJECT}\r\n\r\nSigned and sealed.\r\n`);
});

test('hideSubject needs header protection', async () => {
  const msg = crlf([...HEAD, 'Content-Type: text/plain', '', 'x', '']);
  assert.throws(() => encryptMessage(msg, { recipients: [{ certificate: bob.cert }], hideSubject: true, headerProtection: false }), (e: unknown) => isKakitomeError(e, 'INVALID_ARGUMENT'));
  await assert.rejects(streamed(msg, { recipients: [{ certificate: bob.cert }], hideSubject: true, headerProtection: false }), (e: unknown) => isKakitomeError(e, 'INVALID_ARGUMENT'));
});
