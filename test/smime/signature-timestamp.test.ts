/**
 * RFC 3161 signature timestamps (issue 12 item 4): a token from a real TSA
 * (`openssl ts -reply`) added as the unsigned attribute id-aa-signatureTimeStampToken
 * to a message signed by us and to one signed by `openssl cms`, verified with
 * validityClock 'timestamp': a signer certificate expired now but valid at genTime
 * is trusted; every kind of bad token is refused with its reason and never
 * supplies the clock. The in-memory and streaming verifiers decide the same.
 * Tokens a real TSA will not make (a TSA certificate without the timeStamping EKU,
 * a genTime in the future) are made with our CMS signer over a real TSTInfo.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { TestPki } from '../helpers/pki.ts';
import { issueTsa, opensslTimestamp, signatureValueOf, timestampAttribute, withUnsignedAttributes, replaceDetachedSignature, type Tsa } from '../helpers/timestamp.ts';
import { OPENSSL } from '../peers/openssl.ts';
import { runPeer, runPeerOk } from '../peers/run-peer.ts';
import { signMessage } from '../../src/smime/sign-message.ts';
import { verifyMessage } from '../../src/smime/verify-message.ts';
import { verifyMessageStream } from '../../src/smime/verify-message-stream.ts';
import { createSignerValidator, type SignerValidatorOptions } from '../../src/pki/create-signer-validator.ts';
import { verifyTimestampToken } from '../../src/cms/signed-data/verify-timestamp-token.ts';
import { signData } from '../../src/cms/signed-data/sign.ts';
import { parseContentInfo } from '../../src/cms/content-info.ts';
import { parseSignedData } from '../../src/cms/signed-data/parse.ts';
import { readOctets, Tag } from '../../src/asn1/ber.ts';
import { sequence, integer, oid, octetString, tlv } from '../../src/asn1/der.ts';
import { OID } from '../../src/asn1/oids.ts';
import { createHash } from 'node:crypto';
import type { MessageVerdict } from '../../src/smime/verdict.ts';

const pki = new TestPki('Kakitome Timestamp Root');
const other = new TestPki('Kakitome Other Root');
after(() => {
  pki.cleanup();
  other.cleanup();
});
const root = { cert: pki.caCert, key: pki.caKey };
// Valid for one more day: "expired" for a verifier whose clock reads two days from now.
const alice = pki.identity('rsa2048', 'alice', { notAfter: new Date(Date.now() + 86_400_000) });
const tsa = issueTsa(pki.dir, 'Good TSA', root);
const emailTsa = issueTsa(pki.dir, 'Email TSA', root, { eku: [OID.emailProtection] });
const softTsa = issueTsa(pki.dir, 'Non-critical TSA', root, { ekuCritical: false });
const foreignTsa = issueTsa(other.dir, 'Foreign TSA', { cert: other.caCert, key: other.caKey });
const later = () => new Date(Date.now() + 2 * 86_400_000);

function validator(clock: SignerValidatorOptions['validityClock'], extra: SignerValidatorOptions = {}) {
  return createSignerValidator({ anchors: [pki.caCert], revocation: { mode: 'off' }, validityClock: clock, now: later, ...extra });
}

const draft = Buffer.from('From: alice@example.com\r\nTo: bob@example.com\r\nSubject: contract\r\nContent-Type: text/plain\r\n\r\nI agree.\r\n');

/** A message signed by us now, and its signature value (what a token's imprint hashes). */
function signed(): { message: Buffer; signature: Buffer } {
  const message = signMessage(draft, { signers: [{ certificate: alice.cert, key: alice.key }] });
  let signature: Buffer = Buffer.alloc(0);
  replaceDetachedSignature(message, (cms) => (signature = signatureValueOf(cms), cms));
  return { message, signature };
}

function withTokens(message: Buffer, ...tokens: Uint8Array[]): Buffer {
  return replaceDetachedSignature(message, (cms) => withUnsignedAttributes(cms, [timestampAttribute(...tokens)]));
}

/** Verified in memory and streaming; the two must agree (test/fuzz/message-stream.test.ts's rule). */
async function verifyBoth(message: Buffer, v: ReturnType<typeof validator>, now = later()): Promise<MessageVerdict> {
  const mem = await verifyMessage(message, { validateSigner: v, now });
  const streamed = await verifyMessageStream(Readable.from([message]), { validateSigner: v, now });
  assert.equal(streamed.status, mem.status);
  assert.equal(streamed.code, mem.code);
  assert.deepEqual(streamed.signers[0]?.trust?.timestamp, mem.signers[0]?.trust?.timestamp);
  return mem;
}

