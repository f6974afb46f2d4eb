/**
 * Strict verification against crafted inputs (brief, "Safe verification"). Each
 * input is built by hand with src/asn1/der.ts and signed for real, so the only
 * defect in it is the one under test.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { sign as cryptoSign, verify as cryptoVerify, createHash, constants } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestPki, type Identity } from '../helpers/pki.ts';
import { sequence, set, setOf, oid, integer, octetString, explicit, implicit, tlv, time, utf8String, NULL, retag } from '../../src/asn1/der.ts';
import { Tag } from '../../src/asn1/ber.ts';
import { encodeSignedAttributes } from '../../src/cms/signed-data/signed-attributes.ts';
import { OID } from '../../src/asn1/oids.ts';
import { encodeAttribute } from '../../src/cms/attributes.ts';
import { encodeIdentifier, identifierFor } from '../../src/cms/identifier.ts';
import { signData } from '../../src/cms/signed-data/sign.ts';
import { verifySignedData, type SignedDataVerification } from '../../src/cms/signed-data/verify.ts';
import { encodeSigningCertificateV2Attribute, encodeAlgorithmProtectionAttribute } from '../../src/cms/signed-data/signed-attributes.ts';
import { isKakitomeError, type ErrorCode } from '../../src/errors.ts';

const pki = new TestPki();
after(() => pki.cleanup());
const rsa = pki.identity('rsa2048');
const rsa2 = pki.identity('rsa2048', 'rsa-second');
const ec = pki.identity('p256');
const content = Buffer.from('Subject: pay\r\n\r\nPay 100 EUR to account 1234.\r\n');

const SHA256 = sequence(oid(OID.sha256));
const RSA_ENC = sequence(oid(OID.rsaEncryption), NULL);

function hash(name: string, data: Uint8Array): Buffer {
  return createHash(name).update(data).digest();
}

/** The usual signed attributes for `content`. */
function stdAttrs(c: Uint8Array = content, o: { contentType?: string; hash?: string } = {}): Buffer[] {
  return [
    encodeAttribute(OID.contentType, oid(o.contentType ?? OID.data)),
    encodeAttribute(OID.messageDigest, octetString(hash(o.hash ?? 'sha256', c))),
    encodeAttribute(OID.signingTime, time(new Date('2026-01-01T00:00:00Z'))),
  ];
}

interface SignerSpec {
  id?: Identity;
  /** Encoded attributes; null = no signed attributes at all. */
  attrs?: Buffer[] | null;
  /** Keep the attribute order given (non-DER) instead of sorting. */
  unsorted?: boolean;
  /** Raw signed-attribute SET bytes (tag 0x31), bypassing attrs. */
  rawSet?: Buffer;
  digestAlg?: Buffer;
  sigAlg?: Buffer;
  /** What gets signed when there are no signed attributes. */
  signOver?: Buffer;
  signature?: Buffer;
  hashName?: string | null;
  signOptions?: object;
  version?: number;
  sid?: Buffer;
  /** Encoded unsigned attributes. */
  unsigned?: Buffer[];
}

function signerInfo(s: SignerSpec): Buffer {
  const id = s.id ?? rsa;
  let signedField: Buffer[] = [];
  let toSign: Buffer;
  if (s.attrs === null && !s.rawSet) {
    toSign = s.signOver ?? content;
  } else {
    const setBytes = s.rawSet ?? (s.unsorted ? set(...(s.attrs ?? stdAttrs())) : setOf(s.attrs ?? stdAttrs()));
    toSign = setBytes;
    signedField = [retag(setBytes, 0xa0)];
  }
  const hashName = s.hashName === undefined ? 'sha256' : s.hashName;
  const signature = s.signature ?? cryptoSign(hashName, toSign, s.signOptions ? { key: id.key, ...s.signOptions } : id.key);
  return sequence(
    integer(s.version ?? 1),
    s.sid ?? encodeIdentifier(identifierFor(id.cert)),
    s.digestAlg ?? SHA256,
    ...signedField,
    s.sigAlg ?? RSA_ENC,
    octetString(signature),
    ...(s.unsigned ? [retag(setOf(s.unsigned), 0xa1)] : []),
  );
}

function signedData(o: { signerInfos: Buffer[]; eContent?: Buffer | null; contentType?: string; certs?: Buffer[]; digestAlgs?: Buffer[] }): Buffer {
  const ct = o.contentType ?? OID.data;
  const eContent = o.eContent === null ? undefined : (o.eContent ?? content);
  const encap = eContent === undefined ? sequence(oid(ct)) : sequence(oid(ct), explicit(0, octetString(eContent)));
  const certs = o.certs ?? [rsa.cert.der, rsa2.cert.der, ec.cert.der];
  const sd = sequence(integer(1), set(...(o.digestAlgs ?? [SHA256])), encap, implicit(0, true, ...certs), set(...o.signerInfos));
  return sequence(oid(OID.signedData), explicit(0, sd));
}

