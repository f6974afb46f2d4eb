/**
 * Issue 9 item 6: strict where the standards are strict.
 * - A SignedData whose encapsulated content type is not id-data (an RFC 3161
 *   timestamp token, an RFC 2634 receipt) is not a signature on a message: the
 *   verdict is 'invalid' with MALFORMED (RFC 8551 section 3.1).
 * - A signing time later than now plus the clock skew (5 minutes by default) is
 *   ATTR_INVALID.
 * - A multipart/signed without its close delimiter is MALFORMED.
 * - A boundary, protocol or smime-type parameter given twice is MALFORMED.
 * - A multipart in a transfer encoding (base64, quoted-printable...) is MALFORMED when
 *   signed or encrypted (unsigned mail is read as before; the writers refuse it).
 * - Without RFC 9788 header protection the verdict names the header fields the
 *   signature does not cover, in the library verdict and in the CLI's output.
 * Each case is read by verifyMessage and verifyMessageStream (and, encrypted to
 * Bob, by decryptMessage and decryptMessageStream), which must agree.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { TestPki } from '../helpers/pki.ts';
import { runCli } from '../cli/run-cli.ts';
import { signMessage } from '../../src/smime/sign-message.ts';
import { verifyMessage } from '../../src/smime/verify-message.ts';
import { createSignerValidator } from '../../src/pki/create-signer-validator.ts';
import { signData } from '../../src/cms/signed-data/sign.ts';
import { buildEntity, buildMultipartBody } from '../../src/mime/build-entity.ts';
import { PassThrough } from 'node:stream';
import type { KakitomeError } from '../../src/errors.ts';
import { verifyMessageStream } from '../../src/smime/verify-message-stream.ts';
import { encryptMessage } from '../../src/smime/encrypt-message.ts';
import { signMessageStream } from '../../src/smime/sign-message-stream.ts';
import { chunks, encryptWithoutParsing, multipartSigned, opaqueSigned, outcome, readEverywhere as readAll, type Outcome } from './security-kit.ts';
import { decryptMessage } from '../../src/smime/decrypt-message.ts';
import { decryptMessageStream } from '../../src/smime/decrypt-message-stream.ts';

const pki = new TestPki('Kakitome Strict Standards Root');
after(() => pki.cleanup());
const mallory = pki.identity('p256', 'mallory');
const bob = pki.identity('p256', 'bob');
const signers = [{ certificate: mallory.cert, key: mallory.key }];
const validateSigner = createSignerValidator({ anchors: [pki.caCert], revocation: { mode: 'off' }, fetchCaIssuers: false });
const bobKeys = [{ key: bob.key, certificate: bob.cert }];
const TST_INFO = '1.2.840.113549.1.9.16.1.4';
const RECEIPT = '1.2.840.113549.1.9.16.1.1';

const headers: Array<[string, string]> = [['From', 'mallory@example.com'], ['To', 'bob@example.com'], ['Subject', 'Invoice'], ['Date', 'Mon, 23 Nov 2026 10:00:00 +0900'], ['MIME-Version', '1.0']];
const mail = Buffer.from(`${headers.map(([n, v]) => `${n}: ${v}`).join('\r\n')}\r\nContent-Type: text/plain\r\n\r\nPay 100 yen.\r\n`);
const part = Buffer.from('Content-Type: text/plain\r\n\r\nPay 100 yen.\r\n');

/** Every reader's outcome: the signed message as it is, and encrypted to Bob. */
const readEverywhere = (signed: Buffer, options: { clockSkewMs?: number } = {}): Promise<Array<[string, Outcome]>> =>
  readAll(signed, encryptWithoutParsing(signed, bob.cert), { validateSigner, keys: bobKeys, ...options });

async function assertVerdict(what: string, signed: Buffer, status: string, code: string | undefined, options: { clockSkewMs?: number } = {}, summary?: RegExp): Promise<void> {
  for (const [path, o] of await readEverywhere(signed, options)) {
    assert.ok('verdict' in o, `${what} (${path}) threw ${'error' in o ? o.error : ''}`);
    assert.equal(o.verdict.status, status, `${what} (${path}): ${o.verdict.summary}`);
    assert.equal(o.verdict.code, code, `${what} (${path}): ${o.verdict.summary}`);
    if (summary) assert.match(o.verdict.summary, summary, `${what} (${path})`);
  }
}