/** The TSTInfo of a real token, and a token over `tstInfo` signed by `by` with our CMS signer. */
function tstInfoOf(token: Uint8Array): Buffer {
  const sd = parseSignedData(parseContentInfo(token).content);
  return Buffer.from(readOctets(sd.eContent!));
}
function signTstInfo(tstInfo: Uint8Array, by: Tsa): Buffer {
  return signData(tstInfo, { signers: [{ certificate: by.cert, key: by.key, capabilities: false }], contentType: OID.tstInfo });
}
function craftTstInfo(imprintOf: Uint8Array, genTime: string, version = 1): Buffer {
  return sequence(integer(version), oid('1.3.6.1.4.1.99999.1'), sequence(sequence(oid(OID.sha256)), octetString(createHash('sha256').update(imprintOf).digest())), integer(42), tlv(Tag.GENERALIZED_TIME, Buffer.from(genTime, 'latin1')));
}
function generalizedTime(d: Date): string {
  return d.toISOString().replace(/[-:T]/g, '').replace(/\.\d+Z$/, 'Z');
}

test('a real TSA token: a signer certificate expired now but valid at genTime is trusted with the timestamp clock', async () => {
  const { message, signature } = signed();
  const token = await opensslTimestamp(pki.dir, tsa, signature);
  const stamped = withTokens(message, token);

  const v = await verifyBoth(stamped, validator('timestamp'));
  assert.equal(v.status, 'trusted', v.summary);
  const trust = v.signers[0]!.trust!;
  assert.equal(trust.clock.source, 'timestamp');
  assert.equal(trust.timestamp?.status, 'verified', trust.timestamp?.message);
  assert.equal(trust.timestamp?.used, true);
  assert.equal(trust.timestamp?.tsa, 'O=Kakitome Test TSA, CN=Good TSA');
  assert.ok(Math.abs(trust.timestamp!.time!.getTime() - Date.now()) < 120_000);
  assert.match(trust.message, /valid at the timestamped time .*TSA "O=Kakitome Test TSA, CN=Good TSA"/);
  assert.match(v.summary, /certificate is trusted; revocation not checked; valid at the timestamped time \d{4}-.*Z \(TSA "O=Kakitome Test TSA, CN=Good TSA"\)\.$/);

  // The same message checked now: expired, and the token is reported as not checked.
  const now = await verifyBoth(stamped, validator('now'));
  assert.equal(now.code, 'CERT_EXPIRED');
  assert.equal(now.signers[0]!.trust!.timestamp?.status, 'not-checked');
  // 'signingTime' prefers the verified timestamp to the signer's own claim.
  const st = await verifyBoth(stamped, validator('signingTime'));
  assert.equal(st.status, 'trusted');
  assert.equal(st.signers[0]!.trust!.clock.source, 'timestamp');
  // Without the token, 'timestamp' falls back to now (never to the signer's signingTime) and says so.
  const bare = await verifyBoth(message, validator('timestamp'));
  assert.equal(bare.code, 'CERT_EXPIRED');
  assert.equal(bare.signers[0]!.trust!.clock.source, 'now');
  assert.ok(bare.signers[0]!.warnings.some((w) => /no usable timestamp/.test(w)));

  // OpenSSL agrees that the token is good for this signature value.
  writeFileSync(join(pki.dir, 'good.tst'), token);
  writeFileSync(join(pki.dir, 'good.sig'), signature);
  await runPeerOk(OPENSSL, ['ts', '-verify', '-data', join(pki.dir, 'good.sig'), '-in', join(pki.dir, 'good.tst'), '-token_in', '-CAfile', pki.caPath]);
});

test('a token over another signature (imprint mismatch) is refused: TIMESTAMP_INVALID under "timestamp", a warning under "signingTime"', async () => {
  const { message } = signed();
  const token = await opensslTimestamp(pki.dir, tsa, Buffer.from('some other signature value'));
  const stamped = withTokens(message, token);
  const v = await verifyBoth(stamped, validator('timestamp'));
  assert.equal(v.status, 'valid-untrusted');
  assert.equal(v.code, 'TIMESTAMP_INVALID');
  const ts = v.signers[0]!.trust!.timestamp!;
  assert.equal(ts.status, 'refused');
  assert.equal(ts.code, 'DIGEST_MISMATCH');
  assert.equal(ts.used, false);
  assert.match(ts.message, /made for another signature/);
  assert.equal(v.signers[0]!.trust!.clock.source, 'now');
  // Under 'signingTime' the refusal is a warning and the signer's own signingTime is the clock.
  const st = await verifyBoth(stamped, validator('signingTime'));
  assert.equal(st.status, 'trusted');
  assert.equal(st.signers[0]!.trust!.clock.source, 'signingTime');
  assert.ok(st.signers[0]!.warnings.some((w) => /timestamp is not usable.*not used as the validity clock/.test(w)));
});

