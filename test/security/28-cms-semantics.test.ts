/**
 * Session 15: CMS semantics an attacker controls (RFC 5652, 8551, 5083/5084), read by
 * every reader path (verifyMessage, verifyMessageStream, and the same message
 * encrypted to Bob through decryptMessage and decryptMessageStream), which must agree,
 * and by `kakitome verify --json` for the cases that found defects.
 *
 * Messages are built here the way an attacker's tool builds them: SignerInfos and
 * SignedData assembled field by field (Kakitome's signer refuses to write these), and
 * envelopes from encryptData edited afterwards.
 *
 * Defects found and fixed (docs/security.md section 23):
 * - a signed layer inside the signed content (a signed message signed again) was not
 *   opened by the streaming readers, which said 'trusted' on the outer signature alone
 *   where verifyMessage/decryptMessage said IDENTITY_MISMATCH, or 'invalid' for a
 *   forged inner signature;
 * - the random stand-in content key (RFC 3218 2.3.2) was drawn only when the key layer
 *   failed: an RSA PKCS#1 v1.5 failure took 12-22 µs longer than a content failure.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, sign as cryptoSign, generateKeyPairSync, randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { TestPki, type Identity } from '../helpers/pki.ts';
import { runCli } from '../cli/run-cli.ts';
import { createSignerValidator } from '../../src/pki/create-signer-validator.ts';
import { verifyMessageStream } from '../../src/smime/verify-message-stream.ts';
import { decryptMessage } from '../../src/smime/decrypt-message.ts';
import { decryptMessageStream } from '../../src/smime/decrypt-message-stream.ts';
import { encryptData } from '../../src/cms/enveloped-data/encrypt.ts';
import { parseEnvelopeFromContentInfo } from '../../src/cms/enveloped-data/parse.ts';
import { matchRecipients, openRecipient } from '../../src/cms/enveloped-data/recover-content-key.ts';
import { encodeIdentifier, identifierFor } from '../../src/cms/identifier.ts';
import { issueCertificate } from '../../src/x509/issue.ts';
import { decode } from '../../src/asn1/ber.ts';
import { sequence, tlv, oid, octetString, integer, explicit, implicit, time, retag, sortDer } from '../../src/asn1/der.ts';
import { OID } from '../../src/asn1/oids.ts';
import { buildEntity, buildMultipartBody } from '../../src/mime/build-entity.ts';
import { isKakitomeError } from '../../src/errors.ts';
import { seededRandom } from '../helpers/seeded-random.ts';
import { chunks, encryptWithoutParsing, multipartSigned, opaqueSigned, outcome, readEverywhere, type Outcome } from './security-kit.ts';

const pki = new TestPki('Kakitome CMS Semantics Root');
after(() => pki.cleanup());
const alice = pki.identity('p256', 'alice');
const mallory = pki.identity('p256', 'mallory');
const bob = pki.identity('p256', 'bob');
const carol = pki.identity('rsa2048', 'carol');
const validateSigner = createSignerValidator({ anchors: [pki.caCert], revocation: { mode: 'off' }, fetchCaIssuers: false });
const bobKeys = [{ key: bob.key, certificate: bob.cert }];

const headers = (from: string): Array<[string, string]> => [['From', from], ['To', 'bob@example.com'], ['Subject', 'Invoice'], ['Date', 'Mon, 23 Nov 2026 10:00:00 +0900'], ['MIME-Version', '1.0']];
const part = Buffer.from('Content-Type: text/plain\r\n\r\nPay 100 yen.\r\n');
const other = Buffer.from('Content-Type: text/plain\r\n\r\nPay 9999 yen to Mallory.\r\n');

// ------------------------------------------------------------- an attacker's SignedData

const ECDSA_SHA256 = '1.2.840.10045.4.3.2';
const attr = (type: string, ...values: Uint8Array[]): Buffer => sequence(oid(type), tlv(0x31, ...values));
const digestOf = (b: Buffer): Buffer => createHash('sha256').update(b).digest();
/** contentType, messageDigest and signingTime attributes as an honest signer writes them over `content`. */
const honest = (content: Buffer, eContentType = OID.data) => ({
  ct: attr(OID.contentType, oid(eContentType)),
  md: attr(OID.messageDigest, octetString(digestOf(content))),
  st: attr(OID.signingTime, time(new Date(Date.now() - 60_000))),
});
const a = honest(part);

interface RawSigner {
  /** Whose certificate the sid names. */
  id: Identity;
  /** Whose key signs (default: id's). */
  key?: Identity;
  sid?: 'issuerAndSerialNumber' | 'subjectKeyIdentifier';
  version?: number;
  /** Signed attributes, written in DER SET OF order unless `unsorted`. */
  attrs: Buffer[];
  unsorted?: boolean;
  unsigned?: Buffer[];
}

