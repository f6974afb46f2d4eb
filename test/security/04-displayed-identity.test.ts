/**
 * Issue 9 item 4: who the reader thinks sent it ("Johnny, you are fired", Müller
 * et al., USENIX Security 2019). Mallory holds a real certificate from the trusted
 * CA (for mallory@example.com) and signs a message whose From field a mail program
 * shows as alice@example.com. Every case builds the message, signs it for real and
 * checks that no reader path (verifyMessage, verifyMessageStream, and after
 * encryption decryptMessage and decryptMessageStream) calls it trusted: the verdict
 * is valid-untrusted with IDENTITY_MISMATCH, or the message is refused (MALFORMED)
 * when it has two From fields. Each case is signed with and without RFC 9788
 * header protection (the protected From is what is compared when present).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { domainToASCII } from 'node:url';
import { TestPki } from '../helpers/pki.ts';
import { signMessage } from '../../src/smime/sign-message.ts';
import { encryptMessage } from '../../src/smime/encrypt-message.ts';
import { verifyMessage } from '../../src/smime/verify-message.ts';
import { verifyMessageStream } from '../../src/smime/verify-message-stream.ts';
import { createSignerValidator } from '../../src/pki/create-signer-validator.ts';
import { signData } from '../../src/cms/signed-data/sign.ts';
import { issueCertificate } from '../../src/x509/issue.ts';
import { OID } from '../../src/asn1/oids.ts';
import { isKakitomeError } from '../../src/errors.ts';
import { viewVerdict } from '../../src/smime/verdict-view.ts';
import { chunks, encryptWithoutParsing, multipartSigned, readEverywhere as readAll, type Outcome } from './security-kit.ts';

const pki = new TestPki('Kakitome Displayed Identity Root');
after(() => pki.cleanup());
const alice = pki.identity('p256', 'alice');
const mallory = pki.identity('p256', 'mallory');
const bob = pki.identity('p256', 'bob');
const readers = {
  validateSigner: createSignerValidator({ anchors: [pki.caCert], revocation: { mode: 'off' }, fetchCaIssuers: false }),
  keys: [{ key: bob.key, certificate: bob.cert }],
};
const { validateSigner } = readers;

/** A message with the given originator fields (one or more header lines). */
const mail = (originator: string): Buffer =>
  Buffer.from(`${originator}\r\nTo: bob@example.com\r\nSubject: Your contract\r\nDate: Mon, 23 Nov 2026 10:00:00 +0900\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nYou are fired.\r\n`, 'utf8');

/** Every reader path's outcome for a message signed by `signer` (and, encrypted to Bob, decrypted). */
async function readEverywhere(message: Buffer, signer: { cert: typeof alice.cert; key: typeof alice.key }, headerProtection: boolean): Promise<Array<[string, Outcome]>> {
  const signed = signMessage(message, { signers: [{ certificate: signer.cert, key: signer.key }], headerProtection });
  return readAll(signed, encryptMessage(signed, { recipients: [{ certificate: bob.cert }] }), readers);
}

/** The message is never trusted: valid-untrusted with IDENTITY_MISMATCH on every path. */
async function assertMismatch(name: string, message: Buffer, signer = mallory, expectSummary?: RegExp): Promise<void> {
  for (const hp of [false, true]) {
    for (const [path, o] of await readEverywhere(message, signer, hp)) {
      const where = `${name} (${path}, header protection ${hp})`;
      assert.ok('verdict' in o, `${where}: threw ${'error' in o ? o.error : ''}`);
      assert.equal(o.verdict.status, 'valid-untrusted', `${where}: ${o.verdict.status}: ${o.verdict.summary}`);
      assert.equal(o.verdict.code, 'IDENTITY_MISMATCH', `${where}: ${o.verdict.summary}`);
      if (expectSummary) assert.match(o.verdict.summary, expectSummary, where);
    }
  }
}

test('control: Mallory signing as herself is trusted (the checks below are not blanket refusals)', async () => {
  for (const from of ['Mallory <mallory@example.com>', '"Mallory (Sales)" <mallory@example.com>', 'mallory@example.com (Mallory)', '"mallory@example.com" <mallory@example.com>', '=?utf-8?b?5bGx55Sw?= <mallory@example.com>']) {
    for (const [path, o] of await readEverywhere(mail(`From: ${from}`), mallory, false)) {
      assert.ok('verdict' in o && o.verdict.status === 'trusted', `${from} (${path}): ${'verdict' in o ? o.verdict.summary : o.error}`);
    }
  }
});

