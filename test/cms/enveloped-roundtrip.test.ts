import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { TestPki, type KeyKind } from '../helpers/pki.ts';
import { encryptData, type ContentEncryptionName, type RecipientOptions } from '../../src/cms/enveloped-data/encrypt.ts';
import { decryptData } from '../../src/cms/enveloped-data/decrypt.ts';
import { parseEnvelopeFromContentInfo } from '../../src/cms/enveloped-data/parse.ts';
import { recoverContentKey } from '../../src/cms/enveloped-data/recover-content-key.ts';
import { decode } from '../../src/asn1/ber.ts';
import { OID } from '../../src/asn1/oids.ts';
import { isKakitomeError } from '../../src/errors.ts';
import { issueCertificate } from '../../src/x509/issue.ts';

const pki = new TestPki();
after(() => pki.cleanup());

const CIPHERS: ContentEncryptionName[] = ['aes-128-gcm', 'aes-192-gcm', 'aes-256-gcm', 'chacha20-poly1305', 'aes-128-cbc', 'aes-192-cbc', 'aes-256-cbc'];

interface Kind {
  label: string;
  key: KeyKind;
  options?: Partial<RecipientOptions>;
  keyManagement: string;
}

const KINDS: Kind[] = [
  { label: 'RSA PKCS#1 v1.5', key: 'rsa2048', keyManagement: 'rsa-pkcs1' },
  { label: 'RSA-OAEP SHA-256', key: 'rsa2048', options: { rsaPadding: 'oaep' }, keyManagement: 'rsa-oaep' },
  { label: 'RSA-OAEP SHA-512', key: 'rsa2048', options: { rsaPadding: 'oaep', oaepHash: 'sha512' }, keyManagement: 'rsa-oaep' },
  { label: 'ECDH P-256', key: 'p256', keyManagement: 'ecdh' },
  { label: 'ECDH P-384 (KDF SHA-384)', key: 'p384', options: { kdfHash: 'sha384' }, keyManagement: 'ecdh' },
  { label: 'ECDH P-521 (KDF SHA-512)', key: 'p521', options: { kdfHash: 'sha512' }, keyManagement: 'ecdh' },
  { label: 'X25519', key: 'x25519', keyManagement: 'x25519' },
  { label: 'X448 (HKDF SHA-512)', key: 'x448', options: { kdfHash: 'sha512' }, keyManagement: 'x448' },
  { label: 'ML-KEM-768', key: 'mlkem768', keyManagement: 'ml-kem-768' },
  { label: 'ML-KEM-1024', key: 'mlkem1024', keyManagement: 'ml-kem-1024' },
];

const message = Buffer.from('Kakitome round trip: \u65e5\u672c\u8a9e and 8-bit \u00ff bytes.\r\n'.repeat(20));

test('every content cipher x every key-management kind, with and without the certificate', () => {
  for (const kind of KINDS) {
    const id = pki.identity(kind.key);
    for (const contentEncryption of CIPHERS) {
      const der = encryptData(message, { recipients: [{ certificate: id.cert, ...kind.options }], contentEncryption });
      const outer = parseEnvelopeFromContentInfo(der);
      assert.equal(outer.type, contentEncryption.includes('cbc') ? 'envelopedData' : 'authEnvelopedData');
      for (const keys of [[{ key: id.key, certificate: id.cert }], [{ key: id.key }]]) {
        const r = decryptData(der, { keys });
        assert.deepEqual(r.content, message, `${kind.label} ${contentEncryption}`);
        assert.equal(r.contentEncryption, contentEncryption);
        assert.equal(r.authenticated, !contentEncryption.includes('cbc'));
        assert.equal(r.recipient.keyManagement, kind.keyManagement);
        assert.equal(r.recipient.index, 0);
        assert.equal(r.recipients, 1);
        assert.deepEqual(r.warnings, []);
        assert.equal(r.contentType, OID.data);
      }
    }
  }
});

test('subjectKeyIdentifier recipients of every kind, and RecipientInfo versions', () => {
  for (const kind of KINDS) {
    const id = pki.identity(kind.key);
    const der = encryptData(message, { recipients: [{ certificate: id.cert, identifier: 'subjectKeyIdentifier', ...kind.options }] });
    const env = parseEnvelopeFromContentInfo(der);
    const r = env.recipients[0]!;
    const rid = r.kind === 'kari' ? r.recipientEncryptedKeys[0]!.rid : r.kind === 'ktri' || r.kind === 'kemri' ? r.rid : undefined;
    assert.equal(rid?.kind, 'subjectKeyIdentifier', kind.label);
    const out = decryptData(der, { keys: [{ key: id.key, certificate: id.cert }] });
    assert.deepEqual(out.content, message);
    assert.equal(out.recipient.identifier?.kind, 'subjectKeyIdentifier');
  }
});

