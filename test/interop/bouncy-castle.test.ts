/**
 * Kakitome <-> Bouncy Castle 1.72 (test/peers/BcPeer.java), both directions, every
 * algorithm BC supports in CMS: the widest peer here (Ed25519/Ed448, RSASSA-PSS,
 * OAEP, ECDH with every KDF hash, AES-GCM and ChaCha20-Poly1305 AuthEnvelopedData).
 * Not supported by this peer (recorded in docs/interop.md, not asserted): X25519/X448
 * key agreement; ChaCha20-Poly1305 output (1.72 writes it into EnvelopedData, which
 * Kakitome refuses: asserted below because that refusal is Kakitome's behaviour).
 *
 * Speed: every BC job of the file runs in one JVM, started once in before(); the
 * tests then check each job's outcome and do the Kakitome half in-process.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { TestPki, type Identity } from '../helpers/pki.ts';
import { Workdir } from '../peers/run-peer.ts';
import { BcBatch, type BcCipher, type BcOutcome, type BcRecipientMode, type BcSignatureAlgorithm } from '../peers/bouncy-castle.ts';
import {
  interopContent, standardIdentities, kakitomeSign, kakitomeEncrypt, assertKakitomeVerifies, assertKakitomeRejectsTampered, assertKakitomeDecrypts, tamperInside,
  type KCipher, type KHash, type KRecipient,
} from '../peers/kakitome-side.ts';
import { verifySignedData } from '../../src/cms/signed-data/verify.ts';
import { decryptData } from '../../src/cms/enveloped-data/decrypt.ts';
import { isKakitomeError } from '../../src/errors.ts';
import { compressData, decompressData } from '../../src/cms/compressed-data.ts';
import { OID } from '../../src/asn1/oids.ts';
import { verifyMessage } from '../../src/smime/verify-message.ts';
import { viewVerdict } from '../../src/smime/verdict-view.ts';
import { renderVerdict } from '../../src/cli/render-verdict.ts';

const { content: CONTENT, tampered: TAMPERED } = interopContent('Bouncy Castle');
const NEEDLE = Buffer.from('Bouncy Castle.');

const BIG = Buffer.from('A line of a large message, CRLF-terminated, to force chunking.\r\n'.repeat(4800));

type IdName = 'rsa' | 'rsaB' | 'p256' | 'p384' | 'p521' | 'ed25519' | 'ed448';
let pki: TestPki;
let w: Workdir;
let ids: Record<IdName, Identity>;

interface SignCase { name: string; id: IdName; hash?: KHash; pss?: boolean; bc: BcSignatureAlgorithm | undefined }
const SIGN_CASES: SignCase[] = [
  { name: 'RSA PKCS#1 v1.5 SHA-256', id: 'rsa', hash: 'sha256', bc: 'SHA256withRSA' },
  { name: 'RSA PKCS#1 v1.5 SHA-384', id: 'rsa', hash: 'sha384', bc: 'SHA384withRSA' },
  { name: 'RSA PKCS#1 v1.5 SHA-512', id: 'rsaB', hash: 'sha512', bc: 'SHA512withRSA' },
  { name: 'RSASSA-PSS SHA-256', id: 'rsa', hash: 'sha256', pss: true, bc: 'SHA256withRSAandMGF1' },
  { name: 'RSASSA-PSS SHA-384', id: 'rsaB', hash: 'sha384', pss: true, bc: 'SHA384withRSAandMGF1' },
  { name: 'RSASSA-PSS SHA-512', id: 'rsaB', hash: 'sha512', pss: true, bc: 'SHA512withRSAandMGF1' },
  { name: 'ECDSA P-256 SHA-256', id: 'p256', hash: 'sha256', bc: 'SHA256withECDSA' },
  { name: 'ECDSA P-384 SHA-384', id: 'p384', hash: 'sha384', bc: 'SHA384withECDSA' },
  { name: 'ECDSA P-521 SHA-512', id: 'p521', hash: 'sha512', bc: 'SHA512withECDSA' },
  { name: 'Ed25519', id: 'ed25519', bc: 'Ed25519' },
  { name: 'Ed448', id: 'ed448', bc: 'Ed448' },
];

interface SendCase { name: string; recipients: Array<KRecipient & { idName: IdName }>; cipher: KCipher }
const SEND_CASES: SendCase[] = [
  { name: 'RSA PKCS#1 v1.5, AES-128-CBC', recipients: [{ idName: 'rsa', rsaPadding: 'pkcs1' }], cipher: 'aes-128-cbc' } as SendCase,
  { name: 'RSA PKCS#1 v1.5, AES-192-CBC', recipients: [{ idName: 'rsa', rsaPadding: 'pkcs1' }], cipher: 'aes-192-cbc' } as SendCase,
  { name: 'RSAES-OAEP SHA-256, AES-256-CBC', recipients: [{ idName: 'rsaB', rsaPadding: 'oaep' }], cipher: 'aes-256-cbc' } as SendCase,
  { name: 'RSAES-OAEP SHA-256, AES-128-GCM', recipients: [{ idName: 'rsa', rsaPadding: 'oaep' }], cipher: 'aes-128-gcm' } as SendCase,
  { name: 'ECDH P-256 KDF SHA-256, AES-256-GCM', recipients: [{ idName: 'p256', kdfHash: 'sha256' }], cipher: 'aes-256-gcm' } as SendCase,
  { name: 'ECDH P-384 KDF SHA-384, AES-256-GCM', recipients: [{ idName: 'p384', kdfHash: 'sha384' }], cipher: 'aes-256-gcm' } as SendCase,
  { name: 'ECDH P-521 KDF SHA-512, AES-128-CBC', recipients: [{ idName: 'p521', kdfHash: 'sha512' }], cipher: 'aes-128-cbc' } as SendCase,
  { name: 'ECDH P-521 KDF SHA-256, AES-256-CBC', recipients: [{ idName: 'p521', kdfHash: 'sha256' }], cipher: 'aes-256-cbc' } as SendCase,
  { name: 'RSA PKCS#1 v1.5, AES-192-GCM', recipients: [{ idName: 'rsa' }], cipher: 'aes-192-gcm' } as SendCase,
  { name: 'RSA PKCS#1 v1.5, ChaCha20-Poly1305', recipients: [{ idName: 'rsa' }], cipher: 'chacha20-poly1305' } as SendCase,
  { name: 'ECDH P-256, ChaCha20-Poly1305', recipients: [{ idName: 'p256' }], cipher: 'chacha20-poly1305' } as SendCase,
  {
    name: 'five recipients (RSA v1.5, OAEP, P-256, P-384, P-521), AES-256-GCM',
    recipients: [{ idName: 'rsa' }, { idName: 'rsaB', rsaPadding: 'oaep' }, { idName: 'p256' }, { idName: 'p384' }, { idName: 'p521' }],
    cipher: 'aes-256-gcm',
  } as SendCase,
];

interface ReceiveCase { name: string; recipients: Array<{ idName: IdName; mode: BcRecipientMode }>; cipher: BcCipher; expect: string; authenticated: boolean }
const RECEIVE_CASES: ReceiveCase[] = [
  { name: 'RSA PKCS#1 v1.5, AES-128-CBC', recipients: [{ idName: 'rsa', mode: 'rsa15' }], cipher: 'aes128-cbc', expect: 'aes-128-cbc', authenticated: false },
  { name: 'RSA PKCS#1 v1.5, AES-192-CBC', recipients: [{ idName: 'rsa', mode: 'rsa15' }], cipher: 'aes192-cbc', expect: 'aes-192-cbc', authenticated: false },
  { name: 'RSAES-OAEP SHA-1, AES-256-CBC', recipients: [{ idName: 'rsa', mode: 'oaep-sha1' }], cipher: 'aes256-cbc', expect: 'aes-256-cbc', authenticated: false },
  { name: 'RSAES-OAEP SHA-256, AES-128-GCM', recipients: [{ idName: 'rsaB', mode: 'oaep-sha256' }], cipher: 'aes128-gcm', expect: 'aes-128-gcm', authenticated: true },
  { name: 'RSA PKCS#1 v1.5, AES-192-GCM', recipients: [{ idName: 'rsa', mode: 'rsa15' }], cipher: 'aes192-gcm', expect: 'aes-192-gcm', authenticated: true },
  { name: 'ECDH P-256 KDF SHA-1, AES-128-CBC', recipients: [{ idName: 'p256', mode: 'ecdh-sha1' }], cipher: 'aes128-cbc', expect: 'aes-128-cbc', authenticated: false },
  { name: 'ECDH P-256 KDF SHA-256, AES-256-GCM', recipients: [{ idName: 'p256', mode: 'ecdh-sha256' }], cipher: 'aes256-gcm', expect: 'aes-256-gcm', authenticated: true },
  { name: 'ECDH P-384 KDF SHA-384, AES-256-GCM', recipients: [{ idName: 'p384', mode: 'ecdh-sha384' }], cipher: 'aes256-gcm', expect: 'aes-256-gcm', authenticated: true },
  { name: 'ECDH P-384 KDF SHA-256, AES-192-CBC', recipients: [{ idName: 'p384', mode: 'ecdh-sha256' }], cipher: 'aes192-cbc', expect: 'aes-192-cbc', authenticated: false },
  { name: 'ECDH P-521 KDF SHA-512, AES-256-CBC', recipients: [{ idName: 'p521', mode: 'ecdh-sha512' }], cipher: 'aes256-cbc', expect: 'aes-256-cbc', authenticated: false },
  { name: 'ECDH P-521 KDF SHA-256, AES-128-GCM', recipients: [{ idName: 'p521', mode: 'ecdh-sha256' }], cipher: 'aes128-gcm', expect: 'aes-128-gcm', authenticated: true },
  {
    name: 'five recipients (RSA v1.5, OAEP, P-256, P-384, P-521), AES-128-GCM',
    recipients: [
      { idName: 'rsa', mode: 'rsa15' }, { idName: 'rsaB', mode: 'oaep-sha256' },
      { idName: 'p256', mode: 'ecdh-sha256' }, { idName: 'p384', mode: 'ecdh-sha384' }, { idName: 'p521', mode: 'ecdh-sha512' },
    ],
    cipher: 'aes128-gcm', expect: 'aes-128-gcm', authenticated: true,
  },
];

/** Outcomes of the BC jobs, by test key; filled by the single JVM run in before(). */
const out = new Map<string, Promise<BcOutcome>>();
/** Kakitome's outputs, kept for the Kakitome-side assertions. */
const kakitomeDer = new Map<string, Buffer>();

