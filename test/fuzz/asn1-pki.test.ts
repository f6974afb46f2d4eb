/**
 * Mutation fuzzing of the ASN.1 decoder, certificates, CRLs and OCSP responses.
 * Oracle: every input either parses or fails with a typed KakitomeError; the
 * lazily read certificate fields (extensions, public key, names) obey the same rule.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestPki } from '../helpers/pki.ts';
import { buildCrl } from '../pki/pki-builder.ts';
import { decode, readTime, readString, Tag } from '../../src/asn1/ber.ts';
import { isKakitomeError } from '../../src/errors.ts';
import { Certificate, parseCertificates } from '../../src/x509/certificate.ts';
import { parseCrl } from '../../src/pki/parse-crl.ts';
import { buildOcspRequest, parseOcspResponse, evaluateOcspResponse } from '../../src/pki/check-ocsp.ts';
import { checkCrl } from '../../src/pki/check-crl.ts';
import { parseContentInfo, encodeContentInfo } from '../../src/cms/content-info.ts';
import { readCertsOnly } from '../../src/smime/read-certs-only.ts';
import { sequence, integer, setOf, oid, implicit, tlv } from '../../src/asn1/der.ts';
import { OID } from '../../src/asn1/oids.ts';
import { encodePem } from '../../src/asn1/pem.ts';
import {
  readBasicConstraints, readExtKeyUsage, readNameConstraints, readCertificatePolicies,
  readDistributionPointUris, readAuthorityInfoAccess, readAuthorityKeyIdentifier,
} from '../../src/pki/read-certificate-extensions.ts';
import { readSubjectAltNames } from '../../src/x509/certificate-mailboxes.ts';
import { recognizeSmimeProfile } from '../../src/pki/recognize-smime-profile.ts';
import { loadPrivateKey } from '../../src/keys/private-key.ts';
import { fuzz, iterations, mutateText, seed, timeoutFor, assertTypedError, type Seed, REPLAYING } from './fuzz-kit.ts';

const pki = new TestPki('Kakitome Fuzz Root');
after(() => pki.cleanup());

const KINDS = ['rsa2048', 'p256', 'ed25519', 'x25519', 'mlkem768', 'mldsa44'] as const;
const certs = KINDS.map((k) => pki.identity(k));
const certSeeds: Seed[] = [seed('ca', pki.caCert.der), ...certs.map((c) => seed(c.kind, c.cert.der))];

const caParty = { cert: pki.caCert, key: pki.caKey };
const crlSeeds: Seed[] = [
  seed('crl-empty', buildCrl({ issuer: caParty })),
  seed('crl-revoked', buildCrl({ issuer: caParty, revoked: certs.slice(0, 3).map((c, i) => ({ cert: c.cert, reason: i })), crlNumber: 7 })),
  seed('crl-delta', buildCrl({ issuer: caParty, deltaBase: 6, freshestCrl: 'http://crl.example/delta.crl' })),
];

/** One real OCSP response from `openssl ocsp` (offline: request file in, response file out). */
function opensslOcspResponse(): Buffer {
  const dir = pki.dir;
  const target = certs[0]!.cert;
  const serial = Buffer.from(target.serial[0] === 0 ? target.serial.subarray(1) : target.serial).toString('hex').toUpperCase();
  writeFileSync(join(dir, 'index.txt'), `V\t391231235959Z\t\t${serial}\tunknown\t/CN=x\n`);
  writeFileSync(join(dir, 'req.der'), buildOcspRequest(target, pki.caCert, Buffer.alloc(16, 7)));
  execFileSync('openssl', ['ocsp', '-index', 'index.txt', '-rsigner', 'ca.pem', '-rkey', 'ca.key', '-CA', 'ca.pem', '-reqin', 'req.der', '-respout', 'resp.der', '-nmin', '60'], { cwd: dir, stdio: 'ignore' });
  return readFileSync(join(dir, 'resp.der'));
}
const ocspSeeds: Seed[] = [seed('ocsp', opensslOcspResponse())];

/** Touches every lazily parsed part of a certificate, as the verifier and path validation will. */
function readEverything(c: Certificate): void {
  void c.subjectKeyIdentifier;
  void c.keyUsage;
  void c.emailAddresses;
  void c.subjectText;
  void c.issuerText;
  void c.serialHex;
  void c.publicKey;
  readBasicConstraints(c);
  readExtKeyUsage(c);
  readSubjectAltNames(c);
  readNameConstraints(c);
  readCertificatePolicies(c);
  readDistributionPointUris(c);
  readAuthorityInfoAccess(c);
  readAuthorityKeyIdentifier(c);
  recognizeSmimeProfile(c);
}