function throwsCode(f: () => unknown, code: ErrorCode, re?: RegExp): void {
  assert.throws(f, (e) => {
    assert.ok(isKakitomeError(e, code), `expected ${code}, got ${(e as { code?: string }).code}: ${(e as Error).message}`);
    if (re) assert.match((e as Error).message, re);
    return true;
  });
}

function signerCode(v: SignedDataVerification, i = 0): ErrorCode | undefined {
  return v.signers[i]!.code;
}

function expectSigner(der: Buffer, code: ErrorCode, re?: RegExp, opts = {}): SignedDataVerification {
  const v = verifySignedData(der, opts);
  assert.equal(v.status, 'invalid');
  assert.equal(v.code, code, v.message);
  assert.equal(signerCode(v), code);
  if (re) assert.match(v.signers[0]!.message, re);
  return v;
}

test('baseline: the crafted builder produces a valid signature', () => {
  const v = verifySignedData(signedData({ signerInfos: [signerInfo({})] }));
  assert.equal(v.status, 'valid', v.message);
});

test('trailing data after ContentInfo is MALFORMED', () => {
  const der = signedData({ signerInfos: [signerInfo({})] });
  throwsCode(() => verifySignedData(Buffer.concat([der, Buffer.of(0)])), 'MALFORMED', /trailing/);
});

test('impossible lengths are MALFORMED', () => {
  const der = Buffer.from(signedData({ signerInfos: [signerInfo({})] }));
  const longer = Buffer.from(der);
  longer[3] = 0xff; // outer length (0x82 xx xx) now points past the end
  throwsCode(() => verifySignedData(longer), 'MALFORMED');
  throwsCode(() => verifySignedData(der.subarray(0, der.length - 1)), 'MALFORMED');
  throwsCode(() => verifySignedData(Buffer.of(0x30, 0x85, 1, 0, 0, 0, 0)), 'MALFORMED', /longer than 4/);
});

test('excessive nesting is LIMIT', () => {
  let deep: Buffer = NULL;
  for (let i = 0; i < 200; i++) deep = sequence(deep);
  const der = signedData({ signerInfos: [signerInfo({})], certs: [deep] });
  throwsCode(() => verifySignedData(der), 'LIMIT', /nesting/);
});

test('no signers is NO_SIGNERS', () => {
  throwsCode(() => verifySignedData(signedData({ signerInfos: [] })), 'NO_SIGNERS');
});

test('the same signer twice is MALFORMED', () => {
  throwsCode(() => verifySignedData(signedData({ signerInfos: [signerInfo({}), signerInfo({})] })), 'MALFORMED', /same signer/);
});

test('SignerInfo version contradicting its sid is MALFORMED', () => {
  throwsCode(() => verifySignedData(signedData({ signerInfos: [signerInfo({ version: 3 })] })), 'MALFORMED', /version/);
});

test('missing signed attributes is ATTR_INVALID even with a correct signature over the content', () => {
  const si = signerInfo({ attrs: null });
  const v = expectSigner(signedData({ signerInfos: [si] }), 'ATTR_INVALID', /no signed attributes/);
  assert.equal(v.signers[0]!.certificate, undefined);
});

test('signed attributes promoted into content: never accepted', () => {
  // A genuine signature over genuine attributes that bind `content`...
  const attrsSet = setOf(stdAttrs());
  const sig = cryptoSign('sha256', attrsSet, rsa.key);
  assert.ok(cryptoVerify('sha256', attrsSet, rsa.key, sig), 'the stolen signature is real');
  // ...replayed with the attribute bytes presented as the content and no signed
  // attributes: a verifier that signs over eContent when attributes are absent accepts it.
  const promoted = signedData({ eContent: attrsSet, signerInfos: [signerInfo({ attrs: null, signature: sig })] });
  expectSigner(promoted, 'ATTR_INVALID');
  // ...and with the attributes kept: the content is bound only through messageDigest.
  const kept = signedData({ eContent: attrsSet, signerInfos: [signerInfo({ attrs: stdAttrs(), signature: sig })] });
  expectSigner(kept, 'DIGEST_MISMATCH');
  // The honest form verifies.
  assert.equal(verifySignedData(signedData({ signerInfos: [signerInfo({ attrs: stdAttrs(), signature: sig })] })).status, 'valid');
});