function must(key: string): Promise<BcOutcome> {
  const p = out.get(key);
  assert.ok(p, `no BC job ${key}`);
  return p;
}

before(async () => {
  pki = new TestPki();
  w = new Workdir('bc');
  ids = {
    ...standardIdentities(pki),
    ed25519: pki.identity('ed25519'),
    ed448: pki.identity('ed448'),
  };
  const bc = new BcBatch(w);
  for (const c of SIGN_CASES) {
    for (const detached of [true, false]) {
      const key = `${c.name} ${detached}`;
      const k = await kakitomeSign(CONTENT, [{ id: ids[c.id], ...(c.hash ? { hash: c.hash } : {}), rsaPadding: c.pss ? 'pss' : 'pkcs1' }], detached);
      kakitomeDer.set(key, k);
      out.set(`k2bc ${key}`, bc.verify(k, { caPath: pki.caPath, ...(detached ? { detachedContent: CONTENT } : {}) }));
      out.set(`k2bc-tampered ${key}`, detached
        ? bc.verify(k, { caPath: pki.caPath, detachedContent: TAMPERED })
        : bc.verify(tamperInside(k, NEEDLE), { caPath: pki.caPath }));
      out.set(`bc2k ${key}`, bc.sign(CONTENT, [{ id: ids[c.id], alg: c.bc! }], { detached }));
    }
  }
  for (const detached of [true, false]) {
    const k = await kakitomeSign(CONTENT, [{ id: ids.rsa }, { id: ids.p256 }, { id: ids.ed25519 }, { id: ids.rsaB, rsaPadding: 'pss' }], detached);
    out.set(`k2bc multi ${detached}`, bc.verify(k, { caPath: pki.caPath, ...(detached ? { detachedContent: CONTENT } : {}) }));
    out.set(`bc2k multi ${detached}`, bc.sign(CONTENT, [
      { id: ids.rsaB, alg: 'SHA384withRSAandMGF1' }, { id: ids.p384, alg: 'SHA384withECDSA' }, { id: ids.ed448, alg: 'Ed448' },
    ], { detached }));
  }
  for (const c of SEND_CASES) {
    const k = await kakitomeEncrypt(CONTENT, c.recipients.map((r) => ({ ...r, id: ids[r.idName] })), c.cipher);
    kakitomeDer.set(`send ${c.name}`, k);
    c.recipients.forEach((r, i) => out.set(`k2bc ${c.name} ${i}`, bc.decrypt(k, ids[r.idName])));
    if (c.cipher.endsWith('gcm') || c.cipher.startsWith('chacha')) {
      const bad = Buffer.from(k);
      bad[bad.length - 1]! ^= 0x01; // DER AuthEnvelopedData ends with the MAC (RFC 5083 2.1)
      out.set(`k2bc-tampered ${c.name}`, bc.decrypt(bad, ids[c.recipients[0]!.idName]));
    }
  }
  for (const id of [ids.rsa, ids.p256]) {
    const sig = await kakitomeSign(CONTENT, [{ id, identifier: 'subjectKeyIdentifier' }], true);
    out.set(`k2bc ski-sign ${id.kind}`, bc.verify(sig, { caPath: pki.caPath, detachedContent: CONTENT }));
    const env = await kakitomeEncrypt(CONTENT, [{ id, identifier: 'subjectKeyIdentifier' }], 'aes-128-gcm');
    out.set(`k2bc ski-env ${id.kind}`, bc.decrypt(env, id));
  }
  const big = BIG;
  out.set('bc2k big-sign', bc.sign(big, [{ id: ids.ed25519, alg: 'Ed25519' }], { detached: false }));
  out.set('bc2k big-env', bc.encrypt(big, [{ id: ids.p256, mode: 'ecdh-sha256' }], 'aes256-cbc'));
  out.set('bc2k big-auth', bc.encrypt(big, [{ id: ids.rsa, mode: 'oaep-sha256' }], 'aes256-gcm'));
  out.set('k2bc big-sign', bc.verify(await kakitomeSign(big, [{ id: ids.p384, hash: 'sha384' }], false), { caPath: pki.caPath }));
  out.set('k2bc big-env', bc.decrypt(await kakitomeEncrypt(big, [{ id: ids.p521 }], 'chacha20-poly1305'), ids.p521));
  out.set('bc2k chacha', bc.encrypt(CONTENT, [{ id: ids.rsa, mode: 'rsa15' }], 'chacha20-poly1305'));
  for (const detached of [true, false]) {
    out.set(`bc2k countersigned ${detached}`, bc.countersign(await kakitomeSign(CONTENT, [{ id: ids.rsa }], detached), ids.p256, 'SHA256withECDSA'));
  }
  out.set('bc2k compressed', bc.compress(CONTENT));
  out.set('bc2k compressed big', bc.compress(BIG));
  out.set('k2bc compressed', bc.uncompress(compressData(CONTENT)));
  out.set('k2bc compressed big', bc.uncompress(compressData(BIG)));
  for (const c of RECEIVE_CASES) {
    out.set(`bc2k ${c.name}`, bc.encrypt(CONTENT, c.recipients.map((r) => ({ id: ids[r.idName], mode: r.mode })), c.cipher));
  }
  await bc.run();
});

