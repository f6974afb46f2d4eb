import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { TestPki, type KeyKind } from '../helpers/pki.ts';
import { signData, buildSignerInfo, layoutSignedData, signerDigestName } from '../../src/cms/signed-data/sign.ts';
import { encodeSignedDataParts, encodeSignedData } from '../../src/cms/signed-data/encode.ts';
import { sequence, oid, explicit, octetString, integer, setOf, implicit, sortDer } from '../../src/asn1/der.ts';
import { verifySignedData, verifyParsedSignedData } from '../../src/cms/signed-data/verify.ts';
import { parseSignedData } from '../../src/cms/signed-data/parse.ts';
import { parseContentInfo } from '../../src/cms/content-info.ts';
import { computeDigest, createDigest } from '../../src/cms/algorithms/digest.ts';
import { DEFAULT_CAPABILITIES } from '../../src/cms/capabilities.ts';
import { OID } from '../../src/asn1/oids.ts';
import { isKakitomeError } from '../../src/errors.ts';
import { issueCertificate } from '../../src/x509/issue.ts';
import { createPublicKey } from 'node:crypto';

const pki = new TestPki();
after(() => pki.cleanup());
const content = Buffer.from('Content-Type: text/plain\r\n\r\nHello, signed world.\r\n');
// Signing times are taken after the identities exist: certificates are backdated only 60 s.
const now = (): Date => new Date();

const cases: { kind: KeyKind; sig: string; digest: string; rsaPadding?: 'pss'; hash?: 'sha384' | 'sha512' }[] = [
  { kind: 'rsa2048', sig: 'rsassa-pkcs1-v1_5', digest: 'sha256' },
  { kind: 'rsa2048', sig: 'rsassa-pkcs1-v1_5', digest: 'sha384', hash: 'sha384' },
  { kind: 'rsa2048', sig: 'rsassa-pkcs1-v1_5', digest: 'sha512', hash: 'sha512' },
  { kind: 'rsa2048', sig: 'rsassa-pss', digest: 'sha256', rsaPadding: 'pss' },
  { kind: 'rsa2048', sig: 'rsassa-pss', digest: 'sha512', rsaPadding: 'pss', hash: 'sha512' },
  { kind: 'p256', sig: 'ecdsa-with-sha256', digest: 'sha256' },
  { kind: 'p384', sig: 'ecdsa-with-sha384', digest: 'sha384' },
  { kind: 'p521', sig: 'ecdsa-with-sha512', digest: 'sha512' },
  { kind: 'ed25519', sig: 'ed25519', digest: 'sha512' },
  { kind: 'ed448', sig: 'ed448', digest: 'shake256' },
  { kind: 'mldsa44', sig: 'ml-dsa-44', digest: 'sha512' },
  { kind: 'mldsa65', sig: 'ml-dsa-65', digest: 'sha512' },
  { kind: 'mldsa87', sig: 'ml-dsa-87', digest: 'sha512' },
];

for (const c of cases) {
  for (const detached of [false, true]) {
    test(`${c.sig}/${c.digest} ${detached ? 'detached' : 'encapsulated'} round-trips`, () => {
      const id = pki.identity(c.kind);
      const t = now();
      const der = signData(content, { signers: [{ certificate: id.cert, key: id.key, rsaPadding: c.rsaPadding, hash: c.hash }], detached, now: t });
      const v = verifySignedData(der, detached ? { detachedContent: content } : {});
      assert.equal(v.status, 'valid', v.message);
      assert.equal(v.detached, detached);
      assert.deepEqual(v.content, content);
      assert.equal(v.contentType, OID.data);
      const s = v.signers[0]!;
      assert.equal(s.signatureAlgorithm, c.sig);
      assert.equal(s.digestAlgorithm, c.digest);
      assert.equal(s.certificate?.fingerprint256, id.cert.fingerprint256);
      assert.equal(s.signingTime?.getTime(), Math.floor(t.getTime() / 1000) * 1000);
      assert.deepEqual(s.warnings, []);
      // Tampering with the content must be caught.
      const other = Buffer.from(content);
      other.writeUInt8(other.readUInt8(other.length - 3) ^ 1, other.length - 3);
      if (detached) assert.equal(verifySignedData(der, { detachedContent: other }).signers[0]!.code, 'DIGEST_MISMATCH');
    });
  }
}

