import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSignerValidator, type SignerValidatorOptions } from '../../src/pki/create-signer-validator.ts';
import { loadTrustAnchors, createStaticTrustStore } from '../../src/pki/load-trust-anchors.ts';
import { createHttpFetcher } from '../../src/pki/create-http-fetcher.ts';
import type { SignerValidationInput } from '../../src/pki/types.ts';
import { issueCertificate, encodeName } from '../../src/x509/issue.ts';
import { OID } from '../../src/asn1/oids.ts';
import { encodePem } from '../../src/asn1/pem.ts';
import { rootCa, subCa, endEntity, key, extension, nameConstraints, certificatePolicies, StaticHttpServer, type Party } from './pki-builder.ts';
import { sequence, implicit } from '../../src/asn1/der.ts';

const off = { mode: 'off' as const };
let root: Party;
let inter: Party;
let alice: Party;
let http: StaticHttpServer;

before(async () => {
  root = rootCa('Path Root');
  inter = subCa(root, 'Path Issuing CA', { ca: { pathLength: 0 } });
  alice = endEntity(inter, 'alice@example.com');
  http = new StaticHttpServer();
  await http.start();
});
after(async () => {
  await http.stop();
});

function validator(extra: SignerValidatorOptions = {}) {
  return createSignerValidator({ anchors: [root.cert], revocation: off, fetcher: createHttpFetcher({ allowedHosts: ['127.0.0.1'] }), ...extra });
}

function input(p: Party, carried: Party[], more: Partial<SignerValidationInput> = {}): SignerValidationInput {
  return { certificate: p.cert, carried: carried.map((c) => c.cert), usage: 'signing', from: [p.cert.emailAddresses[0] ?? 'x@example.com'], ...more };
}

test('a valid chain with the intermediate carried in the message is trusted and explained', async () => {
  const r = await validator()(input(alice, [inter]));
  assert.equal(r.status, 'trusted', r.message);
  assert.equal(r.code, undefined);
  assert.deepEqual(r.path.map((c) => c.fingerprint256), [alice.cert, inter.cert, root.cert].map((c) => c.fingerprint256));
  assert.equal(r.anchor?.fingerprint256, root.cert.fingerprint256);
  assert.equal(r.clock.source, 'now');
  assert.equal(r.revocation.status, 'not-checked');
  assert.equal(r.identity.status, 'match');
  assert.match(r.message, /^Trusted: certificate of alice@example.com chains to ".*Path Root.*", valid now, revocation not checked, matches the sender\.$/);
});

test('without the intermediate there is no path (CERT_UNTRUSTED)', async () => {
  const r = await validator()(input(alice, []));
  assert.equal(r.status, 'untrusted');
  assert.equal(r.code, 'CERT_UNTRUSTED');
  assert.match(r.message, /^Not trusted: no chain from the certificate/);
});

test('a certificate carried in the message is never an anchor', async () => {
  // A self-signed "root" carried with the message, and a leaf it issued.
  const fake = rootCa('Path Root', {}, 'fake-root'); // same name as the real root, other key
  const mallory = endEntity(fake, 'mallory@example.com');
  const r = await validator()(input(mallory, [fake]));
  assert.equal(r.code, 'CERT_UNTRUSTED');
  // Even carrying the self-signed certificate as the signer itself.
  const r2 = await validator()(input(fake, [fake], { from: undefined }));
  assert.equal(r2.code, 'CERT_UNTRUSTED');
});

test('a link whose signature does not verify is not followed', async () => {
  const forged = issueCertificate({
    subject: { commonName: 'forged' },
    publicKey: key('p256', 'forged').publicKey,
    issuer: inter.cert,
    signingKey: key('p256', 'not-the-ca').privateKey,
    keyUsage: ['digitalSignature'],
    extKeyUsage: [OID.emailProtection],
    emails: ['forged@example.com'],
  });
  const r = await validator()({ certificate: forged, carried: [inter.cert], usage: 'signing' });
  assert.equal(r.code, 'CERT_UNTRUSTED');
});