after(() => {
  w?.cleanup();
  pki?.cleanup();
});

for (const c of SIGN_CASES) {
  for (const detached of [true, false]) {
    const key = `${c.name} ${detached}`;
    const mode = detached ? 'detached' : 'encapsulated';

    test(`sign ${c.name} ${mode}: Kakitome -> BC verifies; tampered fails`, async () => {
      const good = await must(`k2bc ${key}`);
      assert.ok(good.ok, good.info);
      assert.match(good.info, /^1 /);
      if (!detached) assert.deepEqual(good.output, CONTENT);
      const bad = await must(`k2bc-tampered ${key}`);
      assert.ok(!bad.ok, `tampered accepted: ${bad.info}`);
    });

    test(`sign ${c.name} ${mode}: BC -> Kakitome verifies (BER); tampered fails`, async () => {
      const signed = await must(`bc2k ${key}`);
      assert.ok(signed.ok, signed.info);
      assert.equal(signed.output[1], 0x80, 'BC stream generator writes indefinite-length BER');
      await assertKakitomeVerifies(signed.output, { content: CONTENT, detached, signers: 1, label: `BC ${c.name}` });
      if (detached) {
        await assertKakitomeRejectsTampered(signed.output, TAMPERED, `BC ${c.name}`);
      } else {
        const r = verifySignedData(tamperInside(signed.output, NEEDLE), {});
        assert.equal(r.status, 'invalid');
        assert.equal(r.signers[0]?.code, 'DIGEST_MISMATCH');
      }
    });
  }
}

