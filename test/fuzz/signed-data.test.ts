/**
 * Mutation fuzzing of verifySignedData over our own signatures (RSA PKCS#1 and
 * PSS, ECDSA, Ed25519, ML-DSA; encapsulated, detached, two signers) and over
 * `openssl cms -sign -stream` indefinite-length BER.
 *
 * Oracle:
 * - every failure is a typed KakitomeError;
 * - a mutation may come back 'valid' only if it left the signed material alone:
 *   the signed attributes' contents, the signature value and the content octets
 *   are untouched, the content and eContentType returned are the original ones,
 *   and every reported signer is one of the original signers. (What can change
 *   legitimately: the certificates set, the unprotected digestAlgorithms list,
 *   length encodings, unsigned parts.)
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestPki, type Identity } from '../helpers/pki.ts';
import { signData, type SignerOptions } from '../../src/cms/signed-data/sign.ts';
import { verifySignedData } from '../../src/cms/signed-data/verify.ts';
import { parseContentInfo } from '../../src/cms/content-info.ts';
import { parseSignedData } from '../../src/cms/signed-data/parse.ts';
import type { Certificate } from '../../src/x509/certificate.ts';
import { fuzz, iterations, seed, signedMaterialRanges, touches, timeoutFor, Prng, caseSeed, assertTypedError, type Seed, REPLAYING, reportCases } from './fuzz-kit.ts';

const pki = new TestPki('Kakitome Fuzz Signing Root');
after(() => pki.cleanup());

const rsa = pki.identity('rsa2048');
const ec = pki.identity('p256');
const ed = pki.identity('ed25519');
const ml = pki.identity('mldsa44');
const content = Buffer.from('Content-Type: text/plain\r\n\r\nPay 100 yen to Alice.\r\n');
const now = new Date();

interface SignedSeed extends Seed {
  detached: boolean;
  contentType: string;
  /** The original signers' public keys (re-exported by OpenSSL: a carried certificate may be re-encoded). */
  signerKeys: Set<string>;
  /** [start, end) ranges of the original whose change must never stay valid. */
  protectedRanges: [number, number][];
}

function keyOf(c: Certificate): string {
  return c.publicKey.export({ type: 'spki', format: 'der' }).toString('hex');
}

function describe(name: string, der: Buffer, signers: Identity[]): SignedSeed {
  const parsed = parseSignedData(parseContentInfo(der).content);
  const detached = parsed.eContent === undefined;
  return {
    ...seed(name, der),
    detached,
    contentType: parsed.contentType,
    signerKeys: new Set(signers.map((s) => keyOf(s.cert))),
    protectedRanges: signedMaterialRanges(der, parsed),
  };
}

const so = (id: Identity, extra: Partial<SignerOptions> = {}): SignerOptions => ({ certificate: id.cert, key: id.key, ...extra });

function openssl(args: string[]): void {
  execFileSync('openssl', args, { cwd: pki.dir, stdio: 'ignore' });
}
writeFileSync(join(pki.dir, 'content.txt'), content);
openssl(['cms', '-sign', '-binary', '-stream', '-nodetach', '-outform', 'DER', '-in', 'content.txt', '-signer', rsa.certPath, '-inkey', rsa.keyPath, '-md', 'sha256', '-out', 'ossl-enc.der']);
// QUIRK of openssl 3.0: DER output is always encapsulated with -stream; this one is the definite-length detached form.
openssl(['cms', '-sign', '-binary', '-outform', 'DER', '-in', 'content.txt', '-signer', ec.certPath, '-inkey', ec.keyPath, '-md', 'sha256', '-out', 'ossl-det.der']);

const seeds: SignedSeed[] = [
  describe('rsa-enc', signData(content, { signers: [so(rsa)], now }), [rsa]),
  describe('rsa-pss-det', signData(content, { signers: [so(rsa, { rsaPadding: 'pss', identifier: 'subjectKeyIdentifier' })], detached: true, now }), [rsa]),
  describe('p256-det', signData(content, { signers: [so(ec)], detached: true, now }), [ec]),
  describe('p256-enc', signData(content, { signers: [so(ec, { hash: 'sha384' })], now }), [ec]),
  describe('ed25519-enc', signData(content, { signers: [so(ed)], now }), [ed]),
  describe('mldsa44-det', signData(content, { signers: [so(ml)], detached: true, now }), [ml]),
  describe('two-signers', signData(content, { signers: [so(ec), so(ed)], now }), [ec, ed]),
  describe('openssl-stream-enc', readFileSync(join(pki.dir, 'ossl-enc.der')), [rsa]),
  describe('openssl-stream-det', readFileSync(join(pki.dir, 'ossl-det.der')), [ec]),
];
/** Every seed's genuine signers: what a splice from another seed may bring in. */
const allSignerKeys = new Set(seeds.flatMap((x) => [...x.signerKeys]));