test('a TSA certificate without the critical, sole timeStamping EKU is refused (CERT_USAGE)', async () => {
  const { message, signature } = signed();
  const real = tstInfoOf(await opensslTimestamp(pki.dir, tsa, signature));
  for (const [bad, why] of [[emailTsa, /must name only id-kp-timeStamping .*emailProtection|1\.3\.6\.1\.5\.5\.7\.3\.4/], [softTsa, /non-critical extendedKeyUsage/]] as const) {
    const v = await verifyBoth(withTokens(message, signTstInfo(real, bad)), validator('timestamp'));
    assert.equal(v.code, 'TIMESTAMP_INVALID');
    const ts = v.signers[0]!.trust!.timestamp!;
    assert.equal(ts.code, 'CERT_USAGE', ts.message);
    assert.match(ts.message, why);
  }
  // OpenSSL refuses the same token for the same reason.
  writeFileSync(join(pki.dir, 'eku.tst'), signTstInfo(real, emailTsa));
  writeFileSync(join(pki.dir, 'eku.sig'), signature);
  const r = await runPeer(OPENSSL, ['ts', '-verify', '-data', join(pki.dir, 'eku.sig'), '-in', join(pki.dir, 'eku.tst'), '-token_in', '-CAfile', pki.caPath]);
  assert.notEqual(r.status, 0);
});

test('an untrusted TSA is refused (CERT_UNTRUSTED); separate TSA anchors (tsaAnchors) decide which TSAs count', async () => {
  const { message, signature } = signed();
  const stamped = withTokens(message, await opensslTimestamp(other.dir, foreignTsa, signature));
  const v = await verifyBoth(stamped, validator('timestamp'));
  assert.equal(v.code, 'TIMESTAMP_INVALID');
  assert.equal(v.signers[0]!.trust!.timestamp!.code, 'CERT_UNTRUSTED');
  assert.match(v.signers[0]!.trust!.timestamp!.message, /No chain from the certificate of .*Foreign TSA/i);
  // Trusting the other root for TSAs only makes the token count, and the signer still chains to its own anchor.
  const ok = await verifyBoth(stamped, validator('timestamp', { tsaAnchors: [other.caCert] }));
  assert.equal(ok.status, 'trusted', ok.summary);
  // And the TSA anchors replace the signer anchors for TSAs: our own TSA is then not trusted.
  const own = withTokens(message, await opensslTimestamp(pki.dir, tsa, signature));
  const refused = await verifyBoth(own, validator('timestamp', { tsaAnchors: [other.caCert] }));
  assert.equal(refused.signers[0]!.trust!.timestamp!.code, 'CERT_UNTRUSTED');
});

test('a SHA-1 imprint is refused (WEAK_ALG) unless legacy algorithms are allowed', async () => {
  const { message, signature } = signed();
  const stamped = withTokens(message, await opensslTimestamp(pki.dir, tsa, signature, 'sha1'));
  const v = await verifyBoth(stamped, validator('timestamp'));
  assert.equal(v.code, 'TIMESTAMP_INVALID');
  assert.equal(v.signers[0]!.trust!.timestamp!.code, 'WEAK_ALG');
  assert.match(v.signers[0]!.trust!.timestamp!.message, /imprint uses SHA-1/);
  const legacy = await verifyBoth(stamped, validator('timestamp', { allowLegacy: true }));
  assert.equal(legacy.status, 'trusted');
  assert.ok(legacy.signers[0]!.trust!.legacy?.some((l) => /SHA-1/.test(l)));
  assert.match(legacy.summary, /only because legacy algorithms are allowed/);
});