test('sign with four signers (RSA, P-256, Ed25519, RSA-PSS): Kakitome -> BC verifies all', async () => {
  for (const detached of [true, false]) {
    const r = await must(`k2bc multi ${detached}`);
    assert.ok(r.ok, r.info);
    assert.match(r.info, /^4 /);
  }
});

test('sign with three signers (RSA-PSS SHA-384, P-384, Ed448): BC -> Kakitome verifies all', async () => {
  for (const detached of [true, false]) {
    const r = await must(`bc2k multi ${detached}`);
    assert.ok(r.ok, r.info);
    await assertKakitomeVerifies(r.output, { content: CONTENT, detached, signers: 3, label: 'BC three signers' });
  }
});

for (const c of SEND_CASES) {
  test(`encrypt ${c.name}: Kakitome -> BC decrypts${c.cipher.endsWith('cbc') ? '' : '; tampered MAC fails'}`, async () => {
    for (let i = 0; i < c.recipients.length; i++) {
      const r = await must(`k2bc ${c.name} ${i}`);
      assert.ok(r.ok, `recipient ${i}: ${r.info}`);
      assert.deepEqual(r.output, CONTENT);
    }
    if (!c.cipher.endsWith('cbc')) {
      const bad = await must(`k2bc-tampered ${c.name}`);
      assert.ok(!bad.ok, `tampered accepted: ${bad.info}`);
    }
  });
}