test('every seed verifies', () => {
  for (const s of seeds) {
    const v = verifySignedData(s.bytes, { detachedContent: s.detached ? content : undefined, now });
    assert.equal(v.status, 'valid', `${s.name}: ${v.message}`);
    assert.ok(s.protectedRanges.length >= 2);
  }
});


test('verifySignedData: typed errors only, and nothing but the original signed content is ever valid', { timeout: timeoutFor(4000, 5) }, async () => {
  let valid = 0;
  const outcomes = await fuzz('verify-signed-data', seeds, iterations(4000), (m, base) => {
    const s = base as SignedSeed;
    const v = verifySignedData(m.bytes, { detachedContent: s.detached ? content : undefined, now });
    // A mutation that rewrote a byte with its own value changed nothing.
    if (m.bytes.equals(s.bytes)) return;
    for (const signer of v.signers) {
      if (signer.status === 'invalid') assert.ok(signer.code, `${s.name} ${m.what}: invalid signer without a code`);
    }
    if (v.status !== 'valid') {
      assert.ok(v.code, `${s.name} ${m.what}: invalid without a code`);
      return;
    }
    valid++;
    const where = `${s.name}: ${m.what} came back valid`;
    assert.ok(v.signers.length > 0, `${where} with no signer`);
    assert.deepEqual(v.content, content, `${where} with different content`);
    assert.equal(v.contentType, s.contentType, `${where} with another content type`);
    assert.equal(v.detached, s.detached, `${where} but changed detached/encapsulated`);
    // A splice can bring in another seed's SignerInfo or its whole ContentInfo (TLV@0):
    // that seed's genuine signature over the same content, so its signer is no finding.
    // A signer no seed had is one, spliced or not.
    const genuine = m.spliced ? allSignerKeys : s.signerKeys;
    for (const signer of v.signers) {
      assert.ok(signer.certificate && genuine.has(keyOf(signer.certificate)), `${where} with a foreign signer`);
    }
    // Whole SignerInfos swapped, or spliced from another seed (its own valid signature over the same content), stay valid.
    if (!m.spliced) assert.ok(!touches(m, s.protectedRanges), `${where} although it touched signed material [${m.from}, ${m.to})`);
  });
  assert.ok(REPLAYING || valid > 0 && (outcomes.get('MALFORMED') ?? 0) > 0, `explores both sides: valid ${valid}, ${[...outcomes]}`);
});

test('truncation at every position of a signature is a typed failure, never valid', () => {
  for (const s of [seeds.find((x) => x.name === 'ed25519-enc')!, seeds.find((x) => x.name === 'openssl-stream-enc')!]) {
    for (let n = 0; n < s.bytes.length; n++) {
      try {
        const v = verifySignedData(s.bytes.subarray(0, n), { now });
        assert.notEqual(v.status, 'valid', `${s.name} truncated to ${n} octets verified`);
      } catch (e) {
        if (e instanceof assert.AssertionError) throw e;
        assertTypedError(e, `${s.name} truncated to ${n}`);
      }
    }
  }
});

test('a detached signature never accepts altered content', { timeout: timeoutFor(500, 5) }, () => {
  const detached = seeds.filter((s) => s.detached);
  const started = performance.now();
  for (let i = 0; i < iterations(500); i++) {
    const r = new Prng(caseSeed('detached-content', i));
    const s = r.pick(detached);
    const altered = Buffer.from(content);
    const at = r.int(altered.length);
    altered[at]! ^= 1 << r.int(8);
    try {
      const v = verifySignedData(s.bytes, { detachedContent: altered, now });
      assert.equal(v.status, 'invalid', `${s.name}: content bit flip at ${at} verified`);
      assert.equal(v.code, 'DIGEST_MISMATCH');
    } catch (e) {
      if (e instanceof assert.AssertionError) throw e;
      assertTypedError(e, `${s.name} altered content`);
    }
  }
  reportCases('detached-content', iterations(500), performance.now() - started);
});

test('the eContentType cannot be changed to another type while the signature stays valid', () => {
  // Directly: rewrite id-data (1.2.840.113549.1.7.1) to signedData, envelopedData... (same length).
  const s = seeds[0]!;
  const dataOid = Buffer.from('06092a864886f70d010701', 'hex');
  const at = s.bytes.indexOf(dataOid, 0);
  assert.ok(at > 0);
  for (const last of [0x02, 0x03, 0x05, 0x06, 0x09]) {
    const bytes = Buffer.from(s.bytes);
    bytes[at + dataOid.length - 1] = last;
    try {
      const v = verifySignedData(bytes, { now });
      assert.notEqual(v.status, 'valid', `eContentType 1.2.840.113549.1.7.${last} accepted`);
    } catch (e) {
      assertTypedError(e, `eContentType .${last}`);
    }
  }
});