test('EnvelopedData versions follow RFC 5652 6.1 (0, 2, 3) and AuthEnvelopedData stays 0', () => {
  const rsa = pki.identity('rsa2048');
  const ec = pki.identity('p256');
  const kem = pki.identity('mlkem768');
  const v = (recipients: RecipientOptions[], contentEncryption: ContentEncryptionName) => parseEnvelopeFromContentInfo(encryptData(message, { recipients, contentEncryption })).version;
  assert.equal(v([{ certificate: rsa.cert }], 'aes-128-cbc'), 0);
  assert.equal(v([{ certificate: rsa.cert, identifier: 'subjectKeyIdentifier' }], 'aes-128-cbc'), 2);
  assert.equal(v([{ certificate: ec.cert }], 'aes-128-cbc'), 2);
  assert.equal(v([{ certificate: kem.cert }, { certificate: rsa.cert }], 'aes-128-cbc'), 3);
  assert.equal(v([{ certificate: kem.cert }], 'aes-256-gcm'), 0);
});

test('one envelope with many recipients of mixed kinds: each opens its own', () => {
  const ids = KINDS.map((k, i) => ({ id: pki.identity(k.key, `mixed-${i}`), kind: k }));
  const recipients = ids.map(({ id, kind }, i) => ({ certificate: id.cert, identifier: i % 2 ? ('subjectKeyIdentifier' as const) : ('issuerAndSerialNumber' as const), ...kind.options }));
  for (const contentEncryption of ['aes-256-gcm', 'aes-128-cbc'] as const) {
    const der = encryptData(message, { recipients, contentEncryption });
    ids.forEach(({ id, kind }, i) => {
      const r = decryptData(der, { keys: [{ key: id.key, certificate: id.cert }] });
      assert.deepEqual(r.content, message);
      assert.equal(r.recipients, ids.length);
      assert.equal(r.recipient.keyManagement, kind.keyManagement);
      // DER sorts the SET OF RecipientInfo, so the index is where it landed; it must name this certificate.
      const env = parseEnvelopeFromContentInfo(der);
      assert.ok(env.recipients[r.recipient.index], `recipient ${i}`);
    });
    // Without certificates: every key of a matching type is tried.
    const last = ids[ids.length - 1]!.id;
    assert.deepEqual(decryptData(der, { keys: [{ key: last.key }] }).content, message);
  }
});

test('100 RSA recipients in one envelope; decrypt picks the right one with and without certificates', () => {
  const ids = Array.from({ length: 100 }, (_, i) => pki.identity('rsa2048', `many-${i}`));
  const der = encryptData(message, { recipients: ids.map((i) => ({ certificate: i.cert })) });
  for (const i of [0, 57, 99]) {
    const id = ids[i]!;
    const r = decryptData(der, { keys: [{ key: id.key, certificate: id.cert }] });
    assert.deepEqual(r.content, message);
    assert.equal(r.recipients, 100);
    assert.equal(r.recipient.keyManagement, 'rsa-pkcs1');
  }
  // The no-certificate path tries every RSA recipient (implicit rejection makes wrong ones
  // look like random keys); the AEAD tag tells the right one.
  assert.deepEqual(decryptData(der, { keys: [{ key: ids[42]!.key }] }).content, message);
});

test('a content type other than id-data is carried in authenticated attributes (RFC 5083 2.1)', () => {
  const id = pki.identity('p256');
  const der = encryptData(message, { recipients: [{ certificate: id.cert }], contentType: OID.signedData });
  const env = parseEnvelopeFromContentInfo(der);
  assert.ok(env.aad && env.authAttributes?.has(OID.contentType));
  const r = decryptData(der, { keys: [{ key: id.key, certificate: id.cert }] });
  assert.equal(r.contentType, OID.signedData);
  assert.deepEqual(r.content, message);
  // CBC: no attributes needed, the content type is in EncryptedContentInfo.
  const cbc = decryptData(encryptData(message, { recipients: [{ certificate: id.cert }], contentType: OID.signedData, contentEncryption: 'aes-256-cbc' }), { keys: [{ key: id.key }] });
  assert.equal(cbc.contentType, OID.signedData);
});