test('allowLegacy: a signature without signed attributes verifies over the content, flagged; forged or promoted ones still fail', () => {
  const legacy = { allowLegacy: true };
  const v = verifySignedData(signedData({ signerInfos: [signerInfo({ attrs: null })] }), legacy);
  assert.equal(v.status, 'valid', v.message);
  assert.equal(v.signers[0]!.signingTime, undefined);
  assert.match(v.signers[0]!.legacy?.[0] ?? '', /no signed attributes .*Accepted only because legacy forms are allowed/);
  // Detached, as a multipart/signed from a Netscape-era client.
  const detached = signedData({ eContent: null, signerInfos: [signerInfo({ attrs: null })] });
  assert.equal(verifySignedData(detached, { ...legacy, detachedContent: content }).status, 'valid');
  expectSigner(detached, 'BAD_SIG', undefined, { ...legacy, detachedContent: Buffer.from('Subject: pay\r\n\r\nPay 900 EUR to account 6666.\r\n') });
  // The signature must be over this content.
  expectSigner(signedData({ signerInfos: [signerInfo({ attrs: null, signOver: Buffer.from('other content') })] }), 'BAD_SIG', undefined, legacy);
  // Someone's signed attributes presented as content without attributes: refused before any key is used.
  const attrsSet = setOf(stdAttrs());
  const promoted = signedData({ eContent: attrsSet, signerInfos: [signerInfo({ attrs: null, signature: cryptoSign('sha256', attrsSet, rsa.key) })] });
  expectSigner(promoted, 'ATTR_INVALID', /DER SET/, legacy);
  // RFC 5652 5.4: without signed attributes the content type must be id-data.
  expectSigner(signedData({ contentType: '1.2.840.113549.1.9.16.1.4', signerInfos: [signerInfo({ attrs: null })] }), 'ATTR_INVALID', /id-data/, legacy);
  // Without the opt-in the refusal says how to read such old mail.
  expectSigner(signedData({ signerInfos: [signerInfo({ attrs: null })] }), 'ATTR_INVALID', /legacy forms allowed \(allowLegacy\)/);
});

test('contentType attribute: missing, duplicated, multi-valued, wrongly typed, or different from eContentType is ATTR_INVALID', () => {
  const [ct, md, st] = stdAttrs() as [Buffer, Buffer, Buffer];
  expectSigner(signedData({ signerInfos: [signerInfo({ attrs: [md, st] })] }), 'ATTR_INVALID', /contentType signed attribute is missing/);
  expectSigner(signedData({ signerInfos: [signerInfo({ attrs: [ct, ct, md, st] })] }), 'ATTR_INVALID', /more than once/);
  const multi = encodeAttribute(OID.contentType, oid(OID.data), oid(OID.signedData));
  expectSigner(signedData({ signerInfos: [signerInfo({ attrs: [multi, md, st] })] }), 'ATTR_INVALID', /exactly one value/);
  const typed = encodeAttribute(OID.contentType, octetString(Buffer.from('data')));
  expectSigner(signedData({ signerInfos: [signerInfo({ attrs: [typed, md, st] })] }), 'ATTR_INVALID', /not an OBJECT IDENTIFIER/);
  const other = encodeAttribute(OID.contentType, oid(OID.envelopedData));
  expectSigner(signedData({ signerInfos: [signerInfo({ attrs: [other, md, st] })] }), 'ATTR_INVALID', /differs/);
  // The converse: eContentType changed under a signature that says id-data.
  expectSigner(signedData({ contentType: OID.envelopedData, signerInfos: [signerInfo({})] }), 'ATTR_INVALID', /differs/);
});

test('messageDigest attribute: missing or duplicated is ATTR_INVALID; wrong length or value is DIGEST_MISMATCH', () => {
  const [ct, md, st] = stdAttrs() as [Buffer, Buffer, Buffer];
  expectSigner(signedData({ signerInfos: [signerInfo({ attrs: [ct, st] })] }), 'ATTR_INVALID', /messageDigest signed attribute is missing/);
  expectSigner(signedData({ signerInfos: [signerInfo({ attrs: [ct, md, md, st] })] }), 'ATTR_INVALID', /more than once/);
  const two = encodeAttribute(OID.messageDigest, octetString(hash('sha256', content)), octetString(hash('sha256', Buffer.from('x'))));
  expectSigner(signedData({ signerInfos: [signerInfo({ attrs: [ct, two, st] })] }), 'ATTR_INVALID', /exactly one value/);
  const short = encodeAttribute(OID.messageDigest, octetString(hash('sha256', content).subarray(0, 20)));
  expectSigner(signedData({ signerInfos: [signerInfo({ attrs: [ct, short, st] })] }), 'DIGEST_MISMATCH', /20 bytes/);
  const wrong = encodeAttribute(OID.messageDigest, octetString(hash('sha256', Buffer.from('other content'))));
  expectSigner(signedData({ signerInfos: [signerInfo({ attrs: [ct, wrong, st] })] }), 'DIGEST_MISMATCH', /changed after signing/);
});

test('signingTime wrongly typed is ATTR_INVALID', () => {
  const [ct, md] = stdAttrs() as [Buffer, Buffer];
  const asText = encodeAttribute(OID.signingTime, utf8String('2026-01-01'));
  expectSigner(signedData({ signerInfos: [signerInfo({ attrs: [ct, md, asText] })] }), 'ATTR_INVALID', /signingTime/);
  const gen2026 = encodeAttribute(OID.signingTime, tlv(Tag.GENERALIZED_TIME, Buffer.from('20260101000000Z')));
  expectSigner(signedData({ signerInfos: [signerInfo({ attrs: [ct, md, gen2026] })] }), 'ATTR_INVALID', /requires UTCTime/);
  const badDate = encodeAttribute(OID.signingTime, tlv(Tag.UTC_TIME, Buffer.from('261341000000Z')));
  expectSigner(signedData({ signerInfos: [signerInfo({ attrs: [ct, md, badDate] })] }), 'ATTR_INVALID', /signingTime/);
});