for (const c of RECEIVE_CASES) {
  test(`encrypt ${c.name}: BC -> Kakitome decrypts`, async () => {
    const r = await must(`bc2k ${c.name}`);
    assert.ok(r.ok, r.info);
    if (!c.authenticated) assert.equal(r.output[1], 0x80, 'BC stream generator writes indefinite-length BER');
    for (const rc of c.recipients) {
      await assertKakitomeDecrypts(r.output, ids[rc.idName], {
        content: CONTENT, label: `BC ${c.name}, ${rc.idName}`, contentEncryption: c.expect, authenticated: c.authenticated,
      });
    }
  });
}

test('ChaCha20-Poly1305 from BC: BC 1.72 puts it in EnvelopedData, which Kakitome refuses as MALFORMED', async () => {
  // BC 1.72's JceCMSContentEncryptorBuilder gives no AEAD encryptor for id-alg-AEADChaCha20Poly1305,
  // so the only way it writes that cipher is inside EnvelopedData with the tag appended to the
  // ciphertext. RFC 8103 section 2 puts the AEAD cipher in AuthEnvelopedData (RFC 5083), which
  // authenticates the attributes too: Kakitome does not guess, it refuses.
  const r = await must('bc2k chacha');
  assert.ok(r.ok, r.info);
  assert.deepEqual(r.output.subarray(4, 13), Buffer.from('2a864886f70d010703', 'hex'), 'BC wrote id-envelopedData');
  assert.throws(
    () => decryptData(r.output, { keys: [{ key: ids.rsa.key, certificate: ids.rsa.cert }] }),
    (e: unknown) => isKakitomeError(e, 'MALFORMED'),
  );
});

