/**
 * docs/security.md section 5 ("A recipient's key must keep the content key secret"):
 * certificates from outside (harvested, imported, from LDAP, given to `encrypt`)
 * whose key cannot keep a content key secret, certified by a CA the store trusts.
 * The internal CA refuses such keys in a request (22-hostile-certification-requests),
 * but encryption took them: an RSA key with exponent 1 "encrypts" by the identity, so
 * the content key went out in clear in the RecipientInfo; an even exponent is no RSA
 * key (nobody can decrypt); a 1024-bit modulus is under the 2048 bits we wrap keys to;
 * an EC key on secp256k1 is on no curve S/MIME uses; an X25519 or X448 point of small
 * order gives known shared secrets (OpenSSL refuses to agree: encryption failed with
 * a bare Error, no code).
 *
 * The certificates are built here (node:crypto makes no key with e = 1, and reads no
 * EC point that is off its curve): their SubjectPublicKeyInfo written with our DER
 * writer, each signed by the test PKI's CA key (TestPki.certifyPublicKeyInfo).
 *
 * OpenSSL 3.0.19 (`openssl cms -encrypt -recip CERT`, checked by hand with these
 * certificates, 2026-12-07): it encrypts to the e = 1, e = 2, e = 65536, RSA-1024 and
 * secp256k1 certificates without a word (for e = 1 the RSA "ciphertext" is the
 * PKCS#1 block itself, content key readable at its end), and `openssl verify`
 * passes all five; only the point off its curve fails, at decoding
 * (X509_PUBKEY_get0: decode error; CMS_add1_recipient: error getting public key).
 * It encrypts to no X25519 or X448 certificate at all, small order or not ("operation
 * not supported for this keytype").
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { constants, generateKeyPairSync, publicEncrypt, randomBytes } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import { bitString, integer, NULL, oid, sequence, unsignedInteger } from '../../src/asn1/der.ts';
import { OID } from '../../src/asn1/oids.ts';
import { isKakitomeError } from '../../src/errors.ts';
import type { Certificate } from '../../src/x509/certificate.ts';
import { encryptMessage } from '../../src/smime/encrypt-message.ts';
import { encryptMessageStream } from '../../src/smime/encrypt-message-stream.ts';
import { Store } from '../../src/store/store.ts';
import { openSqliteEngine } from '../../src/store/sqlite-engine.ts';
import { masterKeyFromBytes } from '../../src/keys/master-key.ts';
import { createStoreTrustStore } from '../../src/store/store-trust-store.ts';
import { createSignerValidator } from '../../src/pki/create-signer-validator.ts';
import { CERTIFICATE_REFUSALS, findTrustedRecipientCertificate } from '../../src/store/find-trusted-recipient-certificate.ts';
import { harvestCandidate } from '../../src/store/harvest-signer.ts';
import { TestPki } from '../helpers/pki.ts';

const pki = new TestPki('Outside Partner Root');
const MESSAGE = Buffer.from('From: alice@corp.test\r\nTo: mallory@example.com\r\nSubject: Figures\r\nContent-Type: text/plain\r\n\r\nThe content key must stay secret.\r\n');
const modulus = Buffer.from(generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'jwk' }).n!, 'base64url');
/** rsaEncryption SubjectPublicKeyInfo (RFC 8017 A.1.1) for a 2048-bit modulus with exponent `e`. */
const rsaSpki = (e: bigint) => sequence(sequence(oid(OID.rsaEncryption), NULL), bitString(sequence(unsignedInteger(modulus), integer(e))));
const p256 = Buffer.from(generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey.export({ format: 'der', type: 'spki' }));
const offCurve = Buffer.from(p256);
offCurve[offCurve.length - 1]! ^= 1;

const hostile: Array<[string, Uint8Array, 'keyEncipherment' | 'keyAgreement']> = [
  ['e1', rsaSpki(1n), 'keyEncipherment'],
  ['e2', rsaSpki(2n), 'keyEncipherment'],
  ['e65536', rsaSpki(65536n), 'keyEncipherment'],
  ['rsa1024', generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'der', type: 'spki' }), 'keyEncipherment'],
  ['secp256k1', generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).publicKey.export({ format: 'der', type: 'spki' }), 'keyAgreement'],
  ['offcurve', offCurve, 'keyAgreement'],
  // Points of small order (RFC 7748 7): every shared secret is known; OpenSSL refuses the agreement, which broke encryption with a bare Error.
  ['x25519zero', Buffer.concat([Buffer.from('302a300506032b656e032100', 'hex'), Buffer.alloc(32)]), 'keyAgreement'],
  ['x448one', Buffer.concat([Buffer.from('3042300506032b656f033900', 'hex'), Buffer.from([1]), Buffer.alloc(55)]), 'keyAgreement'],
];
const certs = new Map<string, Certificate>();

