/**
 * Revocation against real responders on loopback: `openssl ocsp` (OpenSSL 3.0)
 * and CRLs served by a node:http server. Good, revoked, unknown, stale and
 * unreachable cases; soft-fail, hard-fail and off modes.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createSignerValidator, type SignerValidatorOptions } from '../../src/pki/create-signer-validator.ts';
import { createHttpFetcher } from '../../src/pki/create-http-fetcher.ts';
import { buildOcspRequest, parseOcspResponse, evaluateOcspResponse } from '../../src/pki/check-ocsp.ts';
import type { SignerValidationInput, TimestampEvidence } from '../../src/pki/types.ts';
import { sequence, oid } from '../../src/asn1/der.ts';
import { OID } from '../../src/asn1/oids.ts';
import { rootCa, subCa, endEntity, extension, buildCrl, key, ocspNoCheck, StaticHttpServer, OpensslOcspResponder, freePort, type Party } from './pki-builder.ts';
import { issueCertificate } from '../../src/x509/issue.ts';

const OCSP_SIGNING = '1.3.6.1.5.5.7.3.9';
let http: StaticHttpServer;
let root: Party;
let caO: Party; // leaves checked by OCSP
let caC: Party; // leaves checked by CRL
let ocspDelegated: OpensslOcspResponder;
let ocspByCa: OpensslOcspResponder;
let ocspNoEku: OpensslOcspResponder;
let deadPort: number;
const L: Record<string, Party> = {};

before(async () => {
  http = new StaticHttpServer();
  await http.start();
  root = rootCa('Revocation Root');
  http.files.set('/root.crl', buildCrl({ issuer: root }));
  const caOpts = { crlDistributionPoints: [http.url('/root.crl')] };
  caO = subCa(root, 'OCSP Issuing CA', caOpts);
  caC = subCa(root, 'CRL Issuing CA', caOpts);
  const [p1, p2, p3] = [await freePort(), await freePort(), await freePort()];
  deadPort = await freePort();
  ocspDelegated = new OpensslOcspResponder(p1);
  ocspByCa = new OpensslOcspResponder(p2);
  ocspNoEku = new OpensslOcspResponder(p3);

  const viaOcsp = (name: string, url: string) => (L[name] = endEntity(caO, `${name}@example.com`, { ocspUrls: [url] }));
  viaOcsp('good', ocspDelegated.url);
  viaOcsp('revoked', ocspDelegated.url);
  viaOcsp('superseded', ocspDelegated.url);
  viaOcsp('unknown', ocspDelegated.url);
  viaOcsp('byca', ocspByCa.url);
  viaOcsp('noeku', ocspNoEku.url);
  viaOcsp('dead', `http://127.0.0.1:${deadPort}`);

  // With id-pkix-ocsp-nocheck, as the CA/B Forum requires of delegated responders:
  // its own status is not checked (test/pki/ocsp-responder-status.test.ts checks the rest).
  const responder = endEntity(caO, 'responder@example.com', { keyUsage: ['digitalSignature'], extKeyUsage: [OCSP_SIGNING], emails: [], extraExtensions: [ocspNoCheck()] });
  const badResponder = endEntity(caO, 'bad-responder@example.com', { keyUsage: ['digitalSignature'], extKeyUsage: [OID.emailProtection] });
  const index = [
    { cert: L.good!.cert },
    { cert: L.revoked!.cert, revoked: { date: new Date(Date.now() - 600_000), reason: 'keyCompromise' } },
    { cert: L.superseded!.cert, revoked: { date: new Date(Date.now() - 600_000), reason: 'superseded' } },
    { cert: L.byca!.cert },
    { cert: L.noeku!.cert },
  ];
  await Promise.all([ocspDelegated.start(caO, responder, index), ocspByCa.start(caO, caO, index), ocspNoEku.start(caO, badResponder, index)]);

  const viaCrl = (name: string, path: string, extra = {}) => (L[name] = endEntity(caC, `${name}@example.com`, { crlDistributionPoints: [http.url(path)], ...extra }));
  viaCrl('crl-good', '/ca.crl');
  viaCrl('crl-revoked', '/ca.crl');
  viaCrl('crl-stale', '/stale.crl');
  viaCrl('crl-missing', '/nothing-here.crl');
  viaCrl('crl-forged', '/forged.crl');
  viaCrl('delta-good', '/base.crl');
  viaCrl('delta-revoked', '/base.crl');
  L['no-location'] = endEntity(caC, 'no-location@example.com');
  const tsaEku = { keyUsage: ['digitalSignature' as const], extKeyUsage: [], emails: [], crlDistributionPoints: [http.url('/ca.crl')], extraExtensions: [extension(OID.extKeyUsage, true, sequence(oid(OID.timeStamping)))] };
  L.tsa = endEntity(caC, 'tsa@example.com', tsaEku);
  L['tsa-revoked'] = endEntity(caC, 'tsa-revoked@example.com', tsaEku);
  http.files.set('/ca.crl', buildCrl({ issuer: caC, revoked: [{ cert: L['crl-revoked']!.cert, reason: 1 }, { cert: L['tsa-revoked']!.cert, reason: 1 }] }));
  http.files.set('/stale.crl', buildCrl({ issuer: caC, thisUpdate: new Date(Date.now() - 3 * 86_400_000), nextUpdate: new Date(Date.now() - 86_400_000) }));
  http.files.set('/forged.crl', buildCrl({ issuer: { cert: caC.cert, key: caO.key } }));
  http.files.set('/base.crl', buildCrl({ issuer: caC, crlNumber: 5, freshestCrl: http.url('/delta.crl') }));
  http.files.set('/delta.crl', buildCrl({ issuer: caC, crlNumber: 6, deltaBase: 5, revoked: [{ cert: L['delta-revoked']!.cert, reason: 1 }] }));
});

after(async () => {
  await Promise.all([ocspDelegated?.stop(), ocspByCa?.stop(), ocspNoEku?.stop(), http?.stop()]);
});

/** The responders of these tests listen on loopback, which the default fetcher refuses. */
const loopback = createHttpFetcher({ allowInternal: ['127.0.0.1'] });