test('signed attributes that are not DER are ATTR_INVALID (lengths, indefinite form)', () => {
  const attrs = stdAttrs();
  // Non-minimal length on the SET itself (0x81 for a length below 128 is not DER).
  const inner = Buffer.concat([attrs[0]!]);
  const nonMinimal = Buffer.concat([Buffer.of(0x31, 0x81, inner.length), inner]);
  expectSigner(signedData({ signerInfos: [signerInfo({ rawSet: nonMinimal })] }), 'ATTR_INVALID', /not DER/);
  // Indefinite length.
  const indef = Buffer.concat([Buffer.of(0x31, 0x80), ...[...attrs].sort(Buffer.compare), Buffer.of(0, 0)]);
  expectSigner(signedData({ signerInfos: [signerInfo({ rawSet: indef })] }), 'ATTR_INVALID', /not DER/);
});

test('signed attributes out of DER SET OF order (Outlook for Mac 2011): valid over the bytes received, with a warning; OpenSSL agrees', () => {
  // Changed on purpose (issue 12 item 7): this was ATTR_INVALID.
  const attrs = stdAttrs();
  const sorted = setOf(attrs);
  const reversed = set(...[...attrs].sort((a, b) => Buffer.compare(b, a)));
  assert.notDeepEqual(reversed, sorted);
  const der = signedData({ signerInfos: [signerInfo({ rawSet: reversed })] });
  const v = verifySignedData(der);
  assert.equal(v.status, 'valid', v.message);
  assert.ok(v.signers[0]!.warnings.some((w) => /not in DER SET OF order/.test(w)), v.signers[0]!.warnings.join(' | '));
  assert.equal(v.signers[0]!.signingTime?.toISOString(), '2026-01-01T00:00:00.000Z');
  // The peer: openssl cms -verify checks the signature over the attributes as received too.
  const file = join(pki.dir, 'unsorted-attrs.der');
  writeFileSync(file, der);
  const out = execFileSync('openssl', ['cms', '-verify', '-binary', '-inform', 'DER', '-in', file, '-CAfile', pki.caPath, '-purpose', 'any'], { stdio: ['ignore', 'pipe', 'pipe'] });
  assert.deepEqual(out, content);
  // The signature binds the order received: a signature over the sorted form (what a re-sorting verifier would check) does not verify over these bytes.
  expectSigner(signedData({ signerInfos: [signerInfo({ rawSet: reversed, signature: cryptoSign('sha256', sorted, rsa.key) })] }), 'BAD_SIG');
  // Unsorted is no licence for a second reading: a repeated attribute type is still refused.
  const [ct, md, st] = attrs as [Buffer, Buffer, Buffer];
  const again = encodeAttribute(OID.messageDigest, octetString(hash('sha256', Buffer.from('other'))));
  expectSigner(signedData({ signerInfos: [signerInfo({ rawSet: set(st, md, ct, again) })] }), 'ATTR_INVALID');
});

test('eContent together with detached content is AMBIGUOUS_CONTENT; no content at all too', () => {
  const der = signedData({ signerInfos: [signerInfo({})] });
  throwsCode(() => verifySignedData(der, { detachedContent: content }), 'AMBIGUOUS_CONTENT', /two readings/);
  const detached = signedData({ eContent: null, signerInfos: [signerInfo({})] });
  throwsCode(() => verifySignedData(detached), 'AMBIGUOUS_CONTENT', /no content/);
  assert.equal(verifySignedData(detached, { detachedContent: content }).status, 'valid');
});

test('a signature longer than the key allows is BAD_SIG before node:crypto sees it', () => {
  const good = cryptoSign('sha256', setOf(stdAttrs()), rsa.key);
  const long = Buffer.concat([Buffer.alloc(1), good]);
  expectSigner(signedData({ signerInfos: [signerInfo({ signature: long })] }), 'BAD_SIG', /257 bytes, more than/);
  const ecLong = Buffer.alloc(1000, 0x30);
  expectSigner(signedData({ signerInfos: [signerInfo({ id: ec, sigAlg: sequence(oid(OID.ecdsaWithSHA256)), signature: ecLong })] }), 'BAD_SIG', /more than/);
  const flipped = Buffer.from(good);
  flipped.writeUInt8(flipped.readUInt8(10) ^ 1, 10);
  expectSigner(signedData({ signerInfos: [signerInfo({ signature: flipped })] }), 'BAD_SIG', /does not verify/);
});

test('signer certificate not found is CERT_UNTRUSTED with a plain explanation; extra certificates fix it', () => {
  const der = signedData({ signerInfos: [signerInfo({})], certs: [ec.cert.der] });
  const v = expectSigner(der, 'CERT_UNTRUSTED', /cannot be checked/);
  assert.equal(v.signers[0]!.signatureAlgorithm, 'rsassa-pkcs1-v1_5');
  assert.equal(v.signers[0]!.digestAlgorithm, 'sha256');
  assert.equal(verifySignedData(der, { certificates: [rsa.cert] }).status, 'valid');
});

