/**
 * The published example of RFC 9936 Appendix C (ML-KEM-512 KEMRecipientInfo in
 * AuthEnvelopedData, HKDF-SHA256, AES-128 key wrap, AES-128-GCM), decoded and
 * decrypted with the private key the RFC publishes; every intermediate value the
 * RFC prints is checked. These are public test vectors, not keys we mint.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, decapsulate } from 'node:crypto';
import { OID } from '../../src/asn1/oids.ts';
import { decodePem } from '../../src/asn1/pem.ts';
import { isKakitomeError } from '../../src/errors.ts';
import { issueCertificate } from '../../src/x509/issue.ts';
import { decryptData } from '../../src/cms/enveloped-data/decrypt.ts';
import { encryptData } from '../../src/cms/enveloped-data/encrypt.ts';
import { parseEnvelopeFromContentInfo } from '../../src/cms/enveloped-data/parse.ts';
import { encodeKemOtherInfo } from '../../src/cms/recipients/kem.ts';
import { deriveHkdf } from '../../src/cms/algorithms/kdf.ts';
import { keyWrapByOid, unwrapKey } from '../../src/cms/algorithms/key-wrap.ts';
import { TestPki } from '../helpers/pki.ts';

// RFC 9936 Appendix C.1: Bob's ML-KEM-512 public key, C.2: his private key (seed form).
const BOB_PUBLIC = `-----BEGIN PUBLIC KEY-----
MIIDMjALBglghkgBZQMEBAEDggMhADmVgV5ZfRBDVc8pqlMzyTJRhp1bzb5IcST2
Ari2pmwWxHYWSK12XPXYAGtRXpBafwrAdrDGLvoygVPnylcBaZ8TBfHmvG+QsOSb
aTUSts6ZKouAFt38GmYsfj+WGcvYad13GvMIlszVkYrGy3dGbF53mZbWf/mqvJdQ
Pyx7fi0ADYZFD7GAfKTKvaRlgloxx4mht6SRqzhydl0yDQtxkg+iE8lAk0Frg7gS
Tmn2XmLLUADcw3qpoP/3OXDEdy81fSQYnKb1MFVowOI3ajdipoxgXlY8XSCVcuD8
dTLKKUcpU1VntfxBPF6HktJGRTbMgI+YrddGZPFBVm+QFqkKVBgpqYoEZM5BqLtE
wtT6PCwglGByjvFKGnxMm5jRIgO0zDUpFgqasteDj3/2tTrgWqMafWRrevpsRZMl
JqPDdVYZvplMIRwqMcBbNEeDbLIVC+GCna5rBMVTXP9Ubjkrp5dBFyD5JPSQpaxU
lfITVtVQt4KmTBaItrZVvMeEIZekNML2Vjtbfwmni8xIgjJ4NWHRb0y6tnVUAAUH
gVcMZmBLgXrRJSKUc26LAYYaS1p0UZuLb+UUiaUHI5Llh2JscTd2V10zgGocjicy
r5fCaA9RZmMxxOuLvAQxxPloMtrxs8RVKPuhU/bHixwZhwKUfM0zdyekb7U7oR3l
y0GRNGhZUWy2rXJADzzyCbI2rvNaWArIfrPjD6/WaXPKin3SZ1r0H3oXthQzzRr4
D3cIhp9mVIhJeYCxrBCgzctjagDthoGzXkKRJMqANQcluF+DperDpKPMFgCQPmUp
NWC5szblrw1SnawaBIEZMCy3qbzBELlIUb8CEX8ZncSFqFK3Rz8JuDGmgx1bVMC3
kNIlz2u5LZRiomzbM92lEjx6rw4moLg2Ve6ii/OoB0clAY/WuuS2Ac9huqtxp6PT
UZejQ+dLSicsEl1UCJZCbYW3lY07OKa6mH7DciXHtEzbEt3kU5tKsII2NoPwS/eg
nMXEHf6DChsWLgsyQzQ2LwhKFEZ3IzRLrdAA+NjFN8SPmY8FMHzr0e3guBw7xZoG
WhttY7Js
-----END PUBLIC KEY-----`;

const BOB_PRIVATE = `-----BEGIN PRIVATE KEY-----
MFQCAQAwCwYJYIZIAWUDBAQBBEKAQAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZ
GhscHR4fICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=
-----END PRIVATE KEY-----`;

const EXAMPLE_CMS = `-----BEGIN CMS-----
MIID4gYLKoZIhvcNAQkQARegggPRMIIDzQIBADGCA3ikggN0BgsqhkiG9w0BCRAN
AzCCA2MCAQCAFFmXiMN67UAO5AXRsqM2arF9gkpRMAsGCWCGSAFlAwQEAQSCAwA+
pA/GygkOLIr3bicnqzjgZS2VFZhv4YaCf+hOWW5CG4X9RZzHiZc3LJ3jHRkbOcHV
o+tt21aq3t52XMOQ/bvC+IyxdWgdQgG4HM38sk/vE68vWhq8+NivOE8CoBCm6Rnx
mHpemxwOLT8H9YqfpTnOhswUmRChaSwMpM4Ozk7u0uZpnLl2MyRS3koutcph97CB
Mww0eY73EqJOWcM86h8fnm1PvzdDo4RnQwARM29i2HB5K4Zr780dGzZb7RlSZz06
Wwwgs4a079HPY/03a9R8zEasTdjsZrBHxMlaz/HP0CikGbAC/aG2F8umHS6Rz+j/
+8uP/U1fatixWMIZ423FFAXcDAsjSXmsZY5yvd8bZ3O5ayrj5NB76GBIBAwBZ0Nv
qDnnUpsAzJq1Wi8l22PMn1V1lOaRwR5VPUo+vHYPXxnl/hRIOLTH0VkdqbXUZ0lP
2crFLMVQQGA5nb23IpjrmkwBewB4b9x9nXqletu4thw03h4oiyq3KBcdzhQ80WlT
+YTBrtVZ5WuqDOZY0yzOQvRAdQTNelea0O+bdxNeqjm2+To6LlmXgH8GNhyD9OZ/
jj+c9oMWARUU9dhaGBzq1xTNSUDk66wB1mUo2jL4nOoEKOjrytz4qhiMn2LoWxlX
ZVt/4rjXlzt6cia2bZO/eyMvPc9lPIS07PGpkg2xlJrXULVGpVUqIOVJCXGbjAwH
BW/LfldK0qMuyVAB3ehEgb530DntW/dCYuzzmB8bANM2apwuBhxH4kGgYcYklWDS
uERqSAw4woupidn2itxLuvKiC0fkkjEoxyNC1Zf9olneC4PCBW1rd+eZsxkySqUL
HWWcKlYCm3RTxfO6UkPZ+nSdkXxA2dEB5FO8ixDkKnwIkyPAJveD4QC5+m5wFEJN
pvo3kryVfughnQFrdz8o/tzJYqSFq6/+wCMoGXHimqaJg57P0mGekih80jDbJqJQ
fMUA6xx6UpO1/pF64pvxrTUBJPijEWNSFLQR259n07hb1xUBhTfqRbQfQbTGYFEw
DQYLKoZIhvcNAQkQAxwCARAwCwYJYIZIAWUDBAEFBBjAUOQ5L5wU3QrCIgID8xfX
AflPndknePUwOgYJKoZIhvcNAQcBMB4GCWCGSAFlAwQBBjARBAxcpXRouBvwO42n
GGwCARCADZTIaJqZ0sOOGS+muggEEFzxeGxXx0ArVPyTwwpKRTM=
-----END CMS-----`;

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const SHARED_SECRET = hex('7DF12D412AE299A24FDE6D7C3BB8E3194C80AD3C733DCF2775E09FE8BEDB86D8');
const OTHER_INFO = hex('3010300B0609608648016503040105020110');
const KEK = hex('CF453A3E2BAE0A78701B8206C185A008');
const CEK = hex('C5153005588269A0A59F3C01943FDD56');
const WRAPPED_CEK = hex('C050E4392F9C14DD0AC2220203F317D701F94F9DD92778F5');
const KEY_ID = hex('599788C37AED400EE405D1B2A3366AB17D824A51');

const der = decodePem(EXAMPLE_CMS)[0]!.der;
const bobKey = createPrivateKey(BOB_PRIVATE);
const pki = new TestPki();
after(() => pki.cleanup());

test('RFC 9936 C: the example decodes to an AuthEnvelopedData v0 with one KEMRecipientInfo', () => {
  const env = parseEnvelopeFromContentInfo(der);
  assert.equal(env.type, 'authEnvelopedData');
  assert.equal(env.version, 0);
  assert.equal(env.recipients.length, 1);
  const r = env.recipients[0]!;
  assert.equal(r.kind, 'kemri');
  if (r.kind !== 'kemri') return;
  assert.equal(r.rid.kind, 'subjectKeyIdentifier');
  assert.deepEqual(Buffer.from(r.rid.kind === 'subjectKeyIdentifier' ? r.rid.keyId : []), KEY_ID);
  assert.equal(r.kem.oid, OID.mlKem512);
  assert.equal(r.kemct.length, 768);
  assert.equal(r.kdf.oid, OID.hkdfWithSha256);
  assert.equal(r.kekLength, 16);
  assert.equal(r.wrap.oid, OID.aes128_wrap);
  assert.deepEqual(Buffer.from(r.encryptedKey), WRAPPED_CEK);
  assert.equal(env.contentEncryption.cipher.name, 'aes-128-gcm');
  assert.equal(env.contentEncryption.tagLength, 16);
  assert.equal(env.mac?.length, 16);
  assert.equal(env.aad, undefined);
});

test('RFC 9936 C: every intermediate value (ss, CMSORIforKEMOtherInfo, KEK, CEK) matches', () => {
  const env = parseEnvelopeFromContentInfo(der);
  const r = env.recipients[0]!;
  if (r.kind !== 'kemri') return assert.fail('not a kemri');
  assert.deepEqual(decapsulate(bobKey, r.kemct), SHARED_SECRET);
  const info = encodeKemOtherInfo(r.wrap.der, r.kekLength, r.ukm);
  assert.deepEqual(info, OTHER_INFO);
  assert.deepEqual(deriveHkdf('sha256', SHARED_SECRET, info, 16), KEK);
  assert.deepEqual(unwrapKey(keyWrapByOid(OID.aes128_wrap)!, KEK, r.encryptedKey), CEK);
});

test('RFC 9936 C: decrypts to "Hello, world!" with the published private key', () => {
  const r = decryptData(der, { keys: [{ key: bobKey }] });
  assert.equal(r.content.toString(), 'Hello, world!');
  assert.equal(r.contentEncryption, 'aes-128-gcm');
  assert.equal(r.authenticated, true);
  assert.equal(r.recipient.keyManagement, 'ml-kem-512');
  assert.equal(r.recipient.identifier?.kind, 'subjectKeyIdentifier');

  // With a certificate for Bob's published key: its RFC 5280 method-1 key identifier is the
  // one in the example, so the certificate path matches the rid too.
  const cert = issueCertificate({ subject: { commonName: 'Bob (RFC 9936)' }, publicKey: createPublicKey(BOB_PUBLIC), issuer: pki.caCert, signingKey: pki.caKey, keyUsage: ['keyEncipherment'] });
  assert.deepEqual(Buffer.from(cert.subjectKeyIdentifier!), KEY_ID);
  assert.equal(decryptData(der, { keys: [{ key: bobKey, certificate: cert }] }).content.toString(), 'Hello, world!');
});

test('RFC 9936 C: a damaged example fails with the one DecryptionError', () => {
  const env = parseEnvelopeFromContentInfo(der);
  const r = env.recipients[0]!;
  if (r.kind !== 'kemri') return assert.fail('not a kemri');
  for (const part of [r.kemct, r.encryptedKey, env.mac!]) {
    const bad = Buffer.from(der);
    bad[part.byteOffset - der.byteOffset + 5]! ^= 0x80;
    assert.throws(() => decryptData(bad, { keys: [{ key: bobKey }] }), (e) => isKakitomeError(e, 'DECRYPT_FAILED'));
  }
});

test('KEMRecipientInfo we write: HKDF-SHA256, aes256-wrap and kekLength 32 for ML-KEM-768/1024 (RFC 9936 2.1)', () => {
  for (const kind of ['mlkem768', 'mlkem1024'] as const) {
    const id = pki.identity(kind);
    const out = encryptData(Buffer.from('pq'), { recipients: [{ certificate: id.cert }], contentEncryption: 'aes-128-gcm' });
    const env = parseEnvelopeFromContentInfo(out);
    const r = env.recipients[0]!;
    if (r.kind !== 'kemri') return assert.fail('not a kemri');
    assert.equal(r.kdf.oid, OID.hkdfWithSha256);
    assert.equal(r.kdf.parameters, undefined);
    assert.equal(r.wrap.oid, OID.aes256_wrap);
    assert.equal(r.kekLength, 32);
    assert.equal(r.kemct.length, kind === 'mlkem768' ? 1088 : 1568);
    assert.equal(r.ukm, undefined);
    assert.equal(decryptData(out, { keys: [{ key: id.key, certificate: id.cert }] }).content.toString(), 'pq');
  }
});

test('KEMRecipientInfo: kekLength inconsistent with the wrap algorithm is refused (RFC 9936 2.2.1)', () => {
  // Change INTEGER 16 (kekLength) in the example to 32: 02 01 10 -> 02 01 20.
  const env = parseEnvelopeFromContentInfo(der);
  const r = env.recipients[0]!;
  if (r.kind !== 'kemri') return assert.fail('not a kemri');
  const at = Buffer.from(der).indexOf(Buffer.concat([Buffer.from(r.kdf.der), Buffer.of(0x02, 0x01, 0x10)]));
  assert.ok(at > 0);
  const bad = Buffer.from(der);
  bad[at + r.kdf.der.length + 2] = 0x20;
  assert.throws(() => decryptData(bad, { keys: [{ key: bobKey }] }), (e) => isKakitomeError(e, 'MALFORMED'));
});