function signerInfo(s: RawSigner): Buffer {
  const kind = s.sid ?? 'issuerAndSerialNumber';
  const set = tlv(0x31, ...(s.unsorted ? s.attrs : sortDer(s.attrs)));
  const signature = cryptoSign('sha256', set, (s.key ?? s.id).key);
  return sequence(
    integer(s.version ?? (kind === 'issuerAndSerialNumber' ? 1 : 3)),
    encodeIdentifier(identifierFor(s.id.cert, kind)),
    sequence(oid(OID.sha256)),
    retag(set, 0xa0),
    sequence(oid(ECDSA_SHA256)),
    octetString(signature),
    ...(s.unsigned ? [retag(tlv(0x31, ...s.unsigned), 0xa1)] : []),
  );
}

function signedData(o: { signers: RawSigner[]; certs?: Uint8Array[]; content?: Buffer; digestOids?: string[] }): Buffer {
  const certs = o.certs ?? [...new Set(o.signers.map((s) => s.id.cert.der))];
  const encap = sequence(oid(OID.data), ...(o.content ? [explicit(0, octetString(o.content))] : []));
  const sd = sequence(integer(1), tlv(0x31, ...(o.digestOids ?? [OID.sha256]).map((d) => sequence(oid(d)))), encap, implicit(0, true, ...certs), tlv(0x31, ...o.signers.map(signerInfo)));
  return sequence(oid(OID.signedData), explicit(0, sd));
}

const detached = (signers: RawSigner[], o: { certs?: Uint8Array[]; content?: Buffer; digestOids?: string[]; from?: string } = {}): Buffer =>
  multipartSigned(headers(o.from ?? 'alice@example.com'), part, signedData({ signers, ...o }));
const opaque = (signers: RawSigner[], content: Buffer | undefined, from = 'alice@example.com'): Buffer =>
  opaqueSigned(headers(from), signedData({ signers, ...(content ? { content } : {}) }));

/** A multipart/signed of `content` with boundary `boundary` (to go inside another multipart/signed, whose boundary is b1). */
const signedWithBoundary = (content: Buffer, signers: RawSigner[], boundary: string): Buffer =>
  Buffer.from(multipartSigned([], content, signedData({ signers })).toString('latin1').replaceAll('"b1"', `"${boundary}"`).replaceAll('--b1', `--${boundary}`), 'latin1');
const innerDetached = (signers: RawSigner[]): Buffer => signedWithBoundary(part, signers, 'b2');
/** `inner` (an entity) signed again by `outer`, detached, under From `from`. */
function signedAgain(inner: Buffer, outer: Identity, from: string): Buffer {
  const s = honest(inner);
  return multipartSigned(headers(from), inner, signedData({ signers: [{ id: outer, attrs: [s.ct, s.md, s.st] }] }));
}

const show = (o: Outcome): string => ('error' in o ? `throws ${o.error}` : `${o.verdict.status}${o.verdict.code ? ` ${o.verdict.code}` : ''}`);

/** Every reader path gives `expected` ('trusted', 'invalid ATTR_INVALID', 'throws MALFORMED'...). */
async function assertEverywhere(what: string, message: Buffer, expected: string): Promise<void> {
  const results = await readEverywhere(message, encryptWithoutParsing(message, bob.cert), { validateSigner, keys: bobKeys });
  for (const [path, o] of results) assert.equal(show(o), expected, `${what}: ${path}`);
}

// ------------------------------------------------------------- signatures