/** A multipart/signed whose signature is a SignedData of `contentType` over the part (detached). */
const detachedOfType = (contentType: string): Buffer => multipartSigned(headers, part, signData(part, { signers, detached: true, contentType }));

/** An application/pkcs7-mime signed-data whose eContent is the part, typed `contentType`. */
const opaqueOfType = (contentType: string): Buffer => opaqueSigned(headers, signData(part, { signers, contentType }));

test('control: the same constructions with id-data are trusted', async () => {
  await assertVerdict('detached id-data', detachedOfType('1.2.840.113549.1.7.1'), 'trusted', undefined);
  await assertVerdict('opaque id-data', opaqueOfType('1.2.840.113549.1.7.1'), 'trusted', undefined);
});

test('a timestamp token or a receipt is not a signed message: invalid, MALFORMED', async () => {
  for (const [name, oid] of [['timestamp token', TST_INFO], ['receipt', RECEIPT], ['unknown type', '1.2.3.4']] as const) {
    await assertVerdict(`detached ${name}`, detachedOfType(oid), 'invalid', 'MALFORMED', {}, /not a message/);
    await assertVerdict(`opaque ${name}`, opaqueOfType(oid), 'invalid', 'MALFORMED', {}, /not a message/);
  }
  // Inside unsigned content it signs nothing either: the part is not counted as signed.
  const mixed = buildEntity([...headers, ['Content-Type', 'multipart/mixed; boundary="m1"']], buildMultipartBody('m1', [part, (() => {
    const whole = detachedOfType(TST_INFO);
    return whole.subarray(whole.indexOf('Content-Type: multipart/signed'));
  })()]));
  const v = await verifyMessage(mixed, { validateSigner });
  assert.equal(v.status, 'unsigned', v.summary);
  assert.ok(v.warnings.some((w) => /could not be read \(MALFORMED\).*timestamp token/.test(w)), v.warnings.join('\n'));
});

test('a signing time after now plus the clock skew is ATTR_INVALID; within the skew it is trusted', async () => {
  const at = (ms: number) => signMessage(mail, { signers, now: new Date(Date.now() + ms) });
  await assertVerdict('one hour ahead', at(3_600_000), 'invalid', 'ATTR_INVALID', {}, /signing time .* is after/);
  await assertVerdict('one year ahead', at(365 * 86_400_000), 'invalid', 'ATTR_INVALID');
  await assertVerdict('one minute ahead', at(60_000), 'trusted', undefined);
  // The skew is an option: none at all refuses the minute, two hours accept the hour.
  await assertVerdict('one minute ahead, no skew', at(60_000), 'invalid', 'ATTR_INVALID', { clockSkewMs: 0 });
  await assertVerdict('one hour ahead, two hours of skew', at(3_600_000), 'trusted', undefined, { clockSkewMs: 7_200_000 });
});

test('a multipart/signed without its close delimiter is MALFORMED', async () => {
  for (const hp of [true, false]) {
    const signed = signMessage(mail, { signers, headerProtection: hp }).toString('latin1');
    const boundary = /boundary="?([^";\r\n]+)"?/.exec(signed)![1]!;
    const close = `--${boundary}--`;
    assert.ok(signed.includes(close));
    const variants = [
      signed.slice(0, signed.lastIndexOf(close)),
      signed.slice(0, signed.lastIndexOf(close)).trimEnd(),
      signed.replace(close, `--${boundary}-`),
    ];
    for (const [i, text] of variants.entries()) {
      for (const [path, o] of await readEverywhere(Buffer.from(text, 'latin1'))) assert.deepEqual(o, { error: 'MALFORMED' }, `variant ${i}, hp ${hp} (${path})`);
    }
    // Control: the complete message is trusted.
    await assertVerdict('closed', Buffer.from(signed, 'latin1'), 'trusted', undefined);
  }
});