test('signed attributes carry the S/MIME set: capabilities, encryption key preference, ESS, algorithm protection', () => {
  const id = pki.identity('rsa2048');
  const enc = pki.identity('p256', 'enc-p256');
  const der = signData(content, { signers: [{ certificate: id.cert, key: id.key, encryptionKeyPreference: enc.cert }], now: now() });
  const s = verifySignedData(der).signers[0]!;
  assert.equal(s.status, 'valid');
  assert.deepEqual(s.capabilities?.map((c) => c.capabilityId), DEFAULT_CAPABILITIES.map((c) => c.capabilityId));
  assert.equal(s.encryptionKeyPreference?.kind, 'issuerAndSerialNumber');
  assert.ok(s.encryptionKeyPreference?.kind === 'issuerAndSerialNumber' && enc.cert.matchesIssuerSerial(s.encryptionKeyPreference.issuer, s.encryptionKeyPreference.serial));
  for (const o of [OID.contentType, OID.messageDigest, OID.signingTime, OID.smimeCapabilities, OID.smimeEncryptionKeyPreference, OID.signingCertificateV2, OID.cmsAlgorithmProtect]) {
    assert.ok(s.signedAttributes.has(o), `missing ${o}`);
  }
});

test('options: no signing time, no capabilities, custom content type, SKI identifier, external certificates', () => {
  const id = pki.identity('p256');
  const der = signData(content, {
    signers: [{ certificate: id.cert, key: id.key, signingTime: false, capabilities: false, identifier: 'subjectKeyIdentifier' }],
    contentType: OID.compressedData,
    includeSignerCertificates: false,
    certificates: [pki.caCert],
    crls: [],
    now: now(),
  });
  const bare = verifySignedData(der);
  assert.equal(bare.status, 'invalid');
  assert.equal(bare.signers[0]!.code, 'CERT_UNTRUSTED');
  assert.match(bare.signers[0]!.message, /neither in the message nor among the certificates given/);
  const v = verifySignedData(der, { certificates: [id.cert] });
  assert.equal(v.status, 'valid', v.message);
  assert.equal(v.contentType, OID.compressedData);
  assert.equal(v.certificates.length, 1);
  const s = v.signers[0]!;
  assert.equal(s.identifier.kind, 'subjectKeyIdentifier');
  assert.equal(s.signingTime, undefined);
  assert.equal(s.capabilities, undefined);
  assert.ok(!s.signedAttributes.has(OID.smimeCapabilities));
  // SignedData version 3 (SKI signer, non-data content), SignerInfo version 3 (RFC 5652 5.1, 5.3).
  const parsed = parseSignedData(parseContentInfo(der).content);
  assert.equal(parsed.version, 3);
  assert.equal(parsed.signerInfos[0]!.version, 3);
  assert.equal(parseSignedData(parseContentInfo(signData(content, { signers: [{ certificate: id.cert, key: id.key }] })).content).version, 1);
});

test('multiple signers of mixed types are all reported, digests listed once each', () => {
  const ids = [pki.identity('rsa2048'), pki.identity('p384'), pki.identity('ed25519'), pki.identity('mldsa65')];
  const der = signData(content, { signers: ids.map((i) => ({ certificate: i.cert, key: i.key })), now: now() });
  const v = verifySignedData(der);
  assert.equal(v.status, 'valid', v.message);
  assert.equal(v.signers.length, 4);
  assert.deepEqual(new Set(v.signers.map((s) => s.signatureAlgorithm)), new Set(['rsassa-pkcs1-v1_5', 'ecdsa-with-sha384', 'ed25519', 'ml-dsa-65']));
  const parsed = parseSignedData(parseContentInfo(der).content);
  assert.deepEqual(new Set(parsed.digestAlgorithms.map((d) => d.oid)), new Set([OID.sha256, OID.sha384, OID.sha512]));
  assert.equal(parsed.digestAlgorithms.length, 3);
});