test('two From fields are refused (MALFORMED): programs show either one', async () => {
  // Kakitome's own writers refuse such a message, so it is built as an attacker's tool would.
  const signers = [{ certificate: mallory.cert, key: mallory.key }];
  for (const originator of [['alice@example.com', 'mallory@example.com'], ['mallory@example.com', 'alice@example.com']]) {
    const fields = originator.map((f): [string, string] => ['From', f]);
    const body = Buffer.from('Content-Type: text/plain\r\n\r\nYou are fired.\r\n');
    // Two From fields outside; or one outside and two in the RFC 9788 protected (signed) header section.
    const protectedPart = Buffer.from(`Content-Type: text/plain; hp="clear"\r\n${fields.map(([n, v]) => `${n}: ${v}\r\n`).join('')}To: bob@example.com\r\n\r\nYou are fired.\r\n`);
    const outside = multipartSigned([...fields, ['To', 'bob@example.com'], ['MIME-Version', '1.0']], body, signData(body, { signers, detached: true }));
    const inside = multipartSigned([['From', 'mallory@example.com'], ['To', 'bob@example.com'], ['MIME-Version', '1.0']], protectedPart, signData(protectedPart, { signers, detached: true }));
    for (const [where, signed] of [['outside', outside], ['protected', inside]] as const) {
      for (const [path, o] of await readAll(signed, encryptWithoutParsing(signed, bob.cert), readers)) {
        assert.deepEqual(o, { error: 'MALFORMED' }, `${originator.join(' + ')} ${where} (${path})`);
      }
    }
  }
  // A second From added outside a message that was signed with one.
  const signed = signMessage(mail('From: mallory@example.com'), { signers });
  const added = Buffer.from(signed.toString('latin1').replace('From: mallory@example.com\r\n', 'From: alice@example.com\r\nFrom: mallory@example.com\r\n'), 'latin1');
  await assert.rejects(verifyMessage(added, { validateSigner }), (e) => isKakitomeError(e, 'MALFORMED'));
  await assert.rejects(verifyMessageStream(chunks(added, 50), { validateSigner }), (e) => isKakitomeError(e, 'MALFORMED'));
  // And Kakitome does not sign or encrypt such a message (its reader would refuse it).
  assert.throws(() => signMessage(mail('From: alice@example.com\r\nFrom: mallory@example.com'), { signers }), (e) => isKakitomeError(e, 'MALFORMED'));
  assert.throws(() => encryptMessage(mail('Sender: a@example.com\r\nFrom: mallory@example.com\r\nSender: b@example.com'), { recipients: [{ certificate: bob.cert }] }), (e) => isKakitomeError(e, 'MALFORMED'));
});

test('a first line "From :" (WSP before the colon, RFC 5322 obsolete syntax) is a second From field, not an mbox separator line', async () => {
  // Postfix, Dovecot and Python's header parsers read "From :" as the From field; an IMAP
  // client then shows alice@example.com while the signature is Mallory's.
  const signers = [{ certificate: mallory.cert, key: mallory.key }];
  const signed = signMessage(mail('From: mallory@example.com'), { signers });
  for (const prefix of ['From : alice@example.com\r\n', 'From \t: alice@example.com\r\n', 'From :alice@example.com\r\n']) {
    const added = Buffer.concat([Buffer.from(prefix), signed]);
    for (const [path, o] of await readAll(added, encryptWithoutParsing(added, bob.cert), readers)) {
      assert.deepEqual(o, { error: 'MALFORMED' }, `${JSON.stringify(prefix)} (${path})`);
    }
  }
  // Control: an mbox separator line ("From " and a sender, no colon after the WSP) is still skipped.
  const mboxLine = Buffer.concat([Buffer.from('From mallory@example.com Mon Dec  7 10:00:00 2026\r\n'), signed]);
  for (const [path, o] of await readAll(mboxLine, encryptWithoutParsing(mboxLine, bob.cert), readers)) {
    assert.ok('verdict' in o && o.verdict.status === 'trusted', `mbox line (${path}): ${'verdict' in o ? o.verdict.summary : o.error}`);
  }
});

test('an encoded-word display name that decodes to <alice@example.com> is parsed as a name, after the structure', async () => {
  // Decoding first turned this into "<alice@example.com> <mallory@example.com>" and lost the name.
  await assertMismatch('encoded <alice@example.com>', mail('From: =?utf-8?q?=3Calice=40example=2Ecom=3E?= <mallory@example.com>'), mallory, /NOT from alice@example\.com/);
  await assertMismatch('encoded name, comma', mail('From: =?utf-8?q?alice=40example=2Ecom=2C?= <mallory@example.com>'));
  await assertMismatch('base64 encoded-word', mail(`From: =?utf-8?b?${Buffer.from('Alice <alice@example.com>').toString('base64')}?= <mallory@example.com>`));
  // Encoded-words inside a quoted string are not RFC 2047, but programs decode them.
  await assertMismatch('encoded-word in quotes', mail('From: "=?utf-8?q?alice=40example=2Ecom?=" <mallory@example.com>'));
});

