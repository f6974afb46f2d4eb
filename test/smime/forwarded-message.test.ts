/**
 * Forwarded and attached mail (issue 12, item 1): a message/rfc822 part is opened as
 * a message of its own and judged on its own (trust, algorithm policy, EFAIL rule,
 * its OWN From against its signer), reported in verdict.attachedMessages under its
 * part number and file name, never merged into the verdict of the message holding it.
 *
 * The forwarded messages are made by real peers: `openssl cms -sign` / `-encrypt`
 * (S/MIME mail with its own From/To/Subject) and NSS `cmsutil -E` (Thunderbird's
 * engine: AES-128-CBC, RSA v1.5), forwarded the way mail clients forward
 * ("Forward as attachment": multipart/mixed, a text part, then the message as a
 * message/rfc822 part with Content-Disposition: attachment; filename=...). Plus
 * Thunderbird's own nested-signature test message (fixtures/README.md).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestPki, type Identity } from '../helpers/pki.ts';
import { NssPeer } from '../peers/nss.ts';
import { signMessage } from '../../src/smime/sign-message.ts';
import { encryptMessage } from '../../src/smime/encrypt-message.ts';
import { verifyMessage } from '../../src/smime/verify-message.ts';
import { decryptMessage } from '../../src/smime/decrypt-message.ts';
import { decryptAttachedMessages } from '../../src/smime/decrypt-attached-messages.ts';
import { verifyMessageStream } from '../../src/smime/verify-message-stream.ts';
import { decryptMessageStream } from '../../src/smime/decrypt-message-stream.ts';
import { createSignerValidator } from '../../src/pki/create-signer-validator.ts';
import type { AttachedMessageVerdict, MessageVerdict } from '../../src/smime/verdict.ts';

const pki = new TestPki('Kakitome Forwarding Root');
const alice = pki.identity('rsa2048', 'alice');
const bob = pki.identity('rsa2048', 'bob');
const carol = pki.identity('rsa2048', 'carol');
const validateSigner = createSignerValidator({ anchors: [pki.caCert], revocation: { mode: 'off' }, fetchCaIssuers: false });
const keysOf = (id: Identity) => [{ key: id.key, certificate: id.cert }];
let nss: NssPeer | undefined;
after(() => {
  pki.cleanup();
  nss?.work.cleanup();
});

const crlf = (s: string): Buffer => Buffer.from(s.replace(/\r?\n/g, '\r\n'), 'latin1');
let n = 0;
/** Runs `openssl cms` on `input` (a file in the PKI directory) and returns what it wrote, in CRLF form as a mail store keeps it. */
function opensslCms(input: Buffer, args: string[], recipients: string[] = []): Buffer {
  const inPath = join(pki.dir, `fwd-in-${n}.txt`);
  const outPath = join(pki.dir, `fwd-out-${n++}.eml`);
  writeFileSync(inPath, input);
  execFileSync('openssl', ['cms', ...args, '-in', inPath, '-out', outPath, ...recipients], { stdio: ['ignore', 'ignore', 'pipe'] });
  return crlf(readFileSync(outPath, 'latin1'));
}
const content = (text: string): Buffer => crlf(`Content-Type: text/plain; charset=us-ascii\n\n${text}\n`);
/** `openssl cms -sign` of a whole mail, with its own header fields (openssl's -from/-to/-subject). */
const opensslSigned = (signer: Identity, from: string, text: string, md = 'sha256'): Buffer =>
  opensslCms(content(text), ['-sign', '-signer', signer.certPath, '-inkey', signer.keyPath, '-md', md, '-from', from, '-to', 'dave@example.com', '-subject', 'Quarterly figures']);
const opensslEncrypted = (to: Identity, cipher: string, input: Buffer, from = 'alice@example.com'): Buffer =>
  opensslCms(input, ['-encrypt', cipher, '-from', from, '-to', to.email, '-subject', 'Sealed'], [to.certPath]);