test('streaming parts: indefinite-length BER with segmented eContent verifies, and the low-level verify path agrees', () => {
  const a = pki.identity('rsa2048');
  const b = pki.identity('ed448');
  const options = { signers: [{ certificate: a.cert, key: a.key }, { certificate: b.cert, key: b.key }], now: now() };
  const { layout, signers } = layoutSignedData(options);
  const parts = encodeSignedDataParts(layout, false);
  const chunks = [content.subarray(0, 10), content.subarray(10, 11), Buffer.alloc(0), content.subarray(11)];
  const hashes = new Map(signers.map((s) => [s.scheme.digest, createDigest(s.scheme.digest)]));
  const out = [parts.header];
  for (const ch of chunks) {
    for (const h of hashes.values()) h.update(ch);
    out.push(parts.encodeContentChunk(ch));
  }
  const digests = new Map([...hashes].map(([n, h]) => [n, h.digest()]));
  const sis = signers.map((s) => buildSignerInfo(digests.get(s.scheme.digest)!, s, layout.contentType, now()));
  out.push(parts.trailer(sis));
  const ber = Buffer.concat(out);
  assert.equal(ber[1], 0x80, 'outer length is indefinite');
  const v = verifySignedData(ber);
  assert.equal(v.status, 'valid', v.message);
  assert.deepEqual(v.content, content);

  const parsed = parseSignedData(parseContentInfo(ber).content);
  const low = verifyParsedSignedData(parsed, (d) => computeDigest(d, content), { detached: false });
  assert.equal(low.status, 'valid');
  const wrong = verifyParsedSignedData(parsed, (d) => computeDigest(d, Buffer.from('other')), { detached: false });
  assert.equal(wrong.code, 'DIGEST_MISMATCH');
  assert.equal(signerDigestName(options.signers[1]!), 'shake256');

  // Detached streaming framing.
  const dparts = encodeSignedDataParts(layout, true);
  const dber = Buffer.concat([dparts.header, dparts.trailer(sis)]);
  assert.equal(verifySignedData(dber, { detachedContent: content }).status, 'valid');
});

test('signing refuses a key that does not belong to the certificate, and hash choices the algorithm fixes', () => {
  const a = pki.identity('rsa2048');
  const b = pki.identity('p256');
  const e = pki.identity('ed25519');
  assert.throws(() => signData(content, { signers: [{ certificate: a.cert, key: b.key }] }), (err) => isKakitomeError(err, 'KEY_INVALID'));
  assert.throws(() => signData(content, { signers: [{ certificate: e.cert, key: e.key, hash: 'sha256' }] }), (err) => isKakitomeError(err, 'INVALID_ARGUMENT'));
  assert.throws(() => signData(content, { signers: [{ certificate: b.cert, key: b.key, rsaPadding: 'pss' }] }), (err) => isKakitomeError(err, 'INVALID_ARGUMENT'));
  assert.throws(() => signData(content, { signers: [] }), (err) => isKakitomeError(err, 'INVALID_ARGUMENT'));
  // JavaScript callers: a missing or wrong-typed certificate or key is a coded error, not a TypeError.
  type Signer = Parameters<typeof signData>[1]['signers'][number];
  for (const bad of [{ key: a.key }, { certificate: a.cert }, { certificate: a.cert, key: a.key.export({ format: 'pem', type: 'pkcs8' }) }, { certificate: a.cert.der, key: a.key }, { certificate: a.cert, key: createPublicKey(a.key) }]) {
    assert.throws(() => signData(content, { signers: [bad as unknown as Signer] }), (err) => isKakitomeError(err, 'INVALID_ARGUMENT'));
  }
});

test('per-signer caching does not leak choices between calls', () => {
  const a = pki.identity('rsa2048');
  const caps = [{ capabilityId: OID.aes128_GCM }];
  const one = verifySignedData(signData(content, { signers: [{ certificate: a.cert, key: a.key, capabilities: caps }] })).signers[0]!;
  const two = verifySignedData(signData(content, { signers: [{ certificate: a.cert, key: a.key, signingTime: false }] })).signers[0]!;
  const three = verifySignedData(signData(content, { signers: [{ certificate: a.cert, key: a.key, capabilities: caps, signingTime: new Date('2030-01-02T03:04:05Z') }] })).signers[0]!;
  assert.deepEqual(one.capabilities, [{ capabilityId: OID.aes128_GCM }]);
  assert.equal(two.capabilities?.length, DEFAULT_CAPABILITIES.length);
  assert.equal(two.signingTime, undefined);
  assert.ok(one.signingTime);
  assert.equal(three.signingTime?.toISOString(), '2030-01-02T03:04:05.000Z');
  assert.deepEqual(three.capabilities, one.capabilities);
});

test('a renewed certificate with the same key (same subjectKeyIdentifier): ESS picks the one that signed', () => {
  const id = pki.identity('p256', 'renewed');
  const renewed = issueCertificate({
    subject: { commonName: 'Test renewed (2)', emailAddress: id.email },
    publicKey: createPublicKey(id.key),
    issuer: pki.caCert,
    signingKey: pki.caKey,
    keyUsage: ['digitalSignature'],
    emails: [id.email],
  });
  assert.deepEqual(Buffer.from(renewed.subjectKeyIdentifier!), Buffer.from(id.cert.subjectKeyIdentifier!));
  for (const [signer, other] of [[id.cert, renewed], [renewed, id.cert]] as const) {
    const der = signData(content, { signers: [{ certificate: signer, key: id.key, identifier: 'subjectKeyIdentifier' }], certificates: [other], now: now() });
    const v = verifySignedData(der);
    assert.equal(v.status, 'valid', v.message);
    assert.equal(v.signers[0]!.certificate?.fingerprint256, signer.fingerprint256);
    assert.equal(v.certificates.length, 2);
  }
});