test('subjectKeyIdentifier as SignerIdentifier and RecipientIdentifier (RSA, P-256): Kakitome -> BC', async () => {
  for (const kind of ['rsa2048', 'p256']) {
    const v = await must(`k2bc ski-sign ${kind}`);
    assert.ok(v.ok, v.info);
    const d = await must(`k2bc ski-env ${kind}`);
    assert.ok(d.ok, d.info);
    assert.deepEqual(d.output, CONTENT);
  }
});

test('large content (300 KiB, chunked BER): both directions', async () => {
  const sig = await must('bc2k big-sign');
  assert.ok(sig.ok, sig.info);
  await assertKakitomeVerifies(sig.output, { content: BIG, detached: false, signers: 1, label: 'BC large' });
  for (const [key, alg] of [['bc2k big-env', 'aes-256-cbc'], ['bc2k big-auth', 'aes-256-gcm']] as const) {
    const env = await must(key);
    assert.ok(env.ok, env.info);
    await assertKakitomeDecrypts(env.output, key.endsWith('env') ? ids.p256 : ids.rsa, { content: BIG, label: `BC large ${alg}`, contentEncryption: alg });
  }
  const v = await must('k2bc big-sign');
  assert.ok(v.ok, v.info);
  assert.deepEqual(v.output, BIG);
  const d = await must('k2bc big-env');
  assert.ok(d.ok, d.info);
  assert.deepEqual(d.output, BIG);
});

// No other peer here does CompressedData: OpenSSL 3.0.19 (Debian, no zlib) fails with
// "unsupported compression algorithm"; NSS cmsutil and gpgsm have no option for it.
test('CompressedData (RFC 3274, zlib; 3 KiB and 300 KiB): BC -> Kakitome (streamed BER) and Kakitome -> BC', async () => {
  for (const [suffix, content] of [['', CONTENT], [' big', BIG]] as const) {
    const c = await must(`bc2k compressed${suffix}`);
    assert.ok(c.ok, c.info);
    assert.equal(c.output[1], 0x80, 'BC stream generator writes indefinite-length BER');
    const d = decompressData(c.output);
    assert.equal(d.contentType, OID.data);
    assert.deepEqual(d.content, content);
    const u = await must(`k2bc compressed${suffix}`);
    assert.ok(u.ok, u.info);
    assert.equal(u.info, OID.zlibCompress);
    assert.deepEqual(u.output, content);
  }
});