test('Unicode look-alikes of the address in the display name (NFKC, invisible characters, bidi controls)', async () => {
  const names = [
    ['fullwidth ＠ (UTF-8 header)', '"alice＠example.com"'],
    ['fullwidth ＠ (encoded-word)', `=?utf-8?b?${Buffer.from('alice＠example.com').toString('base64')}?=`],
    ['small ﹫', `=?utf-8?b?${Buffer.from('alice﹫example.com').toString('base64')}?=`],
    ['fullwidth letters', `=?utf-8?b?${Buffer.from('ａｌｉｃｅ＠ｅｘａｍｐｌｅ．ｃｏｍ').toString('base64')}?=`],
    ['fullwidth full stop', `=?utf-8?b?${Buffer.from('alice@example．com').toString('base64')}?=`],
    ['ideographic full stop', `=?utf-8?b?${Buffer.from('alice@example。com').toString('base64')}?=`],
    ['zero-width spaces', `=?utf-8?b?${Buffer.from('alice\u200b@\u200bexample\u200b.com').toString('base64')}?=`],
    ['no-break space before the dot', `=?utf-8?b?${Buffer.from('alice@example\u00a0.com').toString('base64')}?=`],
    ['right-to-left override', `=?utf-8?b?${Buffer.from('\u202emoc.elpmaxe@ecila\u202c').toString('base64')}?=`],
    ['unquoted address as the name', 'alice@example.com'],
  ];
  for (const [what, name] of names) await assertMismatch(what!, mail(`From: ${name} <mallory@example.com>`));
  // Bidi controls anywhere in the field can reorder the name and the address as shown.
  await assertMismatch('isolate around the name', mail(`From: =?utf-8?b?${Buffer.from('\u2067Alice\u2069').toString('base64')}?= <mallory@example.com>`), mallory, /bidirectional/);
});

test('the address in a comment, plain or RFC 2047-encoded, and group syntax in From', async () => {
  await assertMismatch('comment', mail('From: mallory@example.com (alice@example.com)'));
  await assertMismatch('comment before', mail('From: (alice@example.com) mallory@example.com'));
  await assertMismatch('encoded comment', mail('From: mallory@example.com (=?utf-8?q?alice=40example=2Ecom?=)'));
  await assertMismatch('nested comment', mail('From: <mallory@example.com> (Alice (alice@example.com))'));
  await assertMismatch('group named alice', mail('From: alice@example.com: mallory@example.com;'));
});

test('a From field that cannot be read one way only is not trusted', async () => {
  // Two angle addresses, an unclosed quote: programs differ on which address they show.
  await assertMismatch('two angle addresses', mail('From: <alice@example.com> <mallory@example.com>'));
  await assertMismatch('unclosed quote', mail('From: "Alice <alice@example.com> mallory@example.com'));
  await assertMismatch('source route', mail('From: <@example.com:mallory@example.com>'));
});

test('a match on Sender only: the reader sees From, so it is not trusted', async () => {
  await assertMismatch('Sender only', mail('From: alice@example.com\r\nSender: mallory@example.com'), mallory, /only the Sender: the author a reader sees in From \(alice@example\.com\) did not sign it/);
  // The per-signer report says the Sender matched (RFC 8550), and --json shows it.
  const v = await verifyMessage(signMessage(mail('From: alice@example.com\r\nSender: mallory@example.com'), { signers: [{ certificate: mallory.cert, key: mallory.key }] }), { validateSigner });
  assert.deepEqual([v.signers[0]!.identity.status, v.signers[0]!.identity.field, v.signers[0]!.code], ['match', 'Sender', 'IDENTITY_MISMATCH']);
  assert.equal(viewVerdict(v).signers[0]!.identity.field, 'Sender');
  await assertMismatch('Sender only, two authors', mail('From: alice@example.com, carol@example.com\r\nSender: mallory@example.com'), mallory);
  // Alice in From and Mallory as a Sender that is not needed: Alice's own signature is trusted.
  for (const [path, o] of await readEverywhere(mail('From: alice@example.com\r\nSender: mallory@example.com'), alice, true)) {
    assert.ok('verdict' in o && o.verdict.status === 'trusted', `${path}: ${'verdict' in o ? o.verdict.summary : o.error}`);
  }
});