test('signer options are checked at run time (JavaScript callers)', () => {
  const a = pki.identity('rsa2048');
  const bad = [{ hash: 'md5' }, { rsaPadding: 'x931' }, { identifier: 'email' }, { signingTime: new Date('nonsense') }];
  for (const extra of bad) {
    const signer = { certificate: a.cert, key: a.key, ...extra } as unknown as Parameters<typeof signData>[1]['signers'][0];
    assert.throws(() => signData(content, { signers: [signer] }), (err) => isKakitomeError(err, 'INVALID_ARGUMENT'), JSON.stringify(extra));
  }
});

test('single-allocation DER assembly equals the nested-helper encoding', () => {
  const a = pki.identity('rsa2048');
  for (const [body, crls] of [[content, []], [undefined, [sequence(integer(7))]], [Buffer.alloc(70_000, 0x61), []]] as const) {
    const { layout, signers } = layoutSignedData({ signers: [{ certificate: a.cert, key: a.key }], certificates: [pki.caCert], crls: [...crls] });
    const si = buildSignerInfo(computeDigest('sha256', body ?? content), signers[0]!, layout.contentType, now());
    const encap = body === undefined ? sequence(oid(OID.data)) : sequence(oid(OID.data), explicit(0, octetString(body)));
    const fields = [integer(1), setOf(layout.digestAlgorithms), encap, implicit(0, true, ...sortDer(layout.certificates))];
    if (crls.length) fields.push(implicit(1, true, ...crls));
    const expected = sequence(oid(OID.signedData), explicit(0, sequence(...fields, setOf([si]))));
    assert.deepEqual(encodeSignedData(layout, body, [si]), expected);
  }
});

test('a fresh capabilities array per message still signs correctly (cache is bounded, not stale)', () => {
  const a = pki.identity('p256');
  for (let i = 0; i < 40; i++) {
    const caps = [{ capabilityId: `1.2.3.${i}` }];
    const s = verifySignedData(signData(content, { signers: [{ certificate: a.cert, key: a.key, capabilities: caps }] })).signers[0]!;
    assert.equal(s.capabilities?.[0]?.capabilityId, `1.2.3.${i}`);
  }
});

test('a signer\'s kept layout follows its options: the certificates array changed in place, another array, another content type, no signer certificate', () => {
  const id = pki.identity('p256', 'layout-kept');
  const other = pki.identity('p256', 'layout-other');
  const signer = { certificate: id.cert, key: id.key };
  const carried = (der: Buffer) => parseSignedData(parseContentInfo(der).content).certificates.map((c) => c.fingerprint256).sort();
  const fingerprints = (...certs: { fingerprint256: string }[]) => certs.map((c) => c.fingerprint256).sort();
  const chain = [pki.caCert];
  assert.deepEqual(carried(signData(content, { signers: [signer], certificates: chain, detached: true })), fingerprints(id.cert, pki.caCert));
  assert.deepEqual(carried(signData(content, { signers: [signer], certificates: chain, detached: true })), fingerprints(id.cert, pki.caCert));
  chain.push(other.cert);
  assert.deepEqual(carried(signData(content, { signers: [signer], certificates: chain, detached: true })), fingerprints(id.cert, pki.caCert, other.cert));
  chain[1] = pki.caCert;
  assert.deepEqual(carried(signData(content, { signers: [signer], certificates: chain, detached: true })), fingerprints(id.cert, pki.caCert));
  assert.deepEqual(carried(signData(content, { signers: [signer], certificates: [other.cert], detached: true })), fingerprints(id.cert, other.cert));
  assert.deepEqual(carried(signData(content, { signers: [signer], detached: true })), fingerprints(id.cert));
  assert.deepEqual(carried(signData(content, { signers: [signer], certificates: [other.cert], includeSignerCertificates: false, detached: true })), fingerprints(other.cert));
  const typed = parseSignedData(parseContentInfo(signData(content, { signers: [signer], contentType: OID.signedData })).content);
  assert.equal(typed.contentType, OID.signedData);
  assert.equal(typed.version, 3);
  assert.equal(parseSignedData(parseContentInfo(signData(content, { signers: [signer] })).content).contentType, OID.data);
});