test('one failing signer among two valid ones fails the message, and every signer is reported', () => {
  const bad = Buffer.from(cryptoSign('sha256', setOf(stdAttrs()), rsa2.key));
  bad.writeUInt8(bad.readUInt8(5) ^ 0x40, 5);
  const der = signedData({
    signerInfos: [
      signerInfo({}),
      signerInfo({ id: rsa2, signature: bad }),
      signerInfo({ id: ec, sigAlg: sequence(oid(OID.ecdsaWithSHA256)) }),
    ],
  });
  const v = verifySignedData(der);
  assert.equal(v.status, 'invalid');
  assert.equal(v.code, 'BAD_SIG');
  assert.equal(v.signers.length, 3);
  assert.deepEqual(v.signers.map((s) => s.status).sort(), ['invalid', 'valid', 'valid']);
  const failed = v.signers.find((s) => s.status === 'invalid')!;
  assert.equal(failed.certificate?.fingerprint256, rsa2.cert.fingerprint256);
  assert.match(v.message, /of 3 is not valid/);
});

test('digest policy: MD5 is WEAK_ALG, SHA-1 verifies with a warning, unknown digests are UNSUPPORTED_ALG', () => {
  const md5 = signerInfo({ attrs: stdAttrs(content, { hash: 'md5' }), digestAlg: sequence(oid(OID.md5), NULL), hashName: 'md5' });
  expectSigner(signedData({ signerInfos: [md5] }), 'WEAK_ALG');
  const sha1 = signerInfo({ attrs: stdAttrs(content, { hash: 'sha1' }), digestAlg: sequence(oid(OID.sha1)), hashName: 'sha1' });
  const v = verifySignedData(signedData({ signerInfos: [sha1] }));
  assert.equal(v.status, 'valid', v.message);
  assert.equal(v.signers[0]!.digestAlgorithm, 'sha1');
  assert.ok(v.signers[0]!.warnings.some((w) => /sha1/.test(w)));
  const unknown = signerInfo({ digestAlg: sequence(oid('1.2.3.4')) });
  expectSigner(signedData({ signerInfos: [unknown] }), 'UNSUPPORTED_ALG');
});

test('signature algorithm must agree with the key and the digest; both RSA identifier forms are accepted', () => {
  expectSigner(signedData({ signerInfos: [signerInfo({ sigAlg: sequence(oid(OID.ecdsaWithSHA256)) })] }), 'UNSUPPORTED_ALG', /does not match/);
  expectSigner(signedData({ signerInfos: [signerInfo({ sigAlg: sequence(oid(OID.sha384WithRSAEncryption), NULL) })] }), 'UNSUPPORTED_ALG', /sha384/);
  assert.equal(verifySignedData(signedData({ signerInfos: [signerInfo({ sigAlg: sequence(oid(OID.sha256WithRSAEncryption), NULL) })] })).status, 'valid');
  assert.equal(verifySignedData(signedData({ signerInfos: [signerInfo({ sigAlg: sequence(oid(OID.sha256WithRSAEncryption)) })] })).status, 'valid');
  expectSigner(signedData({ signerInfos: [signerInfo({ sigAlg: sequence(oid(OID.md5WithRSAEncryption), NULL) })] }), 'WEAK_ALG');
});

test('RSASSA-PSS: explicit parameters, SHA-1 defaults flagged, hash must equal digestAlgorithm', () => {
  const pss = (h: string, salt: number) => ({ padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: salt, hashName: h });
  const params256 = sequence(explicit(0, SHA256), explicit(1, sequence(oid(OID.mgf1), SHA256)), explicit(2, integer(32)));
  const ok = signerInfo({ sigAlg: sequence(oid(OID.rsassaPss), params256), signOptions: pss('sha256', 32) });
  const v = verifySignedData(signedData({ signerInfos: [ok] }));
  assert.equal(v.status, 'valid', v.message);
  assert.equal(v.signers[0]!.signatureAlgorithm, 'rsassa-pss');
  // All fields DEFAULT: SHA-1, MGF1-SHA-1, salt 20.
  const defaults = signerInfo({
    attrs: stdAttrs(content, { hash: 'sha1' }),
    digestAlg: sequence(oid(OID.sha1)),
    sigAlg: sequence(oid(OID.rsassaPss), sequence()),
    hashName: 'sha1',
    signOptions: pss('sha1', 20),
  });
  const d = verifySignedData(signedData({ signerInfos: [defaults] }));
  assert.equal(d.status, 'valid', d.message);
  assert.ok(d.signers[0]!.warnings.some((w) => /defaults/.test(w)));
  // Salt length is read: a 32-byte salt under "salt 20" parameters fails.
  const wrongSalt = signerInfo({ sigAlg: sequence(oid(OID.rsassaPss), sequence(explicit(0, SHA256), explicit(1, sequence(oid(OID.mgf1), SHA256)))), signOptions: pss('sha256', 32) });
  expectSigner(signedData({ signerInfos: [wrongSalt] }), 'BAD_SIG');
  // PSS hash differs from digestAlgorithm.
  const params512 = sequence(explicit(0, sequence(oid(OID.sha512))), explicit(1, sequence(oid(OID.mgf1), sequence(oid(OID.sha512)))), explicit(2, integer(64)));
  expectSigner(signedData({ signerInfos: [signerInfo({ sigAlg: sequence(oid(OID.rsassaPss), params512) })] }), 'UNSUPPORTED_ALG', /differs/);
  // Parameters absent: RFC 4055 requires them in a signature.
  expectSigner(signedData({ signerInfos: [signerInfo({ sigAlg: sequence(oid(OID.rsassaPss)) })] }), 'UNSUPPORTED_ALG');
});