function validator(mode: 'hard-fail' | 'soft-fail' | 'off', extra: SignerValidatorOptions = {}) {
  return createSignerValidator({
    anchors: [root.cert],
    fetcher: loopback,
    ...extra,
    revocation: { mode, timeoutMs: 2000, ...extra.revocation },
  });
}

/** What the CMS layer reports for a token whose signature and imprint verified (verifyTimestampToken); the TSA's trust is the validator's. */
function tsaEvidence(genTime: Date, tsa = 'tsa'): TimestampEvidence {
  return { status: 'valid', message: 'checked', genTime, certificate: L[tsa]!.cert, certificates: [caC.cert], crls: [], ocspResponses: [], imprintAlgorithm: OID.sha256, algorithmOids: { digest: OID.sha256, signature: '1.2.840.10045.4.3.2' } };
}

function input(name: string, more: Partial<SignerValidationInput> = {}): SignerValidationInput {
  const p = L[name]!;
  return { certificate: p.cert, carried: [caO.cert, caC.cert], usage: 'signing', from: [`${name}@example.com`], ...more };
}

test('OCSP good (delegated responder with id-kp-OCSPSigning, POST with nonce), then cached', async () => {
  const v = validator('hard-fail', { revocation: { requireOcspNonce: true } });
  const r = await v(input('good'));
  assert.equal(r.status, 'trusted', r.message);
  assert.equal(r.revocation.status, 'good');
  assert.equal(r.revocation.source, 'ocsp');
  assert.ok(r.revocation.time instanceof Date);
  assert.match(r.message, /not revoked/);
  const again = await v(input('good'));
  assert.equal(again.revocation.source, 'cache');
  assert.equal(again.status, 'trusted');
});