before(() => {
  for (const [name, spki, usage] of hostile) certs.set(name, pki.certifyPublicKeyInfo(name, spki, [usage]).cert);
});
after(() => pki.cleanup());

const weakAlg = (name: string) => (e: unknown) => {
  assert.ok(isKakitomeError(e, 'WEAK_ALG'), `${name}: ${String(e)}`);
  assert.equal(e.remedy, 'recipientCertificate', name);
  return true;
};

test('the attack: node:crypto wraps a content key to an RSA key with exponent 1 in clear', () => {
  const cek = randomBytes(32);
  const wrapped = publicEncrypt({ key: certs.get('e1')!.publicKey, padding: constants.RSA_PKCS1_PADDING }, cek);
  assert.ok(wrapped.subarray(wrapped.length - 32).equals(cek), 'the PKCS#1 block, content key last');
});

test('encryption refuses every such recipient key (WEAK_ALG, remedy recipientCertificate), in memory and streamed, also beside a sound recipient: nothing is written', async () => {
  const good = pki.identity('rsa2048', 'good').cert;
  assert.ok(encryptMessage(MESSAGE, { recipients: [{ certificate: good }] }).length > 0, 'a sound key encrypts');
  for (const [name] of hostile) {
    const certificate = certs.get(name)!;
    assert.throws(() => encryptMessage(MESSAGE, { recipients: [{ certificate }] }), weakAlg(name));
    assert.throws(() => encryptMessage(MESSAGE, { recipients: [{ certificate: good }, { certificate, rsaPadding: 'oaep' }], contentEncryption: 'aes-256-cbc' }), weakAlg(name));
    const out = new PassThrough();
    const written: Buffer[] = [];
    out.on('data', (c: Buffer) => written.push(c));
    await assert.rejects(encryptMessageStream(Readable.from([MESSAGE]), out, { recipients: [{ certificate: good }, { certificate }] }), weakAlg(name));
    assert.equal(Buffer.concat(written).includes(Buffer.from('content key must stay')), false, `${name}: no plaintext written`);
  }
});

test('harvesting keeps no such certificate, and the store\'s recipient lookup refuses one imported as a certificate refusal (the gateway then sends the signed copy, or what the policy says when encryption is required)', async () => {
  const store = await Store.open(openSqliteEngine(':memory:'), { masterKey: masterKeyFromBytes(randomBytes(32)), actor: 'test' });
  try {
    await store.importCertificate(pki.caCert, { trust: 'trusted' });
    const validate = createSignerValidator({ trustStore: createStoreTrustStore(store), revocation: { mode: 'off' } });
    for (const [name] of hostile) {
      // Harvesting (a signer's SMIMEEncryptionKeyPreference, or its own certificate) keeps none of them to encrypt to.
      const harvested = await harvestCandidate(store, validate, { certificate: certs.get(name)!, carried: [], address: `${name}@example.com`, preferred: true });
      assert.ok('refused' in harvested && harvested.refused.code === 'WEAK_ALG', `${name}: ${JSON.stringify('refused' in harvested ? harvested.refused.code : 'kept')}`);
      assert.deepEqual(await store.listCertificates({ email: `${name}@example.com` }), [], `${name}: nothing filed`);
      if (name === 'offcurve') {
        // A key nobody can read is not imported (KEY_INVALID, nothing stored), and is no
        // candidate to encrypt to: as for an address without a certificate. Before, it was
        // imported and the lookup threw KEY_INVALID, a store error: the gateway deferred (4xx)
        // every message to the address, for as long as the certificate stayed.
        await assert.rejects(store.importCertificate(certs.get(name)!), (e: unknown) => (e as { code?: string }).code === 'KEY_INVALID');
        assert.equal(await findTrustedRecipientCertificate(store, `${name}@example.com`, validate), undefined);
        continue;
      }
      await store.importCertificate(certs.get(name)!);
      await assert.rejects(findTrustedRecipientCertificate(store, `${name}@example.com`, validate), (e: unknown) => weakAlg(name)(e) && CERTIFICATE_REFUSALS.has((e as { code: 'WEAK_ALG' }).code));
    }
  } finally {
    await store.close();
  }
});