test('EdDSA digest is fixed by RFC 8419', () => {
  const ed = pki.identity('ed25519');
  const si = signerInfo({ id: ed, sigAlg: sequence(oid(OID.Ed25519)), hashName: null });
  expectSigner(signedData({ signerInfos: [si], certs: [ed.cert.der] }), 'UNSUPPORTED_ALG', /sha512/);
});

test('ESS signingCertificateV2 naming another certificate is ATTR_INVALID (certificate substitution)', () => {
  const attrs = [...stdAttrs(), encodeSigningCertificateV2Attribute(rsa2.cert)];
  expectSigner(signedData({ signerInfos: [signerInfo({ attrs })] }), 'ATTR_INVALID', /different certificate/);
  const own = [...stdAttrs(), encodeSigningCertificateV2Attribute(rsa.cert)];
  const v = verifySignedData(signedData({ signerInfos: [signerInfo({ attrs: own })] }));
  assert.equal(v.status, 'valid');
  assert.ok(!v.signers[0]!.warnings.some((w) => /ESS/.test(w)));
});

test('CMSAlgorithmProtection that disagrees with the SignerInfo is ATTR_INVALID', () => {
  const attrs = [...stdAttrs(), encodeAlgorithmProtectionAttribute(sequence(oid(OID.sha512)), RSA_ENC)];
  expectSigner(signedData({ signerInfos: [signerInfo({ attrs })] }), 'ATTR_INVALID', /CMSAlgorithmProtection/);
  const agree = [...stdAttrs(), encodeAlgorithmProtectionAttribute(SHA256, RSA_ENC)];
  assert.equal(verifySignedData(signedData({ signerInfos: [signerInfo({ attrs: agree })] })).status, 'valid');
});

test('a countersignature among the signed attributes is ATTR_INVALID', () => {
  const attrs = [...stdAttrs(), encodeAttribute(OID.counterSignature, sequence(integer(1)))];
  expectSigner(signedData({ signerInfos: [signerInfo({ attrs })] }), 'ATTR_INVALID', /countersignature/);
});

// RFC 5652 11.4: a countersignature signs the countersigned SignerInfo's signature value.
const MAIN_SIG = cryptoSign('sha256', setOf(stdAttrs()), rsa.key);
const ECDSA_SHA256 = sequence(oid(OID.ecdsaWithSHA256));

function countersignature(o: { attrs?: Buffer[]; over?: Uint8Array; unsigned?: Buffer[] } = {}): Buffer {
  const attrs = o.attrs ?? [
    encodeAttribute(OID.messageDigest, octetString(hash('sha256', o.over ?? MAIN_SIG))),
    encodeAttribute(OID.signingTime, time(new Date('2026-01-02T00:00:00Z'))),
  ];
  return signerInfo({ id: ec, attrs, sigAlg: ECDSA_SHA256, ...(o.unsigned ? { unsigned: o.unsigned } : {}) });
}

function countersigned(values: Buffer[], opts = {}): SignedDataVerification {
  const v = verifySignedData(signedData({ signerInfos: [signerInfo({ signature: MAIN_SIG, unsigned: [encodeAttribute(OID.counterSignature, ...values)] })] }), opts);
  // Whatever the countersignatures are, the countersigned signer's verdict is its own.
  assert.equal(v.status, 'valid', v.message);
  assert.equal(v.signers[0]!.status, 'valid', v.signers[0]!.message);
  return v;
}