test('an "@" in a quoted local part shows another address', async () => {
  // The attacker controls evil.example, so a CA can issue a certificate for this mailbox.
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const address = '"alice@example.com"@evil.example';
  const cert = issueCertificate({
    subject: { commonName: 'Quoted' },
    publicKey,
    issuer: pki.caCert,
    signingKey: pki.caKey,
    keyUsage: ['digitalSignature'],
    extKeyUsage: [OID.emailProtection],
    emails: [address],
  });
  await assertMismatch('quoted local part', mail(`From: ${address}`), { ...mallory, cert, key: privateKey }, /alice@example\.com/);
});

test('a From domain in letters that look Latin (IDN homograph) is not trusted; other internationalised domains are', async () => {
  // Whoever registers xn--exmple-4nf.com ("exаmple.com", a Cyrillic "а") can have a
  // certificate for its mailboxes: the signature matches the From address, and a mail
  // program shows alice@example.com.
  const certified = (address: string) => {
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const cert = issueCertificate({ subject: { commonName: address }, publicKey, issuer: pki.caCert, signingKey: pki.caKey, keyUsage: ['digitalSignature'], extKeyUsage: [OID.emailProtection], emails: [address] });
    return { ...mallory, cert, key: privateKey };
  };
  const homograph = certified('alice@xn--exmple-4nf.com');
  // (Encrypted by Kakitome's writer, the UTF-8 field becomes an encoded-word, refused for its own reason.)
  await assertMismatch('mixed-script domain (U-label)', mail('From: alice@ex\u0430mple.com'), homograph);
  const signed = signMessage(mail('From: alice@ex\u0430mple.com'), { signers: [{ certificate: homograph.cert, key: homograph.key }], headerProtection: false });
  assert.match((await verifyMessage(signed, { validateSigner })).summary, /shows alice@example\.com/);
  await assertMismatch('mixed-script domain (A-label)', mail('From: Alice <alice@xn--exmple-4nf.com>'), homograph, /alice@example\.com/);
  // A label all in Cyrillic look-alikes: "аррӏе" reads "apple".
  const apple = domainToASCII('\u0430\u0440\u0440\u04cf\u0435.com');
  await assertMismatch('whole-script look-alike', mail(`From: it@${apple}`), certified(`it@${apple}`), /it@apple\.com/);
  // Control: Russian and German domains read as what they are.
  for (const domain of ['\u043f\u0440\u0438\u043c\u0435\u0440.\u0440\u0444', 'm\u00fcller.example']) {
    const signer = certified(`info@${domainToASCII(domain)}`);
    for (const [path, o] of await readEverywhere(mail(`From: info@${domainToASCII(domain)}`), signer, false)) {
      assert.ok('verdict' in o && o.verdict.status === 'trusted', `${domain} (${path}): ${'verdict' in o ? o.verdict.summary : o.error}`);
    }
  }
});

test('an internationalised From (RFC 6532 UTF-8) signed with header protection or encrypted stays an address inside', async () => {
  // The inner copy of a UTF-8 From was an RFC 2047 encoded-word: no address (RFC 2047
  // section 5), so the owner of info@пример.рф could not send trusted mail with Kakitome.
  const domain = '\u043f\u0440\u0438\u043c\u0435\u0440.\u0440\u0444';
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const cert = issueCertificate({ subject: { commonName: 'Info' }, publicKey, issuer: pki.caCert, signingKey: pki.caKey, keyUsage: ['digitalSignature'], extKeyUsage: [OID.emailProtection], emails: [`info@${domainToASCII(domain)}`] });
  // With an encoded-word display name, the encryption's HP-Outer record of the From was
  // two adjacent encoded-words ("山田<info@...>" decoded): a mismatch on every message.
  for (const from of [`info@${domain}`, `=?UTF-8?B?5bGx55Sw?= <info@${domain}>`]) {
    for (const hp of [false, true]) {
      for (const [path, o] of await readEverywhere(mail(`From: ${from}`), { ...mallory, cert, key: privateKey }, hp)) {
        assert.ok('verdict' in o && o.verdict.status === 'trusted', `${from} (${path}), header protection ${hp}: ${'verdict' in o ? o.verdict.summary : o.error}`);
        assert.deepEqual(o.verdict.warnings.filter((w) => /protected header mismatch/i.test(w)), [], `${from} (${path}), header protection ${hp}`);
      }
    }
  }
});