test('signed attributes: messageDigest, contentType, signingTime, empty sets (every reader path agrees)', async () => {
  const mdOther = attr(OID.messageDigest, octetString(Buffer.alloc(32, 7)));
  const cases: Array<[string, Buffer, string]> = [
    ['control', detached([{ id: alice, attrs: [a.ct, a.md, a.st] }]), 'trusted'],
    ['messageDigest missing', detached([{ id: alice, attrs: [a.ct, a.st] }]), 'invalid ATTR_INVALID'],
    ['messageDigest with two values, the first right', detached([{ id: alice, attrs: [a.ct, attr(OID.messageDigest, octetString(digestOf(part)), octetString(Buffer.alloc(32, 7))), a.st] }]), 'invalid ATTR_INVALID'],
    ['messageDigest twice', detached([{ id: alice, attrs: [a.ct, a.md, mdOther, a.st] }]), 'invalid ATTR_INVALID'],
    ['messageDigest twice, unsorted', detached([{ id: alice, attrs: [a.ct, a.md, mdOther, a.st], unsorted: true }]), 'invalid ATTR_INVALID'],
    ['contentType missing', detached([{ id: alice, attrs: [a.md, a.st] }]), 'invalid ATTR_INVALID'],
    ['contentType not eContentType', detached([{ id: alice, attrs: [attr(OID.contentType, oid(OID.signedData)), a.md, a.st] }]), 'invalid ATTR_INVALID'],
    ['signingTime twice', detached([{ id: alice, attrs: [a.ct, a.md, a.st, attr(OID.signingTime, time(new Date(Date.now() - 3_600_000)))] }]), 'invalid ATTR_INVALID'],
    ['signingTime with two values', detached([{ id: alice, attrs: [a.ct, a.md, attr(OID.signingTime, time(new Date(Date.now() - 60_000)), time(new Date(Date.now() - 3_600_000)))] }]), 'invalid ATTR_INVALID'],
    ['SMIMECapabilities with an empty SET', detached([{ id: alice, attrs: [a.ct, a.md, a.st, attr(OID.smimeCapabilities)] }]), 'invalid ATTR_INVALID'],
    ['an unknown attribute with an empty SET', detached([{ id: alice, attrs: [a.ct, a.md, a.st, attr('1.2.3.4.5')] }]), 'invalid ATTR_INVALID'],
    ['an unsigned attribute with an empty SET', detached([{ id: alice, attrs: [a.ct, a.md, a.st], unsigned: [attr('1.2.3.4')] }]), 'invalid ATTR_INVALID'],
    // Unsigned attributes claim nothing: a forged countersignature is reported invalid beside a trusted signer, a garbage timestamp is not used.
    ['a forged countersignature', detached([{ id: alice, attrs: [a.ct, a.md, a.st], unsigned: [attr(OID.counterSignature, signerInfo({ id: alice, key: mallory, attrs: [honest(Buffer.from('x')).md] }))] }]), 'trusted'],
    ['a garbage signature timestamp', detached([{ id: alice, attrs: [a.ct, a.md, a.st], unsigned: [attr(OID.signatureTimeStampToken, sequence(oid(OID.signedData)))] }]), 'trusted'],
  ];
  for (const [what, message, expected] of cases) await assertEverywhere(what, message, expected);
});

test('signer identification: sid forms, versions, digestAlgorithms, a substituted certificate with the same issuer and serial', async () => {
  // Mallory's key in a certificate claiming Alice's issuer and serial, signed by a key that is not the CA's.
  const forged = issueCertificate({ subject: { commonName: 'Test alice', emailAddress: 'alice@example.com' }, publicKey: mallory.cert.publicKey, issuer: pki.caCert, signingKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey, serial: alice.cert.serial, keyUsage: ['digitalSignature'], extKeyUsage: [OID.emailProtection], emails: ['alice@example.com'] });
  const cases: Array<[string, Buffer, string]> = [
    ['subjectKeyIdentifier sid', detached([{ id: alice, sid: 'subjectKeyIdentifier', attrs: [a.ct, a.md, a.st] }]), 'trusted'],
    ['version 3 with issuerAndSerialNumber', detached([{ id: alice, version: 3, attrs: [a.ct, a.md, a.st] }]), 'throws MALFORMED'],
    ['the signer digest not in digestAlgorithms', detached([{ id: alice, attrs: [a.ct, a.md, a.st] }], { digestOids: [OID.sha384] }), 'trusted'],
    ['digestAlgorithms empty', detached([{ id: alice, attrs: [a.ct, a.md, a.st] }], { digestOids: [] }), 'trusted'],
    // The certificate the signature verifies with is the one path-validated: the substitute fails the chain.
    ['substitute first, Mallory signs', detached([{ id: alice, key: mallory, attrs: [a.ct, a.md, a.st] }], { certs: [forged.der, alice.cert.der] }), 'valid-untrusted CERT_UNTRUSTED'],
    ['substitute second, Mallory signs', detached([{ id: alice, key: mallory, attrs: [a.ct, a.md, a.st] }], { certs: [alice.cert.der, forged.der] }), 'invalid BAD_SIG'],
    // QUIRK q23 (docs/interop.md): the first certificate named is used; NSS and gpgsm try the next one.
    ['substitute first, Alice signs', detached([{ id: alice, attrs: [a.ct, a.md, a.st] }], { certs: [forged.der, alice.cert.der] }), 'invalid BAD_SIG'],
  ];
  for (const [what, message, expected] of cases) await assertEverywhere(what, message, expected);
});