test('seeds are valid', () => {
  for (const s of certSeeds) readEverything(Certificate.fromDer(s.bytes));
  for (const s of crlSeeds) parseCrl(s.bytes);
  for (const s of ocspSeeds) parseOcspResponse(s.bytes);
});

const all = [...certSeeds, ...crlSeeds, ...ocspSeeds];

test('decode (BER and DER) fails only with typed errors', { timeout: timeoutFor(4000, 2) }, async () => {
  const outcomes = await fuzz('decode', all, iterations(4000), (m) => {
    const ber = decode(m.bytes);
    // A successful decode must be navigable without untyped failures.
    const visit = (t: ReturnType<typeof decode>): void => {
      if (t.constructed) for (const c of t.children()) visit(c);
    };
    visit(ber);
    decode(m.bytes, { der: true });
  });
  assert.ok(REPLAYING || (outcomes.get('MALFORMED') ?? 0) > 0, 'the mutations reach the decoder errors');
});

test('Certificate.fromDer and the extension readers fail only with typed errors', { timeout: timeoutFor(3000) }, async () => {
  const outcomes = await fuzz('certificate', certSeeds, iterations(3000), (m) => readEverything(Certificate.fromDer(m.bytes)));
  assert.ok(REPLAYING || (outcomes.get('ok') ?? 0) > 0 && (outcomes.get('MALFORMED') ?? 0) > 0, `explores both sides: ${[...outcomes]}`);
});

test('PEM certificate parsing fails only with typed errors (damaged DER inside, damaged armour)', { timeout: timeoutFor(600) }, async () => {
  await fuzz('certificate-pem', certSeeds.slice(0, 2), iterations(300), (m) => {
    for (const c of parseCertificates(encodePem('CERTIFICATE', m.bytes))) readEverything(c);
  });
  const pemSeeds = certSeeds.slice(0, 3).map((s) => seed(`${s.name}-pem`, Buffer.from(encodePem('CERTIFICATE', s.bytes))));
  await fuzz('certificate-pem-text', pemSeeds, iterations(300), (m) => {
    for (const c of parseCertificates(m.bytes)) readEverything(c);
  }, undefined, mutateText);
});

const freshness = { now: new Date(), skewMs: 300_000, maxAgeMs: 86_400_000 };
const subject = certs[0]!.cert;

test('parseCrl and checkCrl: typed errors only; an accepted CRL gives the answer the CA signed', { timeout: timeoutFor(1000) }, async () => {
  // Oracle: the CA signed exactly the seed CRLs' tbsCertList bytes. checkCrl verifies that
  // signature, so a CRL it accepts must carry one of those TBS byte strings and give that
  // CRL's answer: not necessarily its own seed's (the splice mutator can replace a whole CRL
  // by another validly signed one, and 'revoked' is then right for the 'good' seed).
  const signed = new Map<string, string>();
  for (const s of crlSeeds) {
    const crl = parseCrl(s.bytes);
    try {
      signed.set(Buffer.from(crl.tbs).toString('hex'), checkCrl(subject, pki.caCert, crl, undefined, freshness).status);
    } catch (e) {
      assertTypedError(e, `${s.name} (seed)`); // the delta CRL seed is no complete CRL for checkCrl
    }
  }
  assert.deepEqual([...signed.values()], ['good', 'revoked']);
  await fuzz('crl', crlSeeds, iterations(1000), (m) => {
    const crl = parseCrl(m.bytes);
    const answer = checkCrl(subject, pki.caCert, crl, undefined, freshness);
    const expected = signed.get(Buffer.from(crl.tbs).toString('hex'));
    assert.ok(expected !== undefined, `accepted a CRL whose signed part the CA never signed: ${m.what}`);
    assert.equal(answer.status, expected, m.what);
  });
});

test('parseOcspResponse and evaluateOcspResponse: typed errors only; an accepted response gives the answer the responder signed', { timeout: timeoutFor(1000) }, async () => {
  // The same oracle as for CRLs: an accepted response carries ResponseData the responder signed.
  const signed = new Map(ocspSeeds.map((s) => {
    const r = parseOcspResponse(s.bytes);
    return [Buffer.from(r.tbs).toString('hex'), evaluateOcspResponse(r, subject, pki.caCert, freshness).status] as const;
  }));
  assert.deepEqual([...signed.values()], ['good']);
  await fuzz('ocsp', ocspSeeds, iterations(1000), (m) => {
    const r = parseOcspResponse(m.bytes);
    for (const c of r.certs) readEverything(c);
    const status = evaluateOcspResponse(r, subject, pki.caCert, freshness).status;
    const expected = signed.get(Buffer.from(r.tbs).toString('hex'));
    assert.ok(expected !== undefined, `accepted an OCSP response whose ResponseData the responder never signed: ${m.what}`);
    assert.equal(status, expected, m.what);
  });
});

