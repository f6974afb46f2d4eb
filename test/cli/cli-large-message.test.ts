/**
 * Messages above the CLI's streaming threshold (32 MiB) go through the streaming
 * APIs: signed, verified, encrypted and decrypted from files and from standard
 * input, with OUT kept only on success, and cross-checked with openssl.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync, openSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { TestPki } from '../helpers/pki.ts';
import { STREAM_THRESHOLD } from '../../src/cli/open-message-input.ts';
import { runCli, runProcess } from './run-cli.ts';

const pki = new TestPki('CLI Large Message Root');
const alice = pki.identity('rsa2048', 'alice');
const bob = pki.identity('p256', 'bob');
const dir = pki.dir;
test.after(() => pki.cleanup());

/** A multipart/mixed message with a text part and a base64 attachment, a little over the threshold. */
function writeLargeMessage(path: string): Buffer {
  const attachment = randomBytes(Math.ceil((STREAM_THRESHOLD + 4 * 1024 * 1024) * 0.75));
  const b64 = attachment.toString('base64').replace(/.{76}/g, '$&\r\n');
  const fd = openSync(path, 'w');
  writeSync(fd, `From: ${alice.email}\r\nTo: ${bob.email}\r\nSubject: Quarterly archive\r\nDate: Mon, 23 Nov 2026 13:00:00 +0000\r\nMessage-ID: <large@example.com>\r\nMIME-Version: 1.0\r\n` +
    'Content-Type: multipart/mixed; boundary="mixed-1"\r\n\r\n--mixed-1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe archive is attached.\r\n' +
    '--mixed-1\r\nContent-Type: application/octet-stream; name=archive.bin\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=archive.bin\r\n\r\n');
  writeSync(fd, b64);
  writeSync(fd, '\r\n--mixed-1--\r\n');
  closeSync(fd);
  return attachment;
}

/** The attachment decoded back out of a message (the first base64 body after its Content-Disposition). */
function attachmentOf(message: Buffer): Buffer {
  const text = message.toString('latin1');
  const start = text.indexOf('\r\n\r\n', text.indexOf('filename=archive.bin')) + 4;
  const end = text.indexOf('\r\n--', start);
  return Buffer.from(text.slice(start, end), 'base64');
}

const input = join(dir, 'large.eml');
const attachment = writeLargeMessage(input);

test('sign and verify a message over the streaming threshold, file to file; openssl smime verifies it too', async () => {
  const signed = join(dir, 'large-signed.eml');
  const s = await runCli(['sign', '--cert', alice.certPath, '--key', alice.keyPath, '-i', input, '-o', signed]);
  assert.equal(s.status, 0, s.stderr);
  const head = readFileSync(signed).subarray(0, 4096).toString('latin1');
  assert.match(head, /^Content-Type: multipart\/signed;/m);
  assert.match(head, /^Subject: Quarterly archive\r$/m);

  const o = await runProcess('openssl', ['smime', '-verify', '-CAfile', pki.caPath, '-in', signed, '-out', '/dev/null']);
  assert.equal(o.status, 0, o.stderr);

  const out = join(dir, 'large-verified.eml');
  const v = await runCli(['verify', '--ca', pki.caPath, '--json', '-i', signed, '-o', out]);
  assert.equal(v.status, 0, v.stderr);
  const verdict = JSON.parse(v.stdout.toString('utf8'));
  assert.equal(verdict.status, 'trusted');
  assert.deepEqual(verdict.signers[0].email, [alice.email]);
  const verified = readFileSync(out);
  assert.match(verified.subarray(0, 4096).toString('latin1'), /^Content-Type: multipart\/mixed;/m);
  assert.ok(attachmentOf(verified).equals(attachment), 'the attachment survives sign and verify byte for byte');
});

test('a tampered large message fails verification (exit 1) and leaves no OUT file', async () => {
  const signed = join(dir, 'large-signed-2.eml');
  const s = await runCli(['sign', '--cert', alice.certPath, '--key', alice.keyPath, '-i', input, '-o', signed]);
  assert.equal(s.status, 0, s.stderr);
  const bytes = readFileSync(signed);
  const at = bytes.indexOf('filename=archive.bin') + 1024 * 1024;
  bytes[at] = bytes[at] === 0x41 ? 0x42 : 0x41;
  const tampered = join(dir, 'large-tampered.eml');
  writeFileSync(tampered, bytes);
  const out = join(dir, 'large-tampered-out.eml');
  const v = await runCli(['verify', '--ca', pki.caPath, '-i', tampered, '-o', out]);
  assert.equal(v.status, 1, v.stderr);
  assert.match(v.stderr, /invalid|does not match|digest/i);
  assert.equal(existsSync(out), false, 'no output for a failed verification');
});

test('standard input past the threshold streams: sign to standard output, then verify from standard input', async () => {
  const s = await runCli(['sign', '--cert', alice.certPath, '--key', alice.keyPath], { input: readFileSync(input) });
  assert.equal(s.status, 0, s.stderr);
  assert.ok(s.stdout.length > STREAM_THRESHOLD);
  const v = await runCli(['verify', '--ca', pki.caPath], { input: s.stdout });
  assert.equal(v.status, 0, v.stderr);
  assert.ok(attachmentOf(v.stdout).equals(attachment));
  // An untrusted signature (no --ca for this root) writes nothing to standard output.
  const u = await runCli(['verify'], { input: s.stdout });
  assert.equal(u.status, 1, u.stderr);
  assert.equal(u.stdout.length, 0);
});