/** "Forward as attachment", as Thunderbird and Outlook write it. */
function forward(from: string, inner: Buffer, o: { filename?: string; encoding?: 'base64'; boundary?: string } = {}): Buffer {
  const b = o.boundary ?? `fwd-${n++}`;
  const disposition = o.filename ? `Content-Disposition: attachment; filename="${o.filename}"\r\n` : '';
  const body = o.encoding === 'base64' ? inner.toString('base64').replace(/.{76}/g, '$&\r\n') : inner.toString('latin1');
  return Buffer.concat([
    crlf(`From: ${from}\nTo: erin@example.com\nSubject: Fwd: Quarterly figures\nDate: Sun, 06 Dec 2026 11:00:00 +0000\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="${b}"\n\n--${b}\nContent-Type: text/plain; charset=us-ascii\n\nSee the attached message.\n\n--${b}\nContent-Type: message/rfc822${o.filename ? `; name="${o.filename}"` : ''}\n${o.encoding ? `Content-Transfer-Encoding: ${o.encoding}\n` : ''}`),
    Buffer.from(disposition, 'latin1'),
    Buffer.from('\r\n', 'latin1'),
    Buffer.from(body, 'latin1'),
    crlf(`${body.endsWith('\n') ? '' : '\n'}--${b}--\n`),
  ]);
}
const plainMail = (from: string, text: string): Buffer => crlf(`From: ${from}\nTo: erin@example.com\nSubject: note\nMIME-Version: 1.0\nContent-Type: text/plain\n\n${text}\n`);

function only(v: MessageVerdict): AttachedMessageVerdict {
  assert.equal(v.attachedMessages?.length, 1, `one attached message: ${JSON.stringify(v.attachedMessages?.map((a) => a.summary))}`);
  return v.attachedMessages![0]!;
}

test('forwarded signed message (openssl), outer unsigned: the attachment is trusted on its own, the outer message stays unsigned', async () => {
  const inner = opensslSigned(alice, 'alice@example.com', 'Revenue is up 4%.');
  const v = await verifyMessage(forward('Mallory <mallory@example.net>', inner, { filename: 'Quarterly figures.eml' }), { validateSigner });
  assert.equal(v.status, 'unsigned');
  assert.equal(v.code, undefined);
  assert.equal(v.summary, 'The message is not signed.');
  assert.equal(v.signers.length, 0, 'the attached signer is never a signer of the outer message');
  const a = only(v);
  assert.equal(a.part, '2');
  assert.equal(a.filename, 'Quarterly figures.eml');
  assert.equal(a.verdict?.status, 'trusted', a.summary);
  assert.equal(a.verdict.signers[0]!.email, 'alice@example.com');
  assert.match(a.summary, /^Attached message 2 \("Quarterly figures\.eml"\): Signed by alice@example\.com/);
  assert.ok(v.warnings.includes('The attached message 2 ("Quarterly figures.eml") is signed by alice@example.com and trusted: that is its own verdict, and it does not change this message\'s.'), v.warnings.join('\n'));
  // The attached message alone, with the signature removed.
  assert.match(a.verdict.output.toString('latin1'), /Revenue is up 4%\./);
});

test('a forwarded message claiming another From than its signer: IDENTITY_MISMATCH for it, checked against its own From', async () => {
  // Alice signed; the forwarded message's From says the CEO (openssl -from: the header is outside the signature).
  const inner = opensslSigned(alice, 'CEO <ceo@example.com>', 'Wire 40,000 EUR today.');
  const v = await verifyMessage(forward('alice@example.com', inner, { filename: 'urgent.eml' }), { validateSigner });
  assert.equal(v.status, 'unsigned');
  const a = only(v);
  assert.equal(a.verdict?.status, 'valid-untrusted');
  assert.equal(a.verdict.code, 'IDENTITY_MISMATCH');
  assert.equal(a.verdict.signers[0]!.identity.from, 'ceo@example.com', 'compared with the attached message\'s own From, not the outer one');
});

test('outer signed and trusted, forwarded message invalid: outer stays trusted, the attachment is reported invalid in plain words', async () => {
  const inner = Buffer.from(opensslSigned(carol, 'carol@example.com', 'Price: 100 EUR.').toString('latin1').replace('100 EUR', '900 EUR'), 'latin1');
  const outer = signMessage(forward('bob@example.com', inner, { filename: 'offer.eml' }), { signers: [{ certificate: bob.cert, key: bob.key }] });
  const v = await verifyMessage(outer, { validateSigner });
  assert.equal(v.status, 'trusted', v.summary);
  assert.equal(v.signers.length, 1);
  assert.equal(v.signers[0]!.email, 'bob@example.com');
  const a = only(v);
  assert.equal(a.verdict?.status, 'invalid');
  assert.equal(a.verdict.code, 'DIGEST_MISMATCH');
  assert.match(a.summary, /^Attached message 2 \("offer\.eml"\): The signature by carol@example\.com is NOT valid/);
  assert.ok(v.warnings.includes('The attached message 2 ("offer.eml") has a signature that is NOT valid (DIGEST_MISMATCH): that is its own verdict, and it does not change this message\'s.'), v.warnings.join('\n'));
});