test('several signers: every signer must be valid and be the From address', async () => {
  const cases: Array<[string, Buffer, string]> = [
    ['one valid, one with a wrong digest', detached([{ id: alice, attrs: [a.ct, a.md, a.st] }, { id: mallory, attrs: [a.ct, attr(OID.messageDigest, octetString(Buffer.alloc(32, 7))), a.st] }]), 'invalid DIGEST_MISMATCH'],
    ['Alice and Mallory, From Alice', detached([{ id: alice, attrs: [a.ct, a.md, a.st] }, { id: mallory, attrs: [a.ct, a.md, a.st] }]), 'valid-untrusted IDENTITY_MISMATCH'],
    ['Mallory alone, From Alice', detached([{ id: mallory, attrs: [a.ct, a.md, a.st] }]), 'valid-untrusted IDENTITY_MISMATCH'],
    ['Alice twice, by issuer and serial and by key id', detached([{ id: alice, attrs: [a.ct, a.md, a.st] }, { id: alice, sid: 'subjectKeyIdentifier', attrs: [a.ct, a.md, a.st] }]), 'trusted'],
  ];
  for (const [what, message, expected] of cases) await assertEverywhere(what, message, expected);
});

test('encapsulated content: in a detached signature, missing from an opaque one', async () => {
  const o = honest(other);
  const cases: Array<[string, Buffer, string]> = [
    // NSS and gpgsm verify the eContent and ignore the shown part (docs/interop.md q24): two readings, refused.
    ['eContent (other content) in multipart/signed', detached([{ id: alice, attrs: [o.ct, o.md, o.st] }], { content: other }), 'invalid AMBIGUOUS_CONTENT'],
    ['eContent (the same content) in multipart/signed', detached([{ id: alice, attrs: [a.ct, a.md, a.st] }], { content: part }), 'invalid AMBIGUOUS_CONTENT'],
    ['opaque signed-data without eContent', opaque([{ id: alice, attrs: [a.ct, a.md, a.st] }], undefined), 'throws AMBIGUOUS_CONTENT'],
  ];
  for (const [what, message, expected] of cases) await assertEverywhere(what, message, expected);
});

// A signed message signed again: the streaming readers judged the outer signature alone.
const aliceOpaque = opaqueSigned([], signedData({ signers: [{ id: alice, attrs: [a.ct, a.md, a.st] }], content: part }));
const forgedOpaque = opaqueSigned([], signedData({ signers: [{ id: alice, key: mallory, attrs: [a.ct, a.md, a.st] }], content: part }));
const nested: Array<[string, Buffer, string]> = [
  ['Mallory over Alice\'s opaque signature, From Mallory', signedAgain(aliceOpaque, mallory, 'mallory@example.com'), 'valid-untrusted IDENTITY_MISMATCH'],
  ['Mallory over a forged opaque signature of Alice', signedAgain(forgedOpaque, mallory, 'mallory@example.com'), 'invalid BAD_SIG'],
  ['the same, labelled smime-type=enveloped-data', signedAgain(Buffer.from(forgedOpaque.toString('latin1').replace('smime-type=signed-data', 'smime-type=enveloped-data'), 'latin1'), mallory, 'mallory@example.com'), 'invalid BAD_SIG'],
  ['the same, as application/octet-stream', signedAgain(Buffer.from(forgedOpaque.toString('latin1').replace('application/pkcs7-mime; smime-type=signed-data;', 'application/octet-stream;'), 'latin1'), mallory, 'mallory@example.com'), 'invalid BAD_SIG'],
  ['Mallory over Alice\'s multipart/signed', signedAgain(innerDetached([{ id: alice, attrs: [a.ct, a.md, a.st] }]), mallory, 'mallory@example.com'), 'valid-untrusted IDENTITY_MISMATCH'],
  ['Mallory over a forged multipart/signed of Alice', signedAgain(innerDetached([{ id: alice, key: mallory, attrs: [a.ct, a.md, a.st] }]), mallory, 'mallory@example.com'), 'invalid BAD_SIG'],
  ['Alice over Alice\'s own signatures', signedAgain(innerDetached([{ id: alice, attrs: [a.ct, a.md, a.st] }]), alice, 'alice@example.com'), 'trusted'],
];