test('encrypt a large message to a file, the Subject hidden (streaming legacy display); openssl cms decrypts it', async () => {
  const sealed = join(dir, 'large-sealed.eml');
  const e = await runCli(['encrypt', '--to', alice.certPath, '--hide-subject', '-i', input, '-o', sealed]);
  assert.equal(e.status, 0, e.stderr);
  const head = readFileSync(sealed).subarray(0, 2048).toString('latin1');
  assert.match(head, /smime-type=authEnveloped-data/);
  assert.match(head, /^Subject: \[\.\.\.\]\r$/m);
  assert.doesNotMatch(head, /Quarterly archive/, 'the Subject is hidden');
  const plain = join(dir, 'large-openssl-plain.eml');
  const o = await runProcess('openssl', ['cms', '-decrypt', '-recip', alice.certPath, '-inkey', alice.keyPath, '-in', sealed, '-out', plain]);
  assert.equal(o.status, 0, o.stderr);
  assert.ok(attachmentOf(readFileSync(plain)).equals(attachment));
  // The main body part starts with the legacy display of the hidden Subject.
  const text = readFileSync(plain).toString('latin1');
  const part = text.slice(text.indexOf('hp-legacy-display'));
  assert.match(Buffer.from(part.slice(part.indexOf('\r\n\r\n') + 4, part.indexOf('\r\n\r\n', part.indexOf('\r\n\r\n') + 4)), 'base64').toString('utf8'), /^Subject: Quarterly archive\r\n\r\n/);
});

test('decrypt a large message file to file and from standard input to standard output; sign-then-encrypt is verified inside', async () => {
  const sealed = join(dir, 'large-sealed-2.eml');
  const e = await runCli(['encrypt', '--to', bob.certPath, '--sign-cert', alice.certPath, '--sign-key', alice.keyPath, '-i', input, '-o', sealed]);
  assert.equal(e.status, 0, e.stderr);
  const out = join(dir, 'large-decrypted.eml');
  const d = await runCli(['decrypt', '--cert', bob.certPath, '--key', bob.keyPath, '--ca', pki.caPath, '--json', '-i', sealed, '-o', out]);
  assert.equal(d.status, 0, d.stderr);
  const verdict = JSON.parse(d.stdout.toString('utf8'));
  assert.equal(verdict.status, 'trusted');
  assert.deepEqual(verdict.signers[0].email, [alice.email]);
  const plain = readFileSync(out);
  assert.match(plain.subarray(0, 4096).toString('latin1'), /^Subject: Quarterly archive\r$/m, 'the protected Subject is restored');
  assert.ok(attachmentOf(plain).equals(attachment));

  const piped = await runCli(['decrypt', '--cert', bob.certPath, '--key', bob.keyPath, '--ca', pki.caPath], { input: readFileSync(sealed) });
  assert.equal(piped.status, 0, piped.stderr);
  assert.ok(attachmentOf(piped.stdout).equals(attachment));
});

test('a tampered large envelope: exit 1, one decryption error, no OUT file and nothing on standard output', async () => {
  const sealed = join(dir, 'large-sealed-3.eml');
  const e = await runCli(['encrypt', '--to', bob.certPath, '-i', input, '-o', sealed]);
  assert.equal(e.status, 0, e.stderr);
  const bytes = readFileSync(sealed);
  const at = bytes.length - 4096;
  bytes[at] = bytes[at] === 0x41 ? 0x42 : 0x41;
  const out = join(dir, 'large-tampered-plain.eml');
  const d = await runCli(['decrypt', '--cert', bob.certPath, '--key', bob.keyPath, '-i', '-', '-o', out], { input: bytes });
  assert.equal(d.status, 1, d.stderr);
  assert.match(d.stderr, /DECRYPT_FAILED|cannot be decrypted|could not be decrypted/i);
  assert.equal(existsSync(out), false);
  const piped = await runCli(['decrypt', '--cert', bob.certPath, '--key', bob.keyPath], { input: bytes });
  assert.equal(piped.status, 1, piped.stderr);
  assert.equal(piped.stdout.length, 0, 'no unauthenticated plaintext reaches standard output');
});

test('opaque signing of a large message streams too', async () => {
  const signed = join(dir, 'large-opaque.eml');
  const s = await runCli(['sign', '--opaque', '--cert', alice.certPath, '--key', alice.keyPath, '-i', input, '-o', signed]);
  assert.equal(s.status, 0, s.stderr);
  assert.match(readFileSync(signed).subarray(0, 2048).toString('latin1'), /smime-type=signed-data/);
  const v = await runCli(['verify', '--ca', pki.caPath, '--json', '-i', signed, '-o', '/dev/null']);
  assert.equal(v.status, 0, v.stderr);
});

test('an mbox piped on standard input past the threshold: one message with its From_ line signs, a second message is refused with nothing written', async () => {
  const big = readFileSync(input);
  const envelope = Buffer.from('From alice@example.com Mon Nov 23 13:00:00 2026\n');
  const one = await runCli(['sign', '--cert', alice.certPath, '--key', alice.keyPath], { input: Buffer.concat([envelope, big]) });
  assert.equal(one.status, 0, one.stderr);
  assert.match(one.stdout.subarray(0, 200).toString('latin1'), /^From: /, 'the From_ line is dropped');
  const two = await runCli(['sign', '--cert', alice.certPath, '--key', alice.keyPath], { input: Buffer.concat([envelope, big, Buffer.from('\nFrom bob@example.com Mon Nov 23 13:05:00 2026\nFrom: bob@example.com\n\nhi\n')]) });
  assert.equal(two.status, 2, two.stderr);
  assert.match(two.stderr, /mbox with several messages/);
  assert.equal(two.stdout.length, 0);
});