test('OCSP good with RFC 5019 GET', async () => {
  const r = await validator('hard-fail', { revocation: { ocspMethod: 'get' } })(input('good'));
  assert.equal(r.status, 'trusted', r.message);
  assert.equal(r.revocation.source, 'ocsp');
});

test('OCSP signed by the CA itself is accepted', async () => {
  const r = await validator('hard-fail')(input('byca'));
  assert.equal(r.status, 'trusted', r.message);
});

test('OCSP revoked: CERT_REVOKED with time and reason', async () => {
  const r = await validator('soft-fail')(input('revoked'));
  assert.equal(r.status, 'untrusted');
  assert.equal(r.code, 'CERT_REVOKED');
  assert.equal(r.revocation.status, 'revoked');
  assert.equal(r.revocation.reason, 'keyCompromise');
  assert.ok(r.revocation.revokedAt);
  assert.match(r.message, /was revoked on .* \(keyCompromise\), according to the OCSP responder/);
});

test('signingTime clock: revoked as superseded after signing still counts; keyCompromise never does', async () => {
  const signingTime = new Date(Date.now() - 3600_000);
  const v = validator('hard-fail', { validityClock: 'signingTime' });
  const r = await v(input('superseded', { signingTime }));
  assert.equal(r.status, 'trusted', r.message);
  assert.match(r.revocation.message, /revoked after the signing time/);
  const r2 = await v(input('revoked', { signingTime }));
  assert.equal(r2.code, 'CERT_REVOKED');
  // With the now clock, superseded is revoked.
  assert.equal((await validator('hard-fail')(input('superseded', { signingTime }))).code, 'CERT_REVOKED');
});