test('truncation at every position: certificates, CRL, OCSP response', async () => {
  const small = [certSeeds.find((s) => s.name === 'ed25519')!, crlSeeds[0]!, ocspSeeds[0]!];
  const targets = [(b: Buffer) => readEverything(Certificate.fromDer(b)), (b: Buffer) => parseCrl(b), (b: Buffer) => parseOcspResponse(b)];
  small.forEach((s, k) => {
    for (let n = 0; n < s.bytes.length; n++) {
      try {
        targets[k]!(s.bytes.subarray(0, n));
        assert.fail(`${s.name} truncated to ${n} octets was accepted`);
      } catch (e) {
        if (e instanceof assert.AssertionError) throw e;
        assertTypedError(e, `${s.name} truncated to ${n}`);
      }
    }
  });
});

test('loadPrivateKey fails only with typed errors on damaged PKCS#8', { timeout: timeoutFor(600) }, async () => {
  const keySeeds = certs.slice(1).map((c) => seed(`${c.kind}-pkcs8`, c.key.export({ format: 'der', type: 'pkcs8' })));
  await fuzz('private-key', keySeeds, iterations(600), (m) => loadPrivateKey(m.bytes));
});

test('readCertsOnly (certs-only SignedData, RFC 8551 3.6) fails only with typed errors', { timeout: timeoutFor(800) }, async () => {
  const certsOnly = encodeContentInfo(OID.signedData, sequence(integer(1), setOf([]), sequence(oid(OID.data)), implicit(0, true, pki.caCert.der, ...certs.map((c) => c.cert.der)), setOf([])));
  assert.equal(readCertsOnly(certsOnly).length, certs.length + 1);
  await fuzz('certs-only', [seed('certs-only', certsOnly)], iterations(800), (m) => {
    for (const c of readCertsOnly(m.bytes)) readEverything(c);
  });
});

test('time corner cases: years before 100 are not shifted, impossible dates are MALFORMED', () => {
  const gt = (s: string) => readTime(decode(tlv(Tag.GENERALIZED_TIME, Buffer.from(s, 'latin1'))));
  const ut = (s: string) => readTime(decode(tlv(Tag.UTC_TIME, Buffer.from(s, 'latin1'))));
  assert.equal(gt('00500101000000Z').getUTCFullYear(), 50);
  assert.equal(gt('00000101000000Z').getUTCFullYear(), 0);
  assert.equal(gt('99991231235959Z').toISOString(), '9999-12-31T23:59:59.000Z');
  assert.equal(gt('20240229120000Z').toISOString(), '2024-02-29T12:00:00.000Z');
  assert.equal(ut('491231235959Z').getUTCFullYear(), 2049);
  assert.equal(ut('500101000000Z').getUTCFullYear(), 1950);
  for (const bad of ['20251301000000Z', '20250230000000Z', '20230229000000Z', '20250101240000Z', '20250101006000Z', '20250101000060Z', '20250100000000Z', '2025010100000Z', '20250101000000+0900', '2025010100000.Z']) {
    assert.throws(() => gt(bad), (e) => isKakitomeError(e, 'MALFORMED'), bad);
  }
});

test('UniversalString: code points beyond U+10FFFF and surrogates are MALFORMED, not a RangeError', () => {
  const us = (hex: string) => readString(decode(tlv(Tag.UNIVERSAL_STRING, Buffer.from(hex, 'hex'))));
  assert.equal(us('0000004100003042'), 'Aあ');
  for (const bad of ['00110000', 'ffffffff', '0000d800', '000041']) assert.throws(() => us(bad), (e) => isKakitomeError(e, 'MALFORMED'), bad);
});

test('an EC certificate key in the X9.62 hybrid form (06/07) is MALFORMED (RFC 5480 2.2), compressed and uncompressed are read', () => {
  const p256 = certs.find((c) => c.kind === 'p256')!.cert;
  const at = p256.der.indexOf(Buffer.from('03420004', 'hex'), p256.der.indexOf(Buffer.from(p256.spki))) + 3;
  for (const form of [0x06, 0x07, 0x00, 0x05]) {
    const der = Buffer.from(p256.der);
    der[at] = form;
    assert.throws(() => Certificate.fromDer(der), (e) => isKakitomeError(e, 'MALFORMED'), `form 0x${form.toString(16)}`);
  }
  assert.equal(Certificate.fromDer(p256.der).publicKeyAlgorithm, OID.ecPublicKey);
});

test('parseContentInfo fails only with typed errors on non-CMS input', { timeout: timeoutFor(500) }, async () => {
  await fuzz('content-info-foreign', all, iterations(500), (m) => parseContentInfo(m.bytes));
});