test('a structural Content-Type parameter given twice (plain and RFC 2231 forms, or plain twice) is MALFORMED', async () => {
  // RFC 2045 section 5.1 allows a parameter once. Readers disagree on which one counts:
  // libmime and Thunderbird take the RFC 2231 form over the plain one, Python's email
  // package and OpenSSL the plain one. Here a reader that takes "zzz" sees only the
  // part Mallory put in the preamble, which no signature covers.
  const signed = signMessage(mail, { signers }).toString('latin1');
  const real = /boundary="([^"]+)"/.exec(signed)![1]!;
  const hidden = '--zzz\r\nContent-Type: text/plain\r\n\r\nPay 1,000,000 yen to Mallory.\r\n--zzz--\r\n';
  const withHidden = (params: string): Buffer => Buffer.from(signed.replace(`boundary="${real}"`, params).replace('This is a cryptographically signed message in MIME format.\r\n', hidden), 'latin1');
  assert.ok(withHidden('boundary="zzz"').includes('Pay 1,000,000 yen'));
  const half = real.length >> 1;
  await assertVerdict('control: one boundary in RFC 2231 continuations', withHidden(`boundary*0="${real.slice(0, half)}"; boundary*1="${real.slice(half)}"`), 'trusted', undefined);
  for (const params of [
    `boundary="zzz"; boundary*=''${real}`,
    `boundary*=''${real}; boundary="zzz"`,
    `boundary="${real}"; boundary="zzz"`,
    `boundary="${real}"; BOUNDARY=zzz`,
    `boundary="zzz"; boundary*0="${real.slice(0, half)}"; boundary*1="${real.slice(half)}"`,
    `boundary*0="${real}"; boundary*0="zzz"`,
    `boundary="${real}"; protocol*=''application/x-other`,
  ]) {
    for (const [path, o] of await readEverywhere(withHidden(params))) assert.deepEqual(o, { error: 'MALFORMED' }, `${params} (${path})`);
  }
  // The writers refuse it too (what Kakitome signs, its readers read).
  assert.throws(() => signMessage(Buffer.from('From: mallory@example.com\r\nContent-Type: multipart/mixed; boundary="a"; boundary*=\'\'b\r\n\r\n--a\r\n\r\nx\r\n--a--\r\n'), { signers }), /MALFORMED|Malformed/);
});

test('without header protection the verdict names the header fields the signature does not cover', async () => {
  const unprotected = signMessage(mail, { signers, headerProtection: false });
  for (const [path, o] of await readEverywhere(unprotected)) {
    assert.ok('verdict' in o && o.verdict.status === 'trusted', path);
    assert.deepEqual(o.verdict.unsignedHeaders, ['From', 'To', 'Subject', 'Date'], path);
    assert.ok(o.verdict.warnings.some((w) => /not the header fields From, To, Subject, Date/.test(w)), `${path}: ${o.verdict.warnings.join('\n')}`);
  }
  const protectedMail = signMessage(mail, { signers });
  for (const [path, o] of await readEverywhere(protectedMail)) {
    assert.ok('verdict' in o && o.verdict.status === 'trusted', path);
    assert.equal(o.verdict.unsignedHeaders, undefined, path);
  }

  // The CLI shows it in --json and in the human report.
  const json = await runCli(['verify', '--ca', pki.caPath, '--revocation', 'off', '--json'], { input: unprotected });
  assert.equal(json.status, 0, json.stderr);
  const view = JSON.parse(json.stdout.toString('utf8'));
  assert.deepEqual(view.unsignedHeaders, ['From', 'To', 'Subject', 'Date']);
  assert.ok(view.warnings.some((w: string) => /not the header fields From, To, Subject, Date/.test(w)));
  const human = await runCli(['verify', '--ca', pki.caPath, '--revocation', 'off'], { input: unprotected });
  assert.equal(human.status, 0, human.stderr);
  assert.match(human.stderr, /warning: The signature covers the message body but not the header fields From, To, Subject, Date/);
  const covered = await runCli(['verify', '--ca', pki.caPath, '--revocation', 'off', '--json'], { input: protectedMail });
  assert.equal(JSON.parse(covered.stdout.toString('utf8')).unsignedHeaders, undefined);
});