test('countersignatures: a good one is valid, with its certificate; without one there is no countersignatures field', () => {
  const v = countersigned([countersignature()]);
  const [c, ...rest] = v.signers[0]!.countersignatures!;
  assert.equal(rest.length, 0);
  assert.equal(c!.status, 'valid', c!.message);
  assert.equal(c!.certificate, v.certificates.find((x) => x.serialHex === ec.cert.serialHex));
  assert.match(c!.message, /over signature 1's value.*for path validation to decide/);
  assert.ok(!('countersignatures' in verifySignedData(signedData({ signerInfos: [signerInfo({})] })).signers[0]!));
});

test('countersignatures: wrong digest, a contentType attribute, a bad signature, an unknown signer are each reported, never thrown', () => {
  const contentTyped = [
    encodeAttribute(OID.contentType, oid(OID.data)),
    encodeAttribute(OID.messageDigest, octetString(hash('sha256', MAIN_SIG))),
  ];
  const forged = signerInfo({ id: ec, attrs: [encodeAttribute(OID.messageDigest, octetString(hash('sha256', MAIN_SIG)))], sigAlg: ECDSA_SHA256, signature: cryptoSign('sha256', Buffer.from('other'), ec.key) });
  const cases: Array<[Buffer, ErrorCode]> = [
    [countersignature({ over: content }), 'DIGEST_MISMATCH'],
    [countersignature({ attrs: contentTyped }), 'ATTR_INVALID'],
    [forged, 'BAD_SIG'],
    [signerInfo({ id: pki.identity('p256', 'stranger'), attrs: [encodeAttribute(OID.messageDigest, octetString(hash('sha256', MAIN_SIG)))], sigAlg: ECDSA_SHA256 }), 'CERT_UNTRUSTED'],
  ];
  for (const [cs, code] of cases) {
    const c = countersigned([cs]).signers[0]!.countersignatures![0]!;
    assert.equal(c.status, 'invalid');
    assert.equal(c.code, code, c.message);
  }
  assert.match(countersigned([countersignature({ attrs: contentTyped })]).signers[0]!.countersignatures![0]!.message, /contentType/);
});

test('countersignatures: the first level only, at most maxSigners, an unreadable one a warning', () => {
  const nested = countersignature({ unsigned: [encodeAttribute(OID.counterSignature, countersignature())] });
  const n = countersigned([nested]).signers[0]!.countersignatures![0]!;
  assert.equal(n.status, 'valid', n.message);
  assert.equal(n.countersignatures, undefined);
  assert.ok(n.warnings.some((w) => /only the first level/.test(w)), n.warnings.join(' | '));

  const two = countersigned([countersignature(), countersignature({ over: content })], { limits: { maxSigners: 1 } }).signers[0]!;
  assert.equal(two.countersignatures!.length, 1);
  assert.ok(two.warnings.some((w) => /2 countersignatures; only the first 1/.test(w)), two.warnings.join(' | '));

  const junk = countersigned([integer(1)]).signers[0]!;
  assert.deepEqual(junk.countersignatures, []);
  assert.ok(junk.warnings.some((w) => /Countersignature 1 is not a readable SignerInfo/.test(w)), junk.warnings.join(' | '));
});

test('our own output tampered anywhere in the signed attributes fails', () => {
  const der = signData(content, { signers: [{ certificate: rsa.cert, key: rsa.key }] });
  const idx = der.indexOf(Buffer.from(oid(OID.signingTime)));
  assert.ok(idx > 0);
  const t = Buffer.from(der);
  t.writeUInt8(t.readUInt8(idx + 8) ^ 1, idx + 8); // a digit of the UTCTime
  const v = verifySignedData(t);
  assert.equal(v.status, 'invalid');
  assert.ok(['BAD_SIG', 'ATTR_INVALID'].includes(v.code!), v.message);
});

test('too many signed attributes is LIMIT for the whole object', () => {
  const many = Array.from({ length: 70 }, (_, i) => encodeAttribute(`1.2.3.${i}`, NULL));
  const der = signedData({ signerInfos: [signerInfo({ attrs: [...stdAttrs(), ...many] })] });
  throwsCode(() => verifySignedData(der), 'LIMIT', /attributes/);
  assert.equal(verifySignedData(der, { limits: { maxAttributes: 100 } }).status, 'valid');
});

test('carried certificates: other CertificateChoices are skipped with a warning; counts are bounded; CRLs kept raw', () => {
  const attrCert = implicit(2, true, integer(1));
  const der = signedData({ signerInfos: [signerInfo({})], certs: [rsa.cert.der, attrCert] });
  const v = verifySignedData(der);
  assert.equal(v.status, 'valid', v.message);
  assert.equal(v.certificates.length, 1);
  assert.ok(v.warnings.some((w) => /other than X\.509/.test(w)));
  const many = signedData({ signerInfos: [signerInfo({})], certs: Array.from({ length: 5 }, () => rsa.cert.der) });
  throwsCode(() => verifySignedData(many, { limits: { maxCertificates: 4 } }), 'LIMIT', /certificates/);
  // RevocationInfoChoices are returned as received (the PKI layer parses CRLs).
  const crl = sequence(sequence(integer(1), sequence(oid(OID.sha256WithRSAEncryption), NULL)), sequence(), octetString(Buffer.of(1)));
  const withCrl = signData(content, { signers: [{ certificate: rsa.cert, key: rsa.key }], crls: [crl] });
  const vc = verifySignedData(withCrl);
  assert.equal(vc.status, 'valid');
  assert.deepEqual(vc.crls.map((c) => Buffer.from(c)), [crl]);
});

test('memoised checks are per certificate and per exact bytes: a passed ESS check does not carry over to another signer', () => {
  // Passes for rsa (remembered), then the same attribute bytes under rsa2's signature must still fail.
  const essForRsa = encodeSigningCertificateV2Attribute(rsa.cert);
  for (let i = 0; i < 2; i++) assert.equal(verifySignedData(signedData({ signerInfos: [signerInfo({ attrs: [...stdAttrs(), essForRsa] })] })).status, 'valid');
  const swapped = signerInfo({ id: rsa2, attrs: [...stdAttrs(), essForRsa] });
  expectSigner(signedData({ signerInfos: [swapped] }), 'ATTR_INVALID', /different certificate/);
});

test('memoised SMIMECapabilities: each verification gets its own objects', () => {
  const der = signData(content, { signers: [{ certificate: ec.cert, key: ec.key }] });
  const a = verifySignedData(der).signers[0]!.capabilities!;
  const b = verifySignedData(der).signers[0]!.capabilities!;
  assert.deepEqual(a, b);
  assert.ok(a.length > 0);
  const withParams = a.find((c) => c.parameters)!;
  assert.notEqual(a, b);
  assert.notEqual(withParams, b.find((c) => c.parameters));
  withParams.parameters![0] = withParams.parameters![0]! ^ 0xff;
  withParams.capabilityId = '1.2.3';
  assert.deepEqual(verifySignedData(der).signers[0]!.capabilities, b);
});

test('the carried-certificate cache returns a certificate only for the exact same bytes', () => {
  const der = signData(content, { signers: [{ certificate: rsa.cert, key: rsa.key }] });
  const first = verifySignedData(der).certificates[0]!;
  assert.equal(verifySignedData(Buffer.from(der)).certificates[0], first, 'same bytes: the cached object');
  // Same length and same tail (signature value), one byte changed inside the subject name.
  const at = der.indexOf(Buffer.from(rsa.cert.subjectText.split('=').pop()!.slice(0, 4)), der.indexOf(rsa.cert.der.subarray(0, 16)));
  assert.ok(at > 0);
  const altered = Buffer.from(der);
  altered[at] = altered[at]! ^ 0x01;
  const other = verifySignedData(altered).certificates[0]!;
  assert.notEqual(other, first);
  assert.equal(other.der.equals(first.der), false);
  assert.equal(other.der.subarray(-48).equals(first.der.subarray(-48)), true);
});

test('messageDigest attributes written from a cached prefix equal the general encoding for every digest length', async () => {
  const { encodeMessageDigestAttribute } = await import('../../src/cms/signed-data/signed-attributes.ts');
  for (const len of [16, 20, 28, 32, 48, 64, 32, 64]) {
    const digest = createHash('sha512').update(String(len)).digest().subarray(0, len);
    assert.deepEqual(encodeMessageDigestAttribute(digest), encodeAttribute(OID.messageDigest, octetString(digest)));
  }
});

test('encodeSignedData writes what the nested DER helpers write, across length-field sizes, detached or not', async () => {
  const { encodeSignedData } = await import('../../src/cms/signed-data/encode.ts');
  const si1 = signerInfo({});
  const si2 = signerInfo({ id: rsa2 });
  const crl = sequence(integer(7));
  for (const size of [0, 1, 100, 117, 127, 128, 255, 256, 65_535, 65_536, 70_000]) {
    const c = Buffer.alloc(size, 0x61);
    for (const detached of [false, true]) {
      for (const signers of [[si1], [si2, si1]]) {
        const layout = { contentType: OID.data, digestAlgorithms: [SHA256], certificates: [rsa.cert.der, ec.cert.der], crls: size % 2 ? [crl] : [], signerVersions: [1] };
        const encap = detached ? sequence(oid(OID.data)) : sequence(oid(OID.data), explicit(0, octetString(c)));
        const fields = [integer(1), setOf([SHA256]), encap, implicit(0, true, ...[rsa.cert.der, ec.cert.der].sort(Buffer.compare)), ...(layout.crls.length ? [implicit(1, true, crl)] : []), setOf(signers)];
        const general = sequence(oid(OID.signedData), explicit(0, sequence(...fields)));
        assert.deepEqual(encodeSignedData(layout, detached ? undefined : c, signers), general, `size ${size} detached ${detached} signers ${signers.length}`);
      }
    }
  }
});

test('encodeSignedAttributes sorts like setOf (X.690 11.6), whatever the order given, equal members kept', () => {
  const members = [sequence(oid('1.2.840.113549.1.9.3')), sequence(oid('1.2.840.113549.1.9.4'), octetString(Buffer.alloc(32, 1))), sequence(oid('1.2.840.113549.1.9.5')), utf8String('a'), utf8String('ab'), utf8String('a'), Buffer.of(0x30, 0x00), Buffer.of(0x30, 0x00, 0x00)];
  for (let round = 0; round < 50; round++) {
    const shuffled = [...members].sort(() => Math.random() - 0.5);
    assert.deepEqual(encodeSignedAttributes([...shuffled]), setOf(shuffled));
  }
});