test('expired certificate: CERT_EXPIRED with the now clock, trusted with the signingTime clock', async () => {
  const old = endEntity(inter, 'old@example.com', { notBefore: new Date(Date.now() - 400 * 86_400_000), notAfter: new Date(Date.now() - 10 * 86_400_000) });
  const signingTime = new Date(Date.now() - 100 * 86_400_000);
  const r = await validator()(input(old, [inter], { signingTime }));
  assert.equal(r.code, 'CERT_EXPIRED');
  assert.match(r.message, /expired on/);
  assert.equal(r.clock.source, 'now');
  const r2 = await validator({ validityClock: 'signingTime' })(input(old, [inter], { signingTime }));
  assert.equal(r2.status, 'trusted', r2.message);
  assert.equal(r2.clock.source, 'signingTime');
  assert.equal(r2.clock.time.getTime(), signingTime.getTime());
  assert.match(r2.message, /valid at the signing time/);
  // A signing time after expiry does not help.
  const r3 = await validator({ validityClock: 'signingTime' })(input(old, [inter], { signingTime: new Date(Date.now() - 86_400_000) }));
  assert.equal(r3.code, 'CERT_EXPIRED');
  assert.ok(r3.warnings.some((w) => /outside the certificate's validity period/.test(w)));
  assert.ok(!r2.warnings.some((w) => /outside the certificate's validity period/.test(w)));
  // No signing time: falls back to now, and says so.
  const r4 = await validator({ validityClock: 'signingTime' })(input(old, [inter]));
  assert.equal(r4.clock.source, 'now');
  assert.ok(r4.warnings.some((w) => /no signing time/.test(w)));
  // A signing time in the future is not believed.
  const r5 = await validator({ validityClock: 'signingTime' })(input(alice, [inter], { signingTime: new Date(Date.now() + 86_400_000) }));
  assert.equal(r5.clock.source, 'now');
});

test('a certificate not yet valid is CERT_EXPIRED', async () => {
  const future = endEntity(inter, 'future@example.com', { notBefore: new Date(Date.now() + 86_400_000), notAfter: new Date(Date.now() + 2 * 86_400_000) });
  const r = await validator()(input(future, [inter]));
  assert.equal(r.code, 'CERT_EXPIRED');
  assert.match(r.message, /not valid before/);
});

test('pathLenConstraint: a CA below a pathLen 0 CA is refused', async () => {
  const deeper = subCa(inter, 'Too Deep CA');
  const bob = endEntity(deeper, 'bob@example.com');
  const r = await validator()(input(bob, [inter, deeper]));
  assert.equal(r.code, 'CERT_UNTRUSTED');
  assert.match(r.message, /pathLenConstraint/);
});

test('an issuer without basicConstraints cA is not a CA', async () => {
  const notCa = subCa(root, 'Not A CA', { ca: false, keyUsage: ['digitalSignature', 'keyCertSign'] });
  const carol = endEntity(notCa, 'carol@example.com');
  const r = await validator()(input(carol, [notCa]));
  assert.equal(r.code, 'CERT_UNTRUSTED');
  assert.match(r.message, /not a CA/);
});

test('a CA without keyCertSign cannot issue', async () => {
  const noSign = subCa(root, 'No keyCertSign CA', { keyUsage: ['cRLSign'] });
  const dan = endEntity(noSign, 'dan@example.com');
  const r = await validator()(input(dan, [noSign]));
  assert.equal(r.code, 'CERT_UNTRUSTED');
  assert.match(r.message, /keyCertSign/);
});

test('keyUsage: signing needs digitalSignature or nonRepudiation, encryption keyEncipherment or keyAgreement', async () => {
  const encOnly = endEntity(inter, 'enc@example.com', { keyUsage: ['keyAgreement'] });
  const r = await validator()(input(encOnly, [inter]));
  assert.equal(r.code, 'CERT_USAGE');
  const r2 = await validator()(input(encOnly, [inter], { usage: 'encryption' }));
  assert.equal(r2.status, 'trusted', r2.message);
  const sigOnly = endEntity(inter, 'sig@example.com', { keyUsage: ['digitalSignature'] });
  const r3 = await validator()(input(sigOnly, [inter], { usage: 'encryption' }));
  assert.equal(r3.code, 'CERT_USAGE');
});

test('keyUsage for encryption: the bit the key type needs (keyAgreement for EC, keyEncipherment for RSA); a signature-only key type never', async () => {
  const ecWrongBit = endEntity(inter, 'ec-wrong@example.com', { keyUsage: ['keyEncipherment'] });
  const r1 = await validator()(input(ecWrongBit, [inter], { usage: 'encryption' }));
  assert.equal(r1.code, 'CERT_USAGE');
  assert.match(r1.message, /keyAgreement/);
  const rsaWrongBit = endEntity(inter, 'rsa-wrong@example.com', { keyUsage: ['keyAgreement'] }, 'rsa2048');
  assert.equal((await validator()(input(rsaWrongBit, [inter], { usage: 'encryption' }))).code, 'CERT_USAGE');
  const rsaRight = endEntity(inter, 'rsa-right@example.com', { keyUsage: ['keyEncipherment'] }, 'rsa2048');
  assert.equal((await validator()(input(rsaRight, [inter], { usage: 'encryption' }))).status, 'trusted');
  const ed = endEntity(inter, 'ed@example.com', { keyUsage: undefined }, 'ed25519');
  const r4 = await validator()(input(ed, [inter], { usage: 'encryption' }));
  assert.equal(r4.code, 'CERT_USAGE');
  assert.match(r4.message, /ed25519 key cannot receive/);
});

test('extendedKeyUsage: emailProtection required, anyExtendedKeyUsage accepted with a warning (RFC 8550 4.4.4)', async () => {
  const server = endEntity(inter, 'tls@example.com', { extKeyUsage: ['1.3.6.1.5.5.7.3.1'] });
  const r = await validator()(input(server, [inter]));
  assert.equal(r.code, 'CERT_USAGE');
  const any = endEntity(inter, 'any@example.com', { extKeyUsage: [OID.anyExtendedKeyUsage] });
  const r2 = await validator()(input(any, [inter]));
  assert.equal(r2.status, 'trusted', r2.message);
  assert.ok(r2.warnings.some((w) => /any extended key usage/.test(w)));
  // An intermediate restricted to TLS cannot issue S/MIME certificates.
  const tlsCa = subCa(root, 'TLS Only CA', { extKeyUsage: ['1.3.6.1.5.5.7.3.1'] });
  const erin = endEntity(tlsCa, 'erin@example.com');
  const r3 = await validator()(input(erin, [tlsCa]));
  assert.equal(r3.code, 'CERT_USAGE');
});

test('name constraints on rfc822Name: permitted domain and excluded mailbox', async () => {
  const nc = subCa(root, 'Constrained CA', { extraExtensions: [nameConstraints({ permittedEmail: ['example.com', '.example.com'], excludedEmail: ['ceo@example.com'] })] });
  const ok = endEntity(nc, 'staff@example.com');
  const sub = endEntity(nc, 'staff@mail.example.com');
  const outside = endEntity(nc, 'eve@evil.example');
  const ceo = endEntity(nc, 'ceo@example.com');
  assert.equal((await validator()(input(ok, [nc]))).status, 'trusted');
  assert.equal((await validator()(input(sub, [nc]))).status, 'trusted');
  const r = await validator()(input(outside, [nc]));
  assert.equal(r.code, 'CERT_UNTRUSTED');
  assert.match(r.message, /name constraints violated: eve@evil.example is outside/);
  const r2 = await validator()(input(ceo, [nc]));
  assert.match(r2.message, /excluded mail name space ceo@example.com/);
});

test('name constraints on directoryName, robust to a change of string type and case', async () => {
  const permitted = encodeName({ country: 'JP', organization: 'Kakitome Trust Tests' });
  const excluded = encodeName({ country: 'JP', organization: 'Kakitome Trust Tests', organizationalUnit: 'Banned' });
  const nc = subCa(root, 'DN Constrained CA', { extraExtensions: [nameConstraints({ permittedDn: [permitted], excludedDn: [excluded] })] });
  const make = (subject: Parameters<typeof encodeName>[0], slot: string) =>
    issueCertificate({ subject, publicKey: key('p256', slot).publicKey, issuer: nc.cert, signingKey: nc.key, keyUsage: ['digitalSignature'], extKeyUsage: [OID.emailProtection], emails: [`${slot}@example.com`] });
  const inside = make({ country: 'JP', organization: 'Kakitome Trust Tests', commonName: 'In' }, 'dn-in');
  const outside = make({ country: 'JP', organization: 'Other Org', commonName: 'Out' }, 'dn-out');
  const banned = make({ country: 'JP', organization: 'KAKITOME  trust tests', organizationalUnit: 'banned', commonName: 'B' }, 'dn-banned');
  const v = validator();
  assert.equal((await v({ certificate: inside, carried: [nc.cert], usage: 'signing' })).status, 'trusted');
  const r = await v({ certificate: outside, carried: [nc.cert], usage: 'signing' });
  assert.match(r.message, /outside the directory subtrees/);
  const r2 = await v({ certificate: banned, carried: [nc.cert], usage: 'signing' });
  assert.match(r2.message, /excluded by/);
});

test('an unknown critical extension is rejected; an unknown non-critical one is ignored', async () => {
  const crit = endEntity(inter, 'crit@example.com', { extraExtensions: [extension('1.3.6.1.4.1.99999.1', true, Buffer.of(5, 0))] });
  const r = await validator()(input(crit, [inter]));
  assert.equal(r.code, 'CERT_UNTRUSTED');
  assert.match(r.message, /unknown critical extension 1\.3\.6\.1\.4\.1\.99999\.1/);
  const nonCrit = endEntity(inter, 'noncrit@example.com', { extraExtensions: [extension('1.3.6.1.4.1.99999.1', false, Buffer.of(5, 0))] });
  assert.equal((await validator()(input(nonCrit, [inter]))).status, 'trusted');
});

test('cross-certified CAs that issue each other do not loop, and path search is bounded', { timeout: 30_000 }, async () => {
  // Two CAs, A and B, each certified by the other (a loop), neither chaining to the root.
  const aKey = key('p256', 'loop-a');
  const bKey = key('p256', 'loop-b');
  const selfA = rootCa('Loop A', {}, 'loop-a');
  const selfB = rootCa('Loop B', {}, 'loop-b');
  const aByB = issueCertificate({ subject: { commonName: 'Loop A', organization: 'Kakitome Trust Tests', country: 'JP' }, publicKey: aKey.publicKey, issuer: selfB.cert, signingKey: bKey.privateKey, ca: true, keyUsage: ['keyCertSign'] });
  const bByA = issueCertificate({ subject: { commonName: 'Loop B', organization: 'Kakitome Trust Tests', country: 'JP' }, publicKey: bKey.publicKey, issuer: selfA.cert, signingKey: aKey.privateKey, ca: true, keyUsage: ['keyCertSign'] });
  const leaf = endEntity({ cert: aByB, key: aKey.privateKey }, 'loop@example.com');
  const r = await validator({ maxCandidates: 20 })({ certificate: leaf.cert, carried: [aByB, bByA, selfA.cert, selfB.cert], usage: 'signing' });
  assert.equal(r.code, 'CERT_UNTRUSTED');
  // Many same-named decoys: the candidate budget stops the search.
  const decoys = Array.from({ length: 40 }, (_, i) => subCa(root, 'Decoy CA', {}, `decoy-${i % 3}`).cert);
  const orphan = endEntity(subCa(rootCa('Elsewhere'), 'Decoy CA', {}, 'decoy-x'), 'orphan@example.com');
  const r2 = await validator({ maxCandidates: 10 })({ certificate: orphan.cert, carried: decoys, usage: 'signing' });
  assert.equal(r2.code, 'CERT_UNTRUSTED');
  assert.match(r2.message, /more than 10 candidate issuers/);
});

test('an intermediate is fetched from caIssuers over HTTP (opted in for the host), then cached', async () => {
  http.files.set('/inter.cer', inter.cert.der);
  const frank = endEntity(inter, 'frank@example.com', { caIssuerUrls: [http.url('/inter.cer')] });
  const v = validator({ fetchCaIssuers: { hosts: ['127.0.0.1'] } });
  const before = http.requests;
  const r = await v(input(frank, []));
  assert.equal(r.status, 'trusted', r.message);
  assert.equal(r.path.length, 3);
  assert.equal(http.requests, before + 1);
  await v(input(frank, []));
  assert.equal(http.requests, before + 1, 'served from the chain cache');
});

test('intermediates of a validated path are remembered for later messages', async () => {
  const v = validator();
  assert.equal((await v(input(alice, [inter]))).status, 'trusted');
  const gina = endEntity(inter, 'gina@example.com');
  const r = await v(input(gina, []));
  assert.equal(r.status, 'trusted', r.message);
});

test('the trust store supplies intermediates; an intermediate that is also an anchor ends the path', async () => {
  const store = createStaticTrustStore([root.cert], [inter.cert]);
  const r = await createSignerValidator({ trustStore: store, revocation: off })(input(alice, []));
  assert.equal(r.status, 'trusted', r.message);
  const r2 = await createSignerValidator({ anchors: [inter.cert], revocation: off })(input(alice, [inter]));
  assert.equal(r2.status, 'trusted');
  assert.equal(r2.path.length, 2);
});

test('algorithm policy on certificates: RSA-1024 refused by default, flagged when legacy algorithms are allowed; unknown curves refused', async () => {
  const weak = endEntity(inter, 'weak@example.com', {}, 'rsa1024');
  const r = await validator({ allowLegacy: true })(input(weak, [inter]));
  assert.equal(r.status, 'trusted', r.message);
  assert.ok(r.warnings.some((w) => /1024-bit RSA key/.test(w)));
  assert.match(r.message, /only because legacy algorithms are allowed/);
  const r2 = await validator()(input(weak, [inter]));
  assert.equal(r2.code, 'WEAK_ALG');
  const k1 = endEntity(inter, 'k1@example.com', {}, 'secp256k1');
  const r3 = await validator()(input(k1, [inter]));
  assert.equal(r3.code, 'WEAK_ALG');
  assert.match(r3.message, /secp256k1/);
});

test('algorithm policy on the signature: MD5 refused, SHA-1 refused by default or flagged as legacy', async () => {
  const md5 = await validator()(input(alice, [inter], { signatureAlgorithms: { digest: OID.md5, signature: OID.ecdsaWithSHA256 } }));
  assert.equal(md5.code, 'WEAK_ALG');
  assert.match(md5.message, /MD5/);
  const sha1Input = input(alice, [inter], { signatureAlgorithms: { digest: OID.sha1, signature: OID.ecdsaWithSHA1 } });
  const sha1 = await validator({ allowLegacy: true })(sha1Input);
  assert.equal(sha1.status, 'trusted');
  assert.deepEqual(sha1.legacy, ['The message signature uses SHA-1 (ecdsaWithSHA1), a broken hash for signatures.']);
  assert.ok(sha1.warnings.some((w) => /SHA-1/.test(w)));
  assert.equal((await validator()(sha1Input)).code, 'WEAK_ALG');
  // allowLegacy loosens SHA-1 and short RSA keys only: MD5 stays refused.
  assert.equal((await validator({ allowLegacy: true })(input(alice, [inter], { signatureAlgorithms: { digest: OID.md5, signature: OID.ecdsaWithSHA256 } }))).code, 'WEAK_ALG');
});

test('loadTrustAnchors reads PEM bundles, DER files and directories, and reports bad files', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kakitome-anchors-'));
  try {
    const other = rootCa('Second Root');
    writeFileSync(join(dir, 'bundle.pem'), encodePem('CERTIFICATE', root.cert.der) + encodePem('CERTIFICATE', other.cert.der));
    mkdirSync(join(dir, 'd'));
    writeFileSync(join(dir, 'd', 'inter.der'), inter.cert.der);
    writeFileSync(join(dir, 'd', 'root-again.crt'), encodePem('CERTIFICATE', root.cert.der));
    writeFileSync(join(dir, 'd', 'README.txt'), 'not a certificate');
    const anchors = await loadTrustAnchors([join(dir, 'bundle.pem'), join(dir, 'd')]);
    assert.deepEqual(anchors.map((a) => a.fingerprint256).sort(), [root.cert, other.cert, inter.cert].map((c) => c.fingerprint256).sort());
    writeFileSync(join(dir, 'bad.pem'), 'garbage');
    await assert.rejects(loadTrustAnchors([join(dir, 'bad.pem')]), { code: 'MALFORMED' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('policyConstraints requireExplicitPolicy (critical, as RFC 5280 requires) is processed', async () => {
  const requireExplicit = extension('2.5.29.36', true, sequence(implicit(0, false, Buffer.of(0))));
  const policyA = '1.3.6.1.4.1.99999.20.1';
  const pca = subCa(root, 'Policy CA', { extraExtensions: [requireExplicit, certificatePolicies(policyA)] });
  const withPolicy = endEntity(pca, 'pol@example.com', { extraExtensions: [certificatePolicies(policyA)] });
  const without = endEntity(pca, 'nopol@example.com');
  assert.equal((await validator()(input(withPolicy, [pca]))).status, 'trusted');
  const r = await validator()(input(without, [pca]));
  assert.equal(r.code, 'CERT_UNTRUSTED');
  assert.match(r.message, /explicit certificate policy/);
});

test('encrypting to a certificate applies the rules for new messages: RSA-1024 refused', async () => {
  const weak = endEntity(inter, 'weak-enc@example.com', {}, 'rsa1024');
  const r = await validator()(input(weak, [inter], { usage: 'encryption' }));
  assert.equal(r.code, 'WEAK_ALG');
});

test('chains of Ed25519, ML-DSA-65 and RSA-2048 certificates validate', async () => {
  const { generateKeyPairSync } = await import('node:crypto');
  const kinds = [generateKeyPairSync('ed25519'), generateKeyPairSync('ml-dsa-65'), key('rsa2048', 'chain')];
  for (const k of kinds) {
    const type = k.publicKey.asymmetricKeyType!;
    const r0 = { cert: issueCertificate({ subject: { commonName: `${type} Root` }, publicKey: k.publicKey, signingKey: k.privateKey, ca: true, keyUsage: ['keyCertSign', 'cRLSign'], notBefore: new Date(Date.now() - 86_400_000) }), key: k.privateKey };
    const i0 = { cert: issueCertificate({ subject: { commonName: `${type} CA` }, publicKey: k.publicKey, issuer: r0.cert, signingKey: k.privateKey, ca: true, keyUsage: ['keyCertSign'], notBefore: new Date(Date.now() - 86_400_000) }), key: k.privateKey };
    const leaf = endEntity(i0, `${type}@example.com`);
    const r = await createSignerValidator({ anchors: [r0.cert], revocation: off })(input(leaf, [i0]));
    assert.equal(r.status, 'trusted', `${type}: ${r.message}`);
    assert.equal(r.path.length, 3, type);
  }
});