test('a multipart in a Content-Transfer-Encoding other than 7bit, 8bit or binary is MALFORMED where it is signed or encrypted', async () => {
  // RFC 2045 section 6.4: a multipart is never encoded; its parts are. One that says it is has two
  // readings (Python's email package ignores the field and records a defect, a reader that decodes
  // the body as base64 or quoted-printable shows other bytes than the parts verified here).
  const signed = signMessage(mail, { signers }).toString('latin1');
  const outer = (cte: string): Buffer => Buffer.from(signed.replace('Content-Type: multipart/signed', `Content-Transfer-Encoding: ${cte}\r\nContent-Type: multipart/signed`), 'latin1');
  const mixed = (cte: string): Buffer => Buffer.from(`Content-Type: multipart/mixed; boundary="i1"\r\nContent-Transfer-Encoding: ${cte}\r\n\r\n--i1\r\nContent-Type: text/plain\r\n\r\nPay 100 yen.\r\n--i1--\r\n`);
  const innerMultipart = (cte: string): Buffer => multipartSigned(headers, mixed(cte), signData(mixed(cte), { signers, detached: true }));
  const opaqueMultipart = (cte: string): Buffer => opaqueSigned(headers, signData(mixed(cte), { signers }));
  for (const cte of ['base64', 'quoted-printable', 'Base64 (encoded)', 'x-uuencode']) {
    for (const [what, message] of [['multipart/signed', outer(cte)], ['the signed multipart/mixed', innerMultipart(cte)], ['the opaque-signed multipart/mixed', opaqueMultipart(cte)]] as const) {
      for (const [path, o] of await readEverywhere(message)) assert.deepEqual(o, { error: 'MALFORMED' }, `${what} in ${cte} (${path})`);
    }
  }
  for (const cte of ['7bit', '8bit', 'binary', '7BIT (plain)']) {
    await assertVerdict(`multipart/signed in ${cte}`, outer(cte), 'trusted', undefined);
    await assertVerdict(`signed multipart/mixed in ${cte}`, innerMultipart(cte), 'trusted', undefined);
    await assertVerdict(`opaque-signed multipart/mixed in ${cte}`, opaqueMultipart(cte), 'trusted', undefined);
  }
  // A level deeper in the signed content: refused on every path too (the streaming ones walk the signed bytes as they hash them).
  const deep = (cte: string): Buffer => Buffer.from(`Content-Type: multipart/mixed; boundary="i1"\r\n\r\n--i1\r\nContent-Type: multipart/alternative; boundary="i2"\r\nContent-Transfer-Encoding: ${cte}\r\n\r\n--i2\r\nContent-Type: text/plain\r\n\r\nPay 100 yen.\r\n--i2--\r\n--i1--\r\n`);
  const deepSigned = (cte: string): Buffer => multipartSigned(headers, deep(cte), signData(deep(cte), { signers, detached: true }));
  for (const [path, o] of await readEverywhere(deepSigned('quoted-printable'))) assert.deepEqual(o, { error: 'MALFORMED' }, `a multipart/alternative in quoted-printable inside the signed multipart/mixed (${path})`);
  await assertVerdict('a multipart/alternative in 7bit inside the signed multipart/mixed', deepSigned('7bit'), 'trusted', undefined);
  // A signed part inside unsigned content vouches for nothing then (it could not be read).
  const partial = buildEntity([...headers, ['Content-Type', 'multipart/mixed; boundary="m1"']], buildMultipartBody('m1', [part, (() => {
    const whole = innerMultipart('base64');
    return whole.subarray(whole.indexOf('Content-Type: multipart/signed'));
  })()]));
  const pv = await verifyMessage(partial, { validateSigner });
  assert.equal(pv.status, 'unsigned', pv.summary);
  assert.ok(pv.warnings.some((w) => /could not be read \(MALFORMED\).*RFC 2045 section 6\.4/.test(w)), pv.warnings.join('\n'));
});