test('a signed message signed again: the streaming readers judge the inner signature as verifyMessage does', async () => {
  for (const [what, message, expected] of nested) await assertEverywhere(what, message, expected);
  // An encrypted message inside a signature stays closed in every reader (no keys for verify): the streamed verdict stands.
  const env = buildEntity([['Content-Type', 'application/pkcs7-mime; smime-type=authEnveloped-data; name="smime.p7m"'], ['Content-Transfer-Encoding', 'base64']], Buffer.from(`${encryptData(part, { recipients: [{ certificate: bob.cert }] }).toString('base64')}\r\n`));
  await assertEverywhere('Alice over an envelope', signedAgain(env, alice, 'alice@example.com'), 'trusted');
  // Signed parts and forwarded messages inside keep their own rules (judged apart, never the message's verdict).
  const mixed = buildEntity([['Content-Type', 'multipart/mixed; boundary="m1"']], buildMultipartBody('m1', [part, innerDetached([{ id: alice, key: mallory, attrs: [a.ct, a.md, a.st] }])]));
  await assertEverywhere('Alice over a forged signed part', signedAgain(mixed, alice, 'alice@example.com'), 'trusted');
});

test('a signed message signed again, larger than the in-memory limit: LIMIT from the stream, never a verdict on the outer signature alone', async () => {
  const [, message] = nested[1]!;
  const limits = { maxMessageBytes: message.length - 1 };
  await assert.rejects(verifyMessageStream(chunks(message, 97), { validateSigner, limits, output: new PassThrough().resume() }), (e) => isKakitomeError(e, 'LIMIT'));
  // Below the limit, streamed: the inner forgery is found.
  const v = await verifyMessageStream(chunks(message, 97), { validateSigner, limits: { maxMessageBytes: message.length }, output: new PassThrough().resume() });
  assert.equal(show({ verdict: v }), 'invalid BAD_SIG');
});

test('kakitome verify --json: the nested and ambiguous cases', async () => {
  const cases: Array<[string, Buffer, string]> = [
    [nested[1]![0], nested[1]![1], 'invalid BAD_SIG'],
    ['eContent in multipart/signed', detached([{ id: alice, attrs: [honest(other).ct, honest(other).md, a.st] }], { content: other }), 'invalid AMBIGUOUS_CONTENT'],
  ];
  for (const [what, message, expected] of cases) {
    const r = await runCli(['verify', '--ca', pki.caPath, '--revocation', 'off', '--json'], { input: message });
    const j = JSON.parse(r.stdout.toString('utf8')) as { status: string; code?: string };
    assert.equal(`${j.status}${j.code ? ` ${j.code}` : ''}`, expected, `${what}: ${r.stderr}`);
    assert.equal(r.status, 1, what);
  }
});

test('random layer stacks under a detached signature: the four reader paths agree (seeded)', async () => {
  const below = seededRandom(15);
  const pick = <T>(items: readonly T[]): T => items[below(items.length)]!;
  const people = { alice, mallory } as const;
  let boundaries = 0;
  /** `inner` wrapped in `depth` layers: signatures (some forged), envelopes (AEAD and CBC), multiparts, forwarded messages. */
  const wrap = (inner: Buffer, depth: number): Buffer => {
    if (depth === 0) return inner;
    const next = wrap(inner, depth - 1);
    const who = pick(['alice', 'mallory'] as const);
    const signer: RawSigner = { id: people[who], ...(below(4) === 0 ? { key: people[who === 'alice' ? 'mallory' : 'alice'] } : {}), attrs: Object.values(honest(next)) };
    const b = `s${boundaries++}`;
    switch (pick(['detached', 'detached', 'opaque', 'opaque', 'aead', 'cbc', 'mixed', 'forwarded'] as const)) {
      case 'detached':
        return signedWithBoundary(next, [signer], b);
      case 'opaque':
        return opaqueSigned([], signedData({ signers: [signer], content: next }));
      case 'aead':
      case 'cbc': {
        const der = encryptData(next, { recipients: [{ certificate: bob.cert }], ...(below(2) ? { contentEncryption: 'aes-128-cbc' as const } : {}) });
        return buildEntity([['Content-Type', 'application/pkcs7-mime; smime-type=enveloped-data; name="smime.p7m"'], ['Content-Transfer-Encoding', 'base64']], Buffer.from(`${der.toString('base64')}\r\n`));
      }
      case 'mixed':
        return buildEntity([['Content-Type', `multipart/mixed; boundary="${b}"`]], buildMultipartBody(b, [Buffer.from('Content-Type: text/plain\r\n\r\nhi\r\n'), next]));
      default:
        return buildEntity([['Content-Type', 'message/rfc822']], Buffer.concat([Buffer.from('From: bank@example.com\r\nMIME-Version: 1.0\r\n'), next]));
    }
  };
  for (let i = 0; i < 40; i++) {
    const body = wrap(part, 1 + below(3));
    const who = pick(['alice', 'mallory'] as const);
    const message = signedAgain(body, people[who], pick(['alice@example.com', 'mallory@example.com']));
    const results = (await readEverywhere(message, encryptWithoutParsing(message, bob.cert), { validateSigner, keys: bobKeys })).map(([p, o]) => [p, show(o)]);
    // Verification has no keys and decryption has: each pair must agree, in memory and streamed.
    assert.equal(results[1]![1], results[0]![1], `stack ${i}: verifyMessageStream vs verifyMessage`);
    assert.equal(results[3]![1], results[2]![1], `stack ${i}: decryptMessageStream vs decryptMessage`);
  }
});