test('algorithm policy applies to the forwarded message: SHA-1 (openssl -md sha1) is WEAK_ALG for it', async () => {
  const v = await verifyMessage(forward('bob@example.com', opensslSigned(alice, 'alice@example.com', 'old client', 'sha1')), { validateSigner });
  const a = only(v);
  assert.equal(a.verdict?.status, 'valid-untrusted');
  assert.equal(a.verdict.code, 'WEAK_ALG');
  assert.equal(a.filename, undefined);
  assert.equal(v.status, 'unsigned');
});

test('a forwarded message base64-encoded (against RFC 2046 5.2.1) is decoded, with a warning', async () => {
  const v = await verifyMessage(forward('bob@example.com', opensslSigned(alice, 'alice@example.com', 'b64'), { encoding: 'base64', filename: 'f.eml' }), { validateSigner });
  const a = only(v);
  assert.equal(a.verdict?.status, 'trusted', a.summary);
  assert.match(a.verdict.warnings[0]!, /base64-encoded \(RFC 2046 section 5\.2\.1/);
});

test('forwarded inside an encrypted message: found in the decrypted layer; the outer verdict is the outer\'s', async () => {
  const forwarded = forward('bob@example.com', opensslSigned(alice, 'alice@example.com', 'inside'), { filename: 'in.eml' });
  const sealed = encryptMessage(forwarded, { recipients: [{ certificate: carol.cert }] });
  const { message, verdict } = await decryptMessage(sealed, { keys: keysOf(carol), validateSigner });
  assert.equal(verdict.status, 'unsigned');
  assert.equal(verdict.encryption?.authenticatedBy, 'aead');
  assert.equal(only(verdict).verdict?.status, 'trusted');
  assert.match(message.toString('latin1'), /Content-Type: message\/rfc822/);
});

test('forwarded encrypted message (openssl AES-256-GCM): decryptMessage judges and decrypts it, but leaves the outer message unchanged', async () => {
  const inner = opensslEncrypted(bob, '-aes-256-gcm', content('The door code is 4711.'));
  const outer = forward('alice@example.com', inner, { filename: 'sealed.eml' });
  const sealedOuter = encryptMessage(outer, { recipients: [{ certificate: bob.cert }] });
  const { message, verdict } = await decryptMessage(sealedOuter, { keys: keysOf(bob), validateSigner });
  assert.ok(message.includes(inner), 'the forwarded message is written as received (still encrypted)');
  assert.ok(!message.includes(Buffer.from('4711')), 'no plaintext of the attachment merged into the outer message');
  const a = only(verdict);
  assert.equal(a.verdict?.status, 'unsigned');
  assert.equal(a.verdict.encryption?.authenticatedBy, 'aead');
  assert.match(a.verdict.output.toString('latin1'), /The door code is 4711\./, 'the decrypted form is the attachment verdict\'s output');

  // Without keys (verifyMessage) it is reported as encrypted and not decrypted.
  const seen = await verifyMessage(outer, { validateSigner });
  assert.equal(only(seen).verdict?.summary, 'The message is encrypted and was not decrypted.');
});

test('forwarded CBC message signed inside by its sender (openssl sign, then AES-256-CBC): decrypted, trusted', async () => {
  const signed = opensslSigned(alice, 'alice@example.com', 'Signed, then sealed.');
  // openssl encrypts the MIME entity; the message header fields stay outside (as a client does).
  const at = signed.indexOf('MIME-Version');
  const inner = opensslEncrypted(bob, '-aes-256-cbc', signed.subarray(at));
  // The outer body is not encrypted: decryptMessage says so and returns (the CLI refuses it); the attachment is opened.
  const { verdict } = await decryptMessage(forward('carol@example.com', inner, { filename: 'x.eml' }), { keys: keysOf(bob), validateSigner });
  const a = only(verdict);
  assert.equal(a.verdict?.status, 'trusted', a.summary);
  assert.equal(a.verdict.encryption?.authenticatedBy, 'signature');
});

test('forwarded NSS (cmsutil) CBC message without a signature: UNAUTH_ENC for the attachment only; opened and flagged when allowed', async () => {
  nss ??= await NssPeer.create(pki, [bob], [bob]);
  const der = await nss.encrypt(content('Meet at noon.'), [bob]);
  const inner = crlf(`From: alice@example.com\nTo: bob@example.com\nSubject: Sealed by Thunderbird\nMIME-Version: 1.0\nContent-Type: application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m\nContent-Transfer-Encoding: base64\nContent-Disposition: attachment; filename=smime.p7m\n\n${der.toString('base64').replace(/.{76}/g, '$&\n')}\n`);
  const outer = encryptMessage(forward('carol@example.com', inner, { filename: 'tb.eml' }), { recipients: [{ certificate: bob.cert }] });
  const { message, verdict } = await decryptMessage(outer, { keys: keysOf(bob), validateSigner });
  assert.equal(verdict.status, 'unsigned');
  assert.equal(verdict.encryption?.authenticatedBy, 'aead', 'the outer message is AES-GCM: released');
  assert.ok(!message.includes(Buffer.from('Meet at noon')));
  const a = only(verdict);
  assert.equal(a.verdict, undefined, 'no verdict, no plaintext');
  assert.equal(a.error?.code, 'UNAUTH_ENC');
  assert.match(a.summary, /^Attached message 2 \("tb\.eml"\) could not be opened \(UNAUTH_ENC\)/);
  assert.ok(verdict.warnings.some((w) => /attached message 2 \("tb\.eml"\) could not be opened \(UNAUTH_ENC\); this message's verdict does not depend on it/.test(w)));

  const allowed = await decryptMessage(outer, { keys: keysOf(bob), validateSigner, allowUnauthenticated: true });
  const b = only(allowed.verdict);
  assert.equal(b.verdict?.encryption?.authenticatedBy, 'none');
  assert.equal(b.verdict.code, 'UNAUTH_ENC');
  assert.match(b.verdict.output.toString('latin1'), /Meet at noon\./);
});

test('a forwarded message encrypted for someone else: NOT_RECIPIENT for it, the outer message decrypts', async () => {
  const inner = opensslEncrypted(carol, '-aes-128-gcm', content('for carol only'));
  const outer = encryptMessage(forward('carol@example.com', inner), { recipients: [{ certificate: bob.cert }] });
  const { verdict } = await decryptMessage(outer, { keys: keysOf(bob), validateSigner });
  assert.equal(verdict.encryption?.authenticatedBy, 'aead');
  assert.equal(only(verdict).error?.code, 'NOT_RECIPIENT');
});

/** A chain: the innermost message signed by alice, forwarded `levels` times. */
function chain(levels: number): Buffer {
  let m = signMessage(plainMail('alice@example.com', 'the original'), { signers: [{ certificate: alice.cert, key: alice.key }] });
  for (let i = 0; i < levels; i++) m = forward('bob@example.com', m, { filename: `level-${levels - i}.eml` });
  return m;
}
function depthOf(v: MessageVerdict): { depth: number; last: AttachedMessageVerdict | undefined } {
  let depth = 0;
  let last: AttachedMessageVerdict | undefined;
  for (let cur: MessageVerdict | undefined = v; cur?.attachedMessages; cur = last?.verdict) {
    last = cur.attachedMessages[0];
    depth++;
  }
  return { depth, last };
}

test('nested forwarding: opened up to limits.maxLayers levels, the next one is cut with LIMIT and its reason', async () => {
  const atLimit = depthOf(await verifyMessage(chain(8), { validateSigner }));
  assert.equal(atLimit.depth, 8);
  assert.equal(atLimit.last?.verdict?.status, 'trusted', atLimit.last?.summary);

  const beyond = await verifyMessage(chain(9), { validateSigner });
  assert.equal(beyond.status, 'unsigned');
  const cut = depthOf(beyond);
  assert.equal(cut.depth, 9);
  assert.equal(cut.last?.verdict, undefined);
  assert.equal(cut.last?.error?.code, 'LIMIT');
  assert.match(cut.last!.summary, /was not opened \(LIMIT\): it is forwarded more than 8 levels deep/);

  // A smaller limit cuts earlier; a chain of 200 costs only the levels opened.
  assert.equal(depthOf(await verifyMessage(chain(3), { validateSigner, limits: { maxLayers: 2 } })).last?.error?.code, 'LIMIT');
  const t = process.cpuUsage();
  const long = depthOf(await verifyMessage(chain(200), { validateSigner }));
  assert.equal(long.depth, 9);
  assert.ok(process.cpuUsage(t).user < 5_000_000, 'bounded work');
});

test('many attached messages: limits.maxLayers x 4 are opened, the others reported not opened', async () => {
  const b = 'many';
  const one = signMessage(plainMail('alice@example.com', 'x'), { signers: [{ certificate: alice.cert, key: alice.key }] }).toString('latin1');
  const parts = Array.from({ length: 34 }, (_, i) => `--${b}\r\nContent-Type: message/rfc822\r\nContent-Disposition: attachment; filename="m${i}.eml"\r\n\r\n${one}\r\n`).join('');
  const m = crlf(`From: bob@example.com\nSubject: digest\nMIME-Version: 1.0\nContent-Type: multipart/digest; boundary="${b}"\n\n`);
  const v = await verifyMessage(Buffer.concat([m, Buffer.from(`${parts}--${b}--\r\n`, 'latin1')]), { validateSigner });
  assert.equal(v.status, 'unsigned');
  assert.equal(v.attachedMessages?.length, 34);
  assert.equal(v.attachedMessages.filter((a) => a.verdict?.status === 'trusted').length, 32);
  assert.deepEqual(v.attachedMessages.slice(32).map((a) => a.error?.code), ['LIMIT', 'LIMIT']);
});

test('Thunderbird\'s nested-sigs.eml (real world): the outer signature is judged alone, as OpenSSL judges it; the forwarded one separately', async () => {
  const path = new URL('./fixtures/thunderbird-nested-sigs.eml', import.meta.url).pathname;
  const bytes = readFileSync(path);
  const v = await verifyMessage(bytes);
  // `openssl cms -verify -noverify` fails this message's outer signature too (content verify error).
  assert.throws(() => execFileSync('openssl', ['cms', '-verify', '-noverify', '-in', path, '-out', '/dev/null'], { stdio: 'ignore' }));
  assert.equal(v.status, 'invalid');
  const a = only(v);
  assert.equal(a.part, '2');
  assert.equal(a.filename, 'nested2.eml');
  assert.ok(a.verdict, a.summary);
  assert.equal(a.verdict.signers.length, 1);
  // Each signer compared with its own message's From.
  assert.equal(v.signers[0]!.identity.from, 'nobody1@example.com');
  assert.equal(a.verdict.signers[0]!.identity.from, 'nobody3@example.com');
});

test('streaming readers: same outer verdict, no attachedMessages, and a warning that they did not look', async () => {
  const forwarded = forward('bob@example.com', opensslSigned(alice, 'alice@example.com', 'streamed'), { filename: 's.eml' });
  const signed = signMessage(forwarded, { signers: [{ certificate: bob.cert, key: bob.key }] });
  const mem = await verifyMessage(signed, { validateSigner });
  const st = await verifyMessageStream((async function* () { yield signed; })(), { validateSigner });
  assert.equal(st.status, mem.status);
  assert.equal(st.code, mem.code);
  assert.equal(mem.attachedMessages?.length, 1);
  assert.equal(st.attachedMessages, undefined);
  assert.ok(st.warnings.some((w) => /does not open .*attached \(forwarded\) messages/.test(w)), st.warnings.join('\n'));

  const sealed = encryptMessage(forwarded, { recipients: [{ certificate: carol.cert }] });
  const dm = await decryptMessage(sealed, { keys: keysOf(carol), validateSigner });
  const ds = await decryptMessageStream((async function* () { yield sealed; })(), { keys: keysOf(carol), validateSigner });
  assert.equal(ds.status, dm.verdict.status);
  assert.equal(dm.verdict.attachedMessages?.length, 1);
  assert.equal(ds.attachedMessages, undefined);
  assert.ok(ds.warnings.some((w) => /does not open .*attached \(forwarded\) messages/.test(w)), ds.warnings.join('\n'));
});

test('decryptAttachedMessages (the gateway\'s forwarding): released attachments replaced by their decrypted form, re-encrypted, and openssl reads them', async () => {
  // Bob forwards an AES-GCM message (openssl) and a CBC message signed inside by alice; carol is the new recipient.
  const gcm = opensslEncrypted(bob, '-aes-256-gcm', content('The door code is 4711.'));
  const signed = opensslSigned(alice, 'alice@example.com', 'Signed, then sealed.');
  const cbcSigned = opensslEncrypted(bob, '-aes-256-cbc', signed.subarray(signed.indexOf('MIME-Version')));
  const b = 'two';
  const outbound = Buffer.concat([
    crlf(`From: bob@example.com\nTo: carol@example.com\nSubject: Fwd: two\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="${b}"\n\n--${b}\nContent-Type: text/plain\n\nBoth attached.\n--${b}\nContent-Type: message/rfc822\nContent-Disposition: attachment; filename="gcm.eml"\n\n`),
    gcm,
    crlf(`\n--${b}\nContent-Type: message/rfc822\nContent-Disposition: attachment; filename="cbc.eml"\n\n`),
    cbcSigned,
    crlf(`\n--${b}--\n`),
  ]);
  const { message, verdict, decrypted } = await decryptAttachedMessages(outbound, { keys: keysOf(bob), validateSigner });
  assert.deepEqual(decrypted, ['2', '3']);
  assert.equal(verdict.status, 'unsigned');
  const text = message.toString('latin1');
  assert.match(text, /^From: bob@example\.com\r\n/);
  assert.match(text, /Content-Disposition: attachment; filename="gcm\.eml"\r\nContent-Transfer-Encoding: 7bit\r\n\r\nTo: bob@example\.com\r\nFrom: alice@example\.com[\s\S]*The door code is 4711\./);
  assert.match(text, /filename="cbc\.eml"[\s\S]*Signed, then sealed\./);
  assert.ok(!message.includes(gcm) && !message.includes(cbcSigned));

  // Re-encrypted for carol; the delivered mail is read by openssl.
  const sealed = encryptMessage(message, { recipients: [{ certificate: carol.cert }] });
  const sealedPath = join(pki.dir, 'reencrypted.eml');
  writeFileSync(sealedPath, sealed);
  const byOpenssl = execFileSync('openssl', ['cms', '-decrypt', '-in', sealedPath, '-recip', carol.certPath, '-inkey', carol.keyPath]).toString('latin1');
  assert.match(byOpenssl, /The door code is 4711\./);
  assert.match(byOpenssl, /Signed, then sealed\./);
  // And the forwarded signed message is still alice's, checked by us after carol decrypts.
  const forCarol = await decryptMessage(sealed, { keys: keysOf(carol), validateSigner });
  assert.equal(forCarol.verdict.attachedMessages?.find((a) => a.part === '3')?.verdict?.status, 'trusted');
});

test('decryptAttachedMessages keeps what may not be released exactly as received: unsigned CBC (NSS), someone else\'s, a failing signature inside', async () => {
  nss ??= await NssPeer.create(pki, [bob], [bob]);
  const der = await nss.encrypt(content('Meet at noon.'), [bob]);
  const tbCbc = crlf(`From: alice@example.com\nTo: bob@example.com\nSubject: tb\nMIME-Version: 1.0\nContent-Type: application/pkcs7-mime; smime-type=enveloped-data\nContent-Transfer-Encoding: base64\n\n${der.toString('base64').replace(/.{76}/g, '$&\n')}\n`);
  const forCarol = opensslEncrypted(carol, '-aes-128-gcm', content('for carol only'));
  const broken = Buffer.from(opensslSigned(alice, 'alice@example.com', 'Price: 100 EUR.').toString('latin1').replace('100 EUR', '900 EUR'), 'latin1');
  const brokenSealed = opensslEncrypted(bob, '-aes-256-gcm', broken.subarray(broken.indexOf('MIME-Version')));
  for (const [name, inner, code] of [['NSS CBC unsigned', tbCbc, 'UNAUTH_ENC'], ['for carol', forCarol, 'NOT_RECIPIENT'], ['failing signature', brokenSealed, undefined]] as const) {
    const outbound = forward('bob@example.com', inner, { filename: 'x.eml' });
    const { message, verdict, decrypted } = await decryptAttachedMessages(outbound, { keys: keysOf(bob), validateSigner });
    assert.deepEqual(decrypted, [], name);
    assert.ok(message.equals(outbound), `${name}: the message unchanged`);
    const a = only(verdict);
    if (code) assert.equal(a.error?.code, code, name);
    else {
      assert.equal(a.verdict?.status, 'invalid', name);
      assert.equal(a.verdict.output.length, 0, `${name}: withheld`);
    }
  }
});