test('unsigned mail with a multipart in base64 is read as before (unsigned); the writers refuse to sign or encrypt it, saying what to do', async () => {
  const unsigned = Buffer.from(`${headers.map(([n, v]) => `${n}: ${v}`).join('\r\n')}\r\nContent-Type: multipart/mixed; boundary="a"\r\nContent-Transfer-Encoding: base64\r\n\r\n--a\r\nContent-Type: text/plain\r\n\r\nPay 100 yen.\r\n--a--\r\n`);
  const v = await verifyMessage(unsigned, { validateSigner });
  assert.equal(v.status, 'unsigned', v.summary);
  const vs = await verifyMessageStream(chunks(unsigned, 13), { validateSigner, output: new PassThrough().resume() });
  assert.equal(vs.status, 'unsigned', vs.summary);
  const cli = await runCli(['verify', '--ca', pki.caPath, '--revocation', 'off', '--json'], { input: unsigned });
  assert.equal(JSON.parse(cli.stdout.toString('utf8')).status, 'unsigned', cli.stderr);
  const remedy = /RFC 2045 section 6\.4.*remove the field from the multipart/;
  assert.throws(() => signMessage(unsigned, { signers }), (e: KakitomeError) => e.code === 'MALFORMED' && remedy.test(e.message));
  assert.throws(() => encryptMessage(unsigned, { recipients: [{ certificate: bob.cert }] }), (e: KakitomeError) => e.code === 'MALFORMED' && remedy.test(e.message));
  await assert.rejects(signMessageStream(chunks(unsigned, 13), new PassThrough().resume(), { signers }), (e: KakitomeError) => e.code === 'MALFORMED' && remedy.test(e.message));
  const signCli = await runCli(['sign', '--cert', mallory.certPath, '--key', mallory.keyPath], { input: unsigned });
  assert.notEqual(signCli.status, 0);
  assert.match(signCli.stderr, /RFC 2045 section 6\.4.*remove the field from the multipart/);
  assert.equal(signCli.stdout.length, 0);
});

test('encrypted, unsigned: a multipart in a transfer encoding below the decrypted content\'s top entity is MALFORMED on both decrypt paths, as on the same bytes in 7bit both read it alike', async () => {
  const deepMail = (cte: string): Buffer => Buffer.from(`${headers.map(([n, v]) => `${n}: ${v}`).join('\r\n')}\r\nContent-Type: multipart/mixed; boundary="i1"\r\n\r\n--i1\r\nContent-Type: multipart/alternative; boundary="i2"\r\nContent-Transfer-Encoding: ${cte}\r\n\r\n--i2\r\nContent-Type: text/plain\r\n\r\nPay 100 yen.\r\n--i2--\r\n--i1--\r\n`);
  const both = async (encrypted: Buffer): Promise<Array<[string, Outcome, Buffer]>> => {
    const streamed: Buffer[] = [];
    const out = new PassThrough().on('data', (c: Buffer) => streamed.push(c));
    let buffered: Buffer = Buffer.alloc(0);
    return [
      ['decryptMessage', await outcome(async () => {
        const r = await decryptMessage(encrypted, { validateSigner, keys: bobKeys });
        buffered = r.message;
        return r.verdict;
      }), buffered],
      ['decryptMessageStream', await outcome(() => decryptMessageStream(chunks(encrypted, 89), { validateSigner, keys: bobKeys, output: out })), Buffer.concat(streamed)],
    ];
  };
  for (const cte of ['quoted-printable', 'base64']) {
    const encrypted = encryptWithoutParsing(deepMail(cte), bob.cert);
    for (const [path, o, written] of await both(encrypted)) {
      assert.deepEqual(o, { error: 'MALFORMED' }, `${cte} (${path})`);
      assert.equal(written.length, 0, `nothing written (${path})`);
    }
  }
  const fine = await both(encryptWithoutParsing(deepMail('7bit'), bob.cert));
  const [[, b], [, s]] = fine as [[string, Outcome, Buffer], [string, Outcome, Buffer]];
  assert.ok('verdict' in b && 'verdict' in s, JSON.stringify([b, s]));
  assert.equal(s.verdict.status, b.verdict.status);
  assert.equal(s.verdict.code, b.verdict.code);
});