// ------------------------------------------------------------- decryption

/** ContentInfo(Enveloped/AuthEnveloped) rebuilt with its fields edited (an attacker's edit of a real envelope). */
function editEnvelope(der: Buffer, f: (fields: Buffer[]) => Buffer[], type?: string): Buffer {
  const [t, c] = decode(der).children();
  const fields = c!.children()[0]!.children().map((x) => Buffer.from(x.bytes));
  return sequence(type ? oid(type) : Buffer.from(t!.bytes), explicit(0, sequence(...f(fields))));
}
const eciAt = (f: Buffer[]): number => f.findIndex((b) => b[0] === 0x30 && decode(b).children()[0]!.tag === 0x06);
const macAt = (f: Buffer[]): number => f.findIndex((b, i) => i > eciAt(f) && b[0] === 0x04);
const risAt = (f: Buffer[]): number => f.findIndex((b) => b[0] === 0x31);
/** EncryptedContentInfo with its algorithm (and content) replaced. */
const withAlgorithm = (alg: (old: Buffer) => Buffer, content?: (old: Buffer) => Buffer) => (f: Buffer[]): Buffer[] => {
  const i = eciAt(f);
  const [ct, old, body] = decode(f[i]!).children().map((x) => Buffer.from(x.bytes));
  const out = [...f];
  out[i] = sequence(ct!, alg(old!), content ? content(body!) : body!);
  return out;
};
const withMac = (m: (old: Buffer) => Buffer) => (f: Buffer[]): Buffer[] => {
  const i = macAt(f);
  const out = [...f];
  out[i] = octetString(m(Buffer.from(decode(f[i]!).value)));
  return out;
};
const gcmParams = (nonce: Buffer, icv?: number): Buffer => sequence(oid(OID.aes256_GCM), sequence(octetString(nonce), ...(icv === undefined ? [] : [integer(icv)])));
const nonceOf = (alg: Buffer): Buffer => Buffer.from(decode(alg).children()[1]!.children()[0]!.value);
/** Bob's ephemeral-static KARI with the originator's point replaced. */
const withOriginatorPoint = (point: (old: Buffer) => Buffer) => (f: Buffer[]): Buffer[] => {
  const i = risAt(f);
  const ris: Buffer[] = decode(f[i]!).children().map((x) => Buffer.from(x.bytes));
  const k = ris.findIndex((b) => b[0] === 0xa1);
  const kari: Buffer[] = decode(ris[k]!).children().map((x) => Buffer.from(x.bytes));
  const [alg, bits] = decode(kari[1]!).children()[0]!.children().map((x) => Buffer.from(x.bytes));
  kari[1] = implicit(0, true, implicit(1, true, alg!, tlv(0x03, Buffer.concat([Buffer.of(0), point(Buffer.from(decode(bits!).value.subarray(1)))]))));
  ris[k] = implicit(1, true, ...kari);
  const out = [...f];
  out[i] = tlv(0x31, ...ris);
  return out;
};

const inner = Buffer.from('Content-Type: text/plain\r\n\r\nSecret.\r\n');
const aead = encryptData(inner, { recipients: [{ certificate: bob.cert }, { certificate: carol.cert }] });
const cbc = encryptData(inner, { recipients: [{ certificate: bob.cert }, { certificate: carol.cert }], contentEncryption: 'aes-256-cbc' });
const envelopeMail = (der: Buffer): Buffer => {
  const auth = decode(der).children()[0]!.bytes.length > 11; // the authEnvelopedData OID is the longer one
  return buildEntity([['From', 'alice@example.com'], ['To', 'bob@example.com'], ['MIME-Version', '1.0'], ['Content-Type', `application/pkcs7-mime; smime-type=${auth ? 'authEnveloped-data' : 'enveloped-data'}; name="smime.p7m"`], ['Content-Transfer-Encoding', 'base64']], Buffer.from(`${der.toString('base64').replace(/.{76}/g, '$&\r\n')}\r\n`));
};