test('OCSP unknown: soft-fail says "revocation unknown", hard-fail refuses', async () => {
  const soft = await validator('soft-fail')(input('unknown'));
  assert.equal(soft.status, 'trusted');
  assert.equal(soft.revocation.status, 'unknown');
  assert.match(soft.message, /revocation unknown/);
  assert.ok(soft.warnings.some((w) => /^Revocation unknown for the signer's certificate: .*does not know this certificate/.test(w)));
  const hard = await validator('hard-fail')(input('unknown'));
  assert.equal(hard.status, 'untrusted');
  assert.equal(hard.code, 'REVOCATION_UNKNOWN');
  assert.match(hard.message, /revocation status could not be established/);
});

test('OCSP stale: a response past its nextUpdate is not used', async () => {
  // The responder signs with nextUpdate = now + 60 min; our clock runs 2 hours ahead.
  const later = () => new Date(Date.now() + 2 * 3600_000);
  const r = await validator('hard-fail', { now: later })(input('good'));
  assert.equal(r.code, 'REVOCATION_UNKNOWN');
  assert.match(r.revocation.message, /stale \(nextUpdate/);
  const soft = await validator('soft-fail', { now: later })(input('good'));
  assert.equal(soft.status, 'trusted');
  assert.equal(soft.revocation.status, 'unknown');
});

test('OCSP unreachable: soft-fail trusted with "revocation unknown", hard-fail untrusted', async () => {
  const soft = await validator('soft-fail')(input('dead'));
  assert.equal(soft.status, 'trusted');
  assert.equal(soft.revocation.status, 'unknown');
  assert.match(soft.revocation.message, /ECONNREFUSED/);
  assert.equal((await validator('hard-fail')(input('dead'))).code, 'REVOCATION_UNKNOWN');
});

test('OCSP from a responder without id-kp-OCSPSigning is rejected', async () => {
  const r = await validator('hard-fail')(input('noeku'));
  assert.equal(r.code, 'REVOCATION_UNKNOWN');
  assert.match(r.revocation.message, /lacks id-kp-OCSPSigning/);
});

test('an OCSP response carried in the message is used when fresh and no online answer can be had', async () => {
  // Obtain a response from the real responder, then carry it.
  const res = await fetch(ocspDelegated.url, { method: 'POST', headers: { 'content-type': 'application/ocsp-request' }, body: buildOcspRequest(L.revoked!.cert, caO.cert) });
  const der = new Uint8Array(await res.arrayBuffer());
  const parsed = parseOcspResponse(der);
  assert.equal(evaluateOcspResponse(parsed, L.revoked!.cert, caO.cert, { now: new Date(), skewMs: 0, maxAgeMs: 60_000 }).status, 'revoked');
  // The certificate points at a dead responder: only the carried response can answer.
  const r = await validator('hard-fail')(input('dead', { carriedOcsp: [der] }));
  assert.equal(r.revocation.status, 'unknown', 'a response for another certificate is not used');
  const goodRes = await fetch(ocspDelegated.url, { method: 'POST', body: buildOcspRequest(L.good!.cert, caO.cert) });
  const goodDer = new Uint8Array(await goodRes.arrayBuffer());
  const offline = async (): Promise<never> => {
    throw new Error('offline');
  };
  const r2 = await validator('hard-fail', { fetcher: offline })(input('good', { carriedOcsp: [goodDer], carriedCrls: [buildCrl({ issuer: root })] }));
  assert.equal(r2.status, 'trusted', r2.message);
  assert.equal(r2.revocation.source, 'embedded-ocsp');
  assert.deepEqual(r2.revocation.certificates.map((c) => [c.role, c.status, c.source]), [['signer', 'good', 'embedded-ocsp'], ['ca', 'good', 'embedded-crl']]);
  // Stale when carried too.
  const r3 = await validator('hard-fail', { now: () => new Date(Date.now() + 2 * 3600_000), fetcher: async () => { throw new Error('offline'); } })(
    input('good', { carriedOcsp: [goodDer], carriedCrls: [buildCrl({ issuer: root, nextUpdate: new Date(Date.now() + 86_400_000) })] }),
  );
  assert.equal(r3.code, 'REVOCATION_UNKNOWN');
});

test('CRL good and revoked (from the distribution point over HTTP)', async () => {
  const v = validator('hard-fail');
  const good = await v(input('crl-good'));
  assert.equal(good.status, 'trusted', good.message);
  assert.equal(good.revocation.source, 'crl');
  const revoked = await v(input('crl-revoked'));
  assert.equal(revoked.code, 'CERT_REVOKED');
  assert.equal(revoked.revocation.reason, 'keyCompromise');
  assert.match(revoked.message, /according to the CA's CRL/);
});

test('CRL stale, missing, or signed by another key: unknown (soft) / untrusted (hard)', async () => {
  for (const [name, why] of [['crl-stale', /stale/], ['crl-missing', /HTTP 404/], ['crl-forged', /bad signature/]] as const) {
    const soft = await validator('soft-fail')(input(name));
    assert.equal(soft.status, 'trusted', name);
    assert.equal(soft.revocation.status, 'unknown', name);
    assert.match(soft.revocation.message, why, name);
    const hard = await validator('hard-fail')(input(name));
    assert.equal(hard.code, 'REVOCATION_UNKNOWN', name);
  }
});

test('delta CRL: a revocation only in the delta counts; base + delta good otherwise', async () => {
  const v = validator('hard-fail');
  assert.equal((await v(input('delta-good'))).status, 'trusted');
  const r = await v(input('delta-revoked'));
  assert.equal(r.code, 'CERT_REVOKED');
});

test('CRLs are cached: many validations fetch each CRL once', async () => {
  const v = validator('hard-fail');
  await v(input('crl-good'));
  const n = http.requests;
  await v(input('crl-revoked'));
  await v(input('crl-good'));
  assert.equal(http.requests, n, 'no new downloads');
});

test('a CRL carried in the message is used; a certificate with no revocation location is unknown', async () => {
  const carried = [buildCrl({ issuer: caC, revoked: [{ cert: L['no-location']!.cert, reason: 0 }] })];
  const r = await validator('soft-fail')(input('no-location', { carriedCrls: carried }));
  assert.equal(r.code, 'CERT_REVOKED');
  assert.equal(r.revocation.source, 'embedded-crl');
  const r2 = await validator('soft-fail')(input('no-location'));
  assert.equal(r2.revocation.status, 'unknown');
  assert.match(r2.revocation.message, /names no OCSP responder and no CRL distribution point/);
});

test('a certificate that names no source is not asked about again for a minute, but what a message carries is read every time', async () => {
  let asked = 0;
  let failing = false;
  let clock = Date.now();
  // The caller's own CA's records: they know nothing of this certificate (another CA issued it), or fail.
  const localRevocation = async () => {
    asked++;
    if (failing) throw new Error('store down');
    return undefined;
  };
  const v = (mode: 'soft-fail' | 'hard-fail') => validator(mode, { localRevocation, now: () => new Date(clock) });
  const soft = v('soft-fail');
  const first = await soft(input('no-location'));
  assert.equal(first.revocation.status, 'unknown');
  assert.match(first.revocation.message, /names no OCSP responder and no CRL distribution point/);
  const n = asked;
  assert.ok(n >= 1);
  const again = await soft(input('no-location'));
  assert.equal(again.revocation.status, 'unknown');
  assert.equal(again.revocation.message, first.revocation.message);
  assert.equal(again.status, 'trusted', 'allow-unknown: trusted, saying so');
  assert.equal(asked, n, 'the same certificate: its sources are not looked for again');
  // A CRL carried in a message still counts, after the certificate was found to name no source.
  const carried = [buildCrl({ issuer: caC, revoked: [{ cert: L['no-location']!.cert, reason: 1 }] })];
  const revoked = await soft(input('no-location', { carriedCrls: carried }));
  assert.equal(revoked.code, 'CERT_REVOKED');
  assert.equal(revoked.revocation.source, 'embedded-crl');
  // ...for that message only.
  assert.equal((await soft(input('no-location'))).revocation.status, 'unknown');
  // require: unknown refused, whether the finding is new or remembered.
  const hard = v('hard-fail');
  assert.equal((await hard(input('no-location'))).code, 'REVOCATION_UNKNOWN');
  assert.equal((await hard(input('no-location'))).code, 'REVOCATION_UNKNOWN');
  // After a minute the caller's own CA's records are asked again (a CA added to the store shows).
  const before = asked;
  clock += 61_000;
  await soft(input('no-location'));
  assert.ok(asked > before, 'asked again after NO_SOURCE_TTL_MS');
  // Records that could not be read are no finding: asked again at the next message.
  const flaky = v('soft-fail');
  failing = true;
  const down = await flaky(input('no-location'));
  assert.equal(down.revocation.status, 'unknown');
  assert.match(down.revocation.message, /store down/);
  failing = false;
  const k = asked;
  await flaky(input('no-location'));
  assert.ok(asked > k, 'a failed read is not remembered');
  const m = asked;
  await flaky(input('no-location'));
  assert.equal(asked, m, 'a read that said nothing is');
  // Another certificate with the same issuer and serial but other bytes (one naming a CRL) is not taken for it.
  const twin = endEntity(caC, 'no-location@example.com', { serial: L['no-location']!.cert.serial, crlDistributionPoints: [http.url('/stale.crl')] });
  const t = await flaky({ ...input('no-location'), certificate: twin.cert });
  assert.equal(t.revocation.status, 'unknown');
  assert.match(t.revocation.message, /stale/, 'its own CRL was read');
});

test('revocation off: not checked, and the report says so', async () => {
  const r = await validator('off')(input('revoked'));
  assert.equal(r.status, 'trusted');
  assert.equal(r.revocation.status, 'not-checked');
  assert.match(r.revocation.message, /turned off/);
});

test('an intermediate revoked on the root CRL makes the path revoked', async () => {
  const local = new StaticHttpServer();
  await local.start();
  try {
    const r0 = rootCa('Second Revocation Root');
    const badCa = subCa(r0, 'Revoked CA', { crlDistributionPoints: [local.url('/r0.crl')] });
    const leaf = endEntity(badCa, 'leaf@example.com', { crlDistributionPoints: [local.url('/bad.crl')] });
    local.files.set('/r0.crl', buildCrl({ issuer: r0, revoked: [{ cert: badCa.cert, reason: 2 }] }));
    local.files.set('/bad.crl', buildCrl({ issuer: badCa }));
    const r = await createSignerValidator({ anchors: [r0.cert], fetcher: loopback, revocation: { mode: 'soft-fail' } })({ certificate: leaf.cert, carried: [badCa.cert], usage: 'signing' });
    assert.equal(r.code, 'CERT_REVOKED');
    assert.match(r.message, /CA certificate .*Revoked CA.* was revoked .*cACompromise/);
  } finally {
    await local.stop();
  }
});

test('OCSP nonce: a response echoing another nonce is rejected as a replay', async () => {
  const sent = Buffer.alloc(16, 7);
  const res = await fetch(ocspDelegated.url, { method: 'POST', body: buildOcspRequest(L.good!.cert, caO.cert, sent) });
  const parsed = parseOcspResponse(new Uint8Array(await res.arrayBuffer()));
  assert.deepEqual(Buffer.from(parsed.nonce!), sent);
  const opts = { now: new Date(), skewMs: 0, maxAgeMs: 60_000 };
  assert.equal(evaluateOcspResponse(parsed, L.good!.cert, caO.cert, { ...opts, nonce: sent }).status, 'good');
  assert.throws(() => evaluateOcspResponse(parsed, L.good!.cert, caO.cert, { ...opts, nonce: Buffer.alloc(16, 8) }), /nonce does not match/);
  // The response answers for L.good only, and only under its CA.
  assert.throws(() => evaluateOcspResponse(parsed, L.revoked!.cert, caO.cert, opts), /does not answer for this certificate/);
  assert.throws(() => evaluateOcspResponse(parsed, L.good!.cert, caC.cert, opts), /not issued by the certificate's CA/);
});

test('an OCSP responder that is not authorised for the certificate\'s CA is not believed', async () => {
  // openssl ocsp answers for a CA it does not serve, signed by its own responder
  // certificate, which caC never delegated to.
  const stranger = endEntity(caC, 'stranger@example.com', { ocspUrls: [ocspDelegated.url] });
  const r = await createSignerValidator({ anchors: [root.cert], fetcher: loopback, revocation: { mode: 'soft-fail' } })({ certificate: stranger.cert, carried: [caC.cert], usage: 'signing' });
  assert.equal(r.revocation.status, 'unknown');
  assert.match(r.revocation.message, /responder certificate was not issued by the certificate's CA\.$/);
});

test('a burst of concurrent validations shares one CRL download', async () => {
  const v = validator('hard-fail');
  const n = http.requests;
  const results = await Promise.all(Array.from({ length: 20 }, () => v(input('crl-good'))));
  assert.ok(results.every((r) => r.status === 'trusted'));
  // One download each for the issuing CA's CRL and the root CRL (for the intermediate).
  assert.equal(http.requests - n, 2);
});

test('an OCSP responder that could not be asked is not asked again until failureTtlMs has passed', async () => {
  // The certificate names only a responder that answers HTTP 404: its status stays unknown, so no answer is cached.
  const lonely = endEntity(caC, 'lonely@example.com', { ocspUrls: [http.url('/no-responder-here')] });
  let clock = Date.now();
  const v = createSignerValidator({ anchors: [root.cert], fetcher: loopback, now: () => new Date(clock), revocation: { mode: 'soft-fail', failureTtlMs: 30_000 } });
  const check = () => v({ certificate: lonely.cert, carried: [caC.cert], usage: 'signing' });
  const n = http.requests;
  const first = await check();
  assert.equal(first.revocation.status, 'unknown');
  assert.match(first.revocation.message, /HTTP 404/);
  // The root CRL (for the issuing CA) and the responder, once each.
  assert.equal(http.requests - n, 2);
  // Each later check, and a burst of them, gets the same failure without a request.
  const later = await Promise.all(Array.from({ length: 10 }, check));
  assert.ok(later.every((r) => r.status === 'trusted' && r.revocation.status === 'unknown' && /HTTP 404/.test(r.revocation.message)));
  assert.equal(http.requests - n, 2);
  clock += 31_000;
  await check();
  assert.equal(http.requests - n, 3);
});

test('a verified timestamp is the preferred clock: a later revocation, even keyCompromise, does not void the signature', async () => {
  const v = validator('hard-fail', { validityClock: 'signingTime' });
  const r = await v(input('revoked', { timestampToken: tsaEvidence(new Date(Date.now() - 3600_000)), signingTime: new Date(Date.now() - 3 * 86_400_000) }));
  assert.equal(r.status, 'trusted', r.message);
  assert.equal(r.clock.source, 'timestamp');
  assert.equal(r.timestamp?.status, 'verified', r.timestamp?.message);
  assert.ok(r.warnings.some((w) => /differs from the timestamp/.test(w)));
  assert.match(r.message, /valid at the timestamped time/);
  assert.match(r.revocation.message, /revoked after the timestamped time: keyCompromise/);
  // A timestamp after the revocation does not help.
  const r2 = await v(input('revoked', { timestampToken: tsaEvidence(new Date()) }));
  assert.equal(r2.code, 'CERT_REVOKED');
});

test('a TSA whose certificate is revoked (keyCompromise) vouches for no time, even one before the revocation', async () => {
  const v = validator('hard-fail', { validityClock: 'timestamp' });
  const r = await v(input('crl-good', { timestampToken: tsaEvidence(new Date(Date.now() - 1800_000), 'tsa-revoked') }));
  assert.equal(r.status, 'untrusted');
  assert.equal(r.code, 'TIMESTAMP_INVALID');
  assert.equal(r.timestamp?.status, 'refused');
  assert.equal(r.timestamp?.code, 'CERT_REVOKED');
  assert.match(r.timestamp!.message, /TSA's certificate path is revoked/);
});

test('CRLs signed with RSA-2048 and Ed25519 CA keys are verified', async () => {
  const local = new StaticHttpServer();
  await local.start();
  try {
    for (const kind of ['rsa2048', 'ed25519'] as const) {
      const k = key(kind, `crl-${kind}`);
      const r0 = { cert: issueCertificate({ subject: { commonName: `${kind} Root` }, publicKey: k.publicKey, signingKey: k.privateKey, ca: true, keyUsage: ['keyCertSign', 'cRLSign'], notBefore: new Date(Date.now() - 86_400_000) }), key: k.privateKey };
      const leaf = endEntity(r0, `${kind}@example.com`, { crlDistributionPoints: [local.url(`/${kind}.crl`)] });
      const other = endEntity(r0, `${kind}-revoked@example.com`, { crlDistributionPoints: [local.url(`/${kind}.crl`)] });
      local.files.set(`/${kind}.crl`, buildCrl({ issuer: r0, revoked: [{ cert: other.cert }] }));
      const v = createSignerValidator({ anchors: [r0.cert], fetcher: loopback, revocation: { mode: 'hard-fail' } });
      const good = await v({ certificate: leaf.cert, carried: [], usage: 'signing' });
      assert.equal(good.status, 'trusted', `${kind}: ${good.message}`);
      assert.equal((await v({ certificate: other.cert, carried: [], usage: 'signing' })).code, 'CERT_REVOKED', kind);
    }
  } finally {
    await local.stop();
  }
});