// The countersignature is verified over our signature value and reported (docs/interop.md q19); trust is the S/MIME layer's (test/security/25).
test('a countersignature (RFC 5652 11.4) added by BC to our signature, detached and encapsulated: the signer still verifies; tampered content fails; the countersignature is reported valid', async () => {
  for (const detached of [true, false]) {
    const c = await must(`bc2k countersigned ${detached}`);
    assert.ok(c.ok, c.info);
    assert.ok(c.output.includes(Buffer.from('06092a864886f70d010906', 'hex')), 'the countersignature attribute (1.2.840.113549.1.9.6) is there');
    await assertKakitomeVerifies(c.output, { content: CONTENT, detached, signers: 1, label: `countersigned ${detached}` });
    if (detached) await assertKakitomeRejectsTampered(c.output, TAMPERED, 'countersigned');
    const r = verifySignedData(c.output, detached ? { detachedContent: CONTENT } : {});
    const cs = r.signers[0]!.countersignatures;
    assert.equal(cs?.length, 1, 'one countersignature reported');
    assert.equal(cs[0]!.status, 'valid', cs[0]!.message);
    assert.equal(cs[0]!.certificate?.serialHex, ids.p256.cert.serialHex, 'the countersigner certificate was found among the message\'s');
    assert.equal(cs[0]!.signatureAlgorithm, 'ecdsa-with-sha256');
    assert.match(cs[0]!.message, /for path validation to decide/);
  }
});

test('a tampered countersignature is reported invalid (BAD_SIG) while the countersigned signer stays valid, in the CMS result and the verify --json view', async () => {
  const c = await must('bc2k countersigned false');
  const good = verifySignedData(c.output).signers[0]!.countersignatures![0]!;
  const bad = Buffer.from(c.output);
  const at = bad.indexOf(Buffer.from(good.signatureValue));
  assert.ok(at > 0 && bad.indexOf(Buffer.from(good.signatureValue), at + 1) < 0, 'the countersignature value occurs once');
  bad[at + good.signatureValue.length - 1]! ^= 0x01;
  const r = verifySignedData(bad);
  assert.equal(r.status, 'valid', r.message);
  assert.equal(r.signers[0]!.status, 'valid', r.signers[0]!.message);
  assert.equal(r.signers[0]!.countersignatures![0]!.status, 'invalid');
  assert.equal(r.signers[0]!.countersignatures![0]!.code, 'BAD_SIG');

  // Through the S/MIME reader: the outer status and code are what they are without the countersignature.
  const wrap = (der: Uint8Array): Buffer => Buffer.from(`From: ${ids.rsa.email}\r\nMIME-Version: 1.0\r\nContent-Type: application/pkcs7-mime; smime-type=signed-data; name=smime.p7m\r\nContent-Transfer-Encoding: base64\r\n\r\n${Buffer.from(der).toString('base64').replace(/.{76}/g, '$&\r\n')}\r\n`);
  const plain = viewVerdict(await verifyMessage(wrap(kakitomeDer.get('RSA PKCS#1 v1.5 SHA-256 false')!)));
  assert.equal(plain.signers.length, 1);
  assert.ok(!('countersignatures' in plain.signers[0]!), 'no countersignature field on a message without one');
  for (const [der, status, code] of [[c.output, 'valid', undefined], [bad, 'invalid', 'BAD_SIG']] as const) {
    const v = viewVerdict(await verifyMessage(wrap(der)));
    assert.equal(v.status, plain.status, v.summary);
    assert.equal(v.code, plain.code);
    assert.equal(v.signers[0]!.status, plain.signers[0]!.status);
    const x = v.signers[0]!.countersignatures;
    assert.equal(x?.length, 1);
    assert.equal(x[0]!.status, status, x[0]!.message);
    assert.equal(x[0]!.code, code);
    assert.equal(x[0]!.subject, ids.p256.cert.subjectText);
    assert.equal(x[0]!.trust.status, 'not-checked');
    assert.match(renderVerdict(v, false), /countersignature 1: .*\n {4}signature: (valid|invalid \(BAD_SIG\))/);
  }
});