test('decryption: every failure, in memory and streamed, with the same code and message', async () => {
  const kekri = implicit(2, true, integer(4), sequence(octetString(Buffer.from('kek-id'))), sequence(oid('2.16.840.1.101.3.4.1.45')), octetString(Buffer.alloc(40, 2)));
  const pwri = implicit(3, true, integer(0), sequence(oid('1.2.840.113549.3.9'), sequence(oid('2.16.840.1.101.3.4.1.2'), octetString(Buffer.alloc(16)))), octetString(Buffer.alloc(40, 2)));
  const addRecipients = (extra: Buffer[], keep = true) => (f: Buffer[]): Buffer[] => {
    const i = risAt(f);
    const out = [...f];
    out[i] = tlv(0x31, ...extra, ...(keep ? decode(f[i]!).children().map((x) => Buffer.from(x.bytes)) : []));
    return out;
  };
  const cases: Array<[string, Buffer, string]> = [
    ['control', aead, 'unsigned'],
    ['mac truncated to 12 bytes (ICVlen 16)', editEnvelope(aead, withMac((m) => m.subarray(0, 12))), 'throws DECRYPT_FAILED'],
    // GCM's shorter tags are prefixes of the longer one (SP 800-38D 5.2.1.2): the content is the sender's, authenticated with 96 bits.
    ['mac truncated to 12 bytes and ICVlen 12', editEnvelope(aead, (f) => withAlgorithm((alg) => gcmParams(nonceOf(alg), 12))(withMac((m) => m.subarray(0, 12))(f))), 'unsigned'],
    ['mac empty', editEnvelope(aead, withMac(() => Buffer.alloc(0))), 'throws DECRYPT_FAILED'],
    ['mac of 17 bytes', editEnvelope(aead, withMac((m) => Buffer.concat([m, Buffer.of(0)]))), 'throws DECRYPT_FAILED'],
    ['ICVlen absent (12) with a 16-byte mac', editEnvelope(aead, withAlgorithm((alg) => gcmParams(nonceOf(alg)))), 'throws DECRYPT_FAILED'],
    ...[0, 8, 11, 13, 16, 64].map((n): [string, Buffer, string] => [`GCM nonce of ${n} bytes`, editEnvelope(aead, withAlgorithm(() => gcmParams(Buffer.alloc(n, 1), 16))), 'throws UNSUPPORTED_ALG']),
    ['AES-256-CCM', editEnvelope(aead, withAlgorithm(() => sequence(oid('2.16.840.1.101.3.4.1.47'), sequence(octetString(Buffer.alloc(12, 1)), integer(16))))), 'throws UNSUPPORTED_ALG'],
    ['unauthAttrs (ignored: they claim nothing)', editEnvelope(aead, (f) => [...f, implicit(2, true, attr('1.2.3.4', octetString(Buffer.from('claims'))))]), 'unsigned'],
    // The same content key under CBC: unauthenticated content, refused unless a trusted signature inside vouches for it (EFAIL).
    ['AuthEnvelopedData turned into EnvelopedData AES-256-CBC', editEnvelope(aead, (f) => withAlgorithm(() => sequence(oid(OID.aes256_CBC), octetString(Buffer.alloc(16, 1))))([integer(2), ...f.slice(1).filter((_, i) => i + 1 !== macAt(f))]), OID.envelopedData), 'throws UNAUTH_ENC'],
    ['CBC to single DES', editEnvelope(cbc, withAlgorithm(() => sequence(oid('1.3.14.3.2.7'), octetString(Buffer.alloc(8, 1))))), 'throws UNSUPPORTED_ALG'],
    ['CBC to RC2', editEnvelope(cbc, withAlgorithm(() => sequence(oid(OID.rc2_cbc), sequence(integer(58), octetString(Buffer.alloc(8, 1)))))), 'throws UNSUPPORTED_ALG'],
    ['AES-CBC with an empty IV', editEnvelope(cbc, withAlgorithm(() => sequence(oid(OID.aes256_CBC), octetString(Buffer.alloc(0))))), 'throws MALFORMED'],
    ['CBC to 3DES (the same key bytes)', editEnvelope(cbc, withAlgorithm(() => sequence(oid(OID.des_ede3_cbc), octetString(Buffer.alloc(8, 1))))), 'throws UNAUTH_ENC'],
    ['CBC, last blocks altered', editEnvelope(cbc, withAlgorithm((alg) => alg, (body) => { const b = Buffer.from(body); b[b.length - 20]! ^= 1; return b; })), 'throws UNAUTH_ENC'],
    ['originatorInfo with certificates', editEnvelope(aead, (f) => [f[0]!, implicit(0, true, implicit(0, true, bob.cert.der)), ...f.slice(1)]), 'unsigned'],
    ['KEKRecipientInfo and PasswordRecipientInfo besides ours', editEnvelope(aead, addRecipients([kekri, pwri])), 'unsigned'],
    ['KEKRecipientInfo only', editEnvelope(aead, addRecipients([kekri], false)), 'throws NOT_RECIPIENT'],
    ['PasswordRecipientInfo only', editEnvelope(aead, addRecipients([pwri], false)), 'throws NOT_RECIPIENT'],
    ['originator point off the curve', editEnvelope(aead, withOriginatorPoint((p) => { const q = Buffer.from(p); q[q.length - 1]! ^= 1; return q; })), 'throws DECRYPT_FAILED'],
    ['originator point at infinity', editEnvelope(aead, withOriginatorPoint(() => Buffer.of(0))), 'throws DECRYPT_FAILED'],
    ['originator point (0, 0)', editEnvelope(aead, withOriginatorPoint(() => Buffer.concat([Buffer.of(4), Buffer.alloc(64)]))), 'throws DECRYPT_FAILED'],
    ['another valid originator point', editEnvelope(aead, withOriginatorPoint(() => Buffer.from(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'der', type: 'spki' }).subarray(-65)))), 'throws DECRYPT_FAILED'],
  ];
  const messages = new Map<string, string>();
  for (const [what, der, expected] of cases) {
    const m = envelopeMail(der);
    const got: Array<[string, string]> = [];
    for (const [path, run] of [
      ['decryptMessage', () => decryptMessage(m, { validateSigner, keys: bobKeys }).then((r) => r.verdict)],
      ['decryptMessageStream', () => decryptMessageStream(chunks(m, 89), { validateSigner, keys: bobKeys, output: new PassThrough().resume() })],
    ] as const) {
      assert.equal(show(await outcome(run)), expected, `${what}: ${path}`);
      try {
        await run();
      } catch (e) {
        if (isKakitomeError(e)) got.push([e.code, e.message]);
      }
    }
    if (got.length === 2) assert.deepEqual(got[0], got[1], `${what}: the same message on both paths`);
    // One message per code: DECRYPT_FAILED and UNAUTH_ENC say nothing about the cause.
    for (const [code, message] of got) {
      if (code !== 'DECRYPT_FAILED' && code !== 'UNAUTH_ENC') continue;
      assert.equal(messages.get(code) ?? message, message, `${what}: ${code} worded as for the other causes`);
      messages.set(code, message);
    }
  }
  // 10,000 recipients besides ours: over maxRecipients, refused before any private-key operation.
  const many = editEnvelope(aead, (f) => {
    const i = risAt(f);
    const ris = decode(f[i]!).children().map((x) => Buffer.from(x.bytes));
    const out = [...f];
    out[i] = tlv(0x31, ...Array<Buffer>(10_000).fill(ris[1]!), ris[0]!);
    return out;
  });
  for (const o of [await outcome(async () => (await decryptMessage(envelopeMail(many), { keys: bobKeys })).verdict), await outcome(() => decryptMessageStream(chunks(envelopeMail(many), 4096), { keys: bobKeys, output: new PassThrough().resume() }))]) {
    assert.equal(show(o), 'throws LIMIT');
  }
});