test('a genTime in the future is refused; a genTime is read strictly', async () => {
  const { message, signature } = signed();
  const future = signTstInfo(craftTstInfo(signature, generalizedTime(new Date(Date.now() + 3600_000))), tsa);
  const fixed = new Date();
  const v = await verifyBoth(withTokens(message, future), validator('timestamp', { now: () => fixed }), fixed);
  assert.equal(v.code, 'TIMESTAMP_INVALID');
  assert.match(v.signers[0]!.trust!.timestamp!.message, /is in the future/);

  const t = generalizedTime(new Date(Date.now() - 60_000)).slice(0, -1);
  const check = (tstInfo: Buffer) => verifyTimestampToken(signTstInfo(tstInfo, tsa), signature);
  assert.equal(check(craftTstInfo(signature, `${t}Z`)).status, 'valid');
  assert.equal(check(craftTstInfo(signature, `${t}.5Z`)).genTime!.getUTCMilliseconds(), 500);
  for (const bad of [`${t}.50Z`, `${t}.Z`, `${t}`, `${t}+0000`, `${t.slice(0, -2)}Z`, `${t.slice(0, 6)}32${t.slice(8)}Z`]) {
    const r = check(craftTstInfo(signature, bad));
    assert.equal(r.status, 'invalid', bad);
    assert.equal(r.code, 'MALFORMED', bad);
  }
  const v2 = check(craftTstInfo(signature, `${t}Z`, 2));
  assert.equal(v2.code, 'MALFORMED');
  assert.match(v2.message, /version 2/);
});

test('garbled tokens, an oversized token and two tokens are refused with their reason; two attributes break the signature', async () => {
  const { message, signature } = signed();
  const token = await opensslTimestamp(pki.dir, tsa, signature);
  const flipped = Buffer.from(token);
  flipped[flipped.length - 10]! ^= 0x01; // inside the TSA's signature value
  const junk = tlv(Tag.OCTET_STRING, Buffer.from('not a token'));
  const cases: Array<[Uint8Array[], string, RegExp]> = [
    [[flipped], 'BAD_SIG', /TSA's signature on it is not valid/],
    [[junk], 'MALFORMED', /not usable/],
    [[token, await opensslTimestamp(pki.dir, tsa, signature)], 'ATTR_INVALID', /2 timestamp tokens/],
  ];
  for (const [tokens, code, why] of cases) {
    const v = await verifyBoth(withTokens(message, ...tokens), validator('timestamp'));
    assert.equal(v.code, 'TIMESTAMP_INVALID', code);
    assert.equal(v.signers[0]!.trust!.timestamp!.code, code);
    assert.match(v.signers[0]!.trust!.timestamp!.message, why);
    assert.equal(v.signers[0]!.trust!.clock.source, 'now');
  }
  const small = verifyTimestampToken(token, signature, { limits: { maxTimestampTokenBytes: 256 } });
  assert.equal(small.code, 'LIMIT');
  // Two id-aa-signatureTimeStampToken attributes: unsigned attributes are held to "no type twice" (src/cms/attributes.ts).
  const twice = replaceDetachedSignature(message, (cms) => withUnsignedAttributes(cms, [timestampAttribute(token), sequence(oid(OID.signatureTimeStampToken), tlv(Tag.SET, token, Buffer.alloc(0)))]));
  const t2 = await verifyMessage(twice, { validateSigner: validator('timestamp'), now: later() });
  assert.equal(t2.status, 'invalid');
  assert.equal(t2.code, 'ATTR_INVALID');
});

test('a message signed by openssl cms with a real TSA token is trusted with the timestamp clock', async () => {
  const bodyPath = join(pki.dir, 'ossl.txt');
  const outPath = join(pki.dir, 'ossl.eml');
  writeFileSync(bodyPath, 'Content-Type: text/plain\r\n\r\nSigned by OpenSSL.\r\n');
  await runPeerOk(OPENSSL, ['cms', '-sign', '-md', 'sha256', '-in', bodyPath, '-signer', alice.certPath, '-inkey', alice.keyPath, '-from', alice.email, '-to', 'bob@example.com', '-subject', 'openssl', '-out', outPath]);
  const message = readFileSync(outPath);
  let signature: Buffer = Buffer.alloc(0);
  replaceDetachedSignature(message, (cms) => (signature = signatureValueOf(cms), cms));
  const stamped = withTokens(message, await opensslTimestamp(pki.dir, tsa, signature));
  const v = await verifyBoth(stamped, validator('timestamp'));
  assert.equal(v.status, 'trusted', v.summary);
  assert.equal(v.signers[0]!.trust!.clock.source, 'timestamp');
  // OpenSSL still verifies the message with the unsigned attribute added.
  writeFileSync(join(pki.dir, 'ossl-stamped.eml'), stamped);
  await runPeerOk(OPENSSL, ['cms', '-verify', '-in', join(pki.dir, 'ossl-stamped.eml'), '-CAfile', pki.caPath, '-out', join(pki.dir, 'ossl.out')]);
});