test('output is DER, and empty content round-trips', () => {
  const id = pki.identity('x25519');
  const der = encryptData(new Uint8Array(0), { recipients: [{ certificate: id.cert }] });
  decode(der, { der: true });
  assert.equal(decryptData(der, { keys: [{ key: id.key }] }).content.length, 0);
  const cbc = encryptData(new Uint8Array(0), { recipients: [{ certificate: id.cert }], contentEncryption: 'aes-128-cbc' });
  decode(cbc, { der: true });
  assert.equal(decryptData(cbc, { keys: [{ key: id.key }] }).content.length, 0);
});

test('NOT_RECIPIENT when no RecipientInfo matches an offered certificate or key type', () => {
  const alice = pki.identity('rsa2048', 'alice-rsa');
  const bob = pki.identity('rsa2048', 'bob-rsa');
  const carol = pki.identity('p256', 'carol-ec');
  const der = encryptData(message, { recipients: [{ certificate: alice.cert }] });
  for (const keys of [[{ key: bob.key, certificate: bob.cert }], [{ key: carol.key }], []]) {
    assert.throws(() => decryptData(der, { keys }), (e) => isKakitomeError(e, 'NOT_RECIPIENT'));
  }
  // Wrong key without a certificate is a decryption failure (we cannot know it is not ours).
  assert.throws(() => decryptData(der, { keys: [{ key: bob.key }] }), (e) => isKakitomeError(e, 'DECRYPT_FAILED'));
});

test('recoverContentKey (streaming path) returns the key of the matched recipient', () => {
  const id = pki.identity('p384');
  const der = encryptData(message, { recipients: [{ certificate: pki.identity('rsa2048').cert }, { certificate: id.cert }], contentEncryption: 'aes-192-gcm' });
  const env = parseEnvelopeFromContentInfo(der);
  const cek = recoverContentKey(env, [{ key: id.key, certificate: id.cert }], 24);
  assert.equal(cek.length, 24);
  // A wrong key yields a random key of the right length, never an error.
  const other = pki.identity('p384', 'other-p384');
  const wrong = recoverContentKey(env, [{ key: other.key }], 24);
  assert.equal(wrong.length, 24);
  assert.notDeepEqual(wrong, cek);
});

test('encryption refuses what it must not send', () => {
  const id = pki.identity('rsa2048');
  const signer = pki.identity('ed25519');
  assert.throws(() => encryptData(message, { recipients: [{ certificate: id.cert }], contentEncryption: 'des-ede3-cbc' as ContentEncryptionName }), (e) => isKakitomeError(e, 'UNSUPPORTED_ALG'));
  assert.throws(() => encryptData(message, { recipients: [] }), (e) => isKakitomeError(e, 'INVALID_ARGUMENT'));
  assert.throws(() => encryptData(message, { recipients: [{ certificate: signer.cert }] }), (e) => isKakitomeError(e, 'KEY_INVALID'));
});

test('encryption refuses certificates not meant to receive keys (keyUsage, extKeyUsage)', () => {
  const caAsRecipient = pki.caCert; // keyUsage keyCertSign, cRLSign only
  assert.throws(() => encryptData(message, { recipients: [{ certificate: caAsRecipient }] }), (e) => isKakitomeError(e, 'CERT_USAGE') && /keyEncipherment/.test((e as Error).message));
  const ecSigningOnly = issueCertificate({ subject: { commonName: 'sign only' }, publicKey: pki.identity('p256').cert.publicKey, issuer: pki.caCert, signingKey: pki.caKey, keyUsage: ['digitalSignature'], extKeyUsage: [OID.emailProtection] });
  assert.throws(() => encryptData(message, { recipients: [{ certificate: ecSigningOnly }] }), (e) => isKakitomeError(e, 'CERT_USAGE') && /keyAgreement/.test((e as Error).message));
  const tlsOnly = issueCertificate({ subject: { commonName: 'tls' }, publicKey: pki.identity('rsa2048').cert.publicKey, issuer: pki.caCert, signingKey: pki.caKey, keyUsage: ['keyEncipherment'], extKeyUsage: ['1.3.6.1.5.5.7.3.1'] });
  assert.throws(() => encryptData(message, { recipients: [{ certificate: tlsOnly }] }), (e) => isKakitomeError(e, 'CERT_USAGE') && /e-mail protection/.test((e as Error).message));
  const unrestricted = issueCertificate({ subject: { commonName: 'no extensions' }, publicKey: pki.identity('rsa2048').cert.publicKey, issuer: pki.caCert, signingKey: pki.caKey });
  const id = pki.identity('rsa2048');
  const der = encryptData(message, { recipients: [{ certificate: unrestricted }] });
  assert.deepEqual(decryptData(der, { keys: [{ key: id.key, certificate: unrestricted }] }).content, message);
});