test('the random stand-in content key is drawn whether the key layer succeeds or fails (no timing difference between the two)', () => {
  const damaged = editEnvelope(aead, (f) => {
    const i = risAt(f);
    const ris: Buffer[] = decode(f[i]!).children().map((x) => Buffer.from(x.bytes));
    const k = ris.findIndex((b) => b[0] === 0x30); // Carol's KeyTransRecipientInfo
    const ktri: Buffer[] = decode(ris[k]!).children().map((x) => Buffer.from(x.bytes));
    const ek = Buffer.from(decode(ktri[3]!).value);
    ek[5]! ^= 0x40;
    ktri[3] = octetString(ek);
    ris[k] = sequence(...ktri);
    const out = [...f];
    out[i] = tlv(0x31, ...ris);
    return out;
  });
  for (const [what, der] of [['intact', aead], ['RSA layer damaged', damaged]] as const) {
    const parsed = parseEnvelopeFromContentInfo(der);
    const [candidate] = matchRecipients(parsed, [{ key: carol.key, certificate: carol.cert }]);
    let draws = 0;
    const k = openRecipient(candidate!, 32, (n) => {
      draws++;
      return randomBytes(n);
    });
    assert.equal(draws, 1, `${what}: one draw`);
    assert.equal(k.cek.length, 32, what);
  }
});
