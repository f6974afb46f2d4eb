/**
 * Password-based encryption as PKCS#12 files use it:
 * - PBES2 (RFC 8018 6.2) with PBKDF2 (5.2) and AES-CBC or 3DES-CBC: the modern form
 *   OpenSSL 3 writes by default (PBKDF2-HMAC-SHA256, AES-256-CBC).
 * - pbeWithSHAAnd3-KeyTripleDES-CBC (RFC 7292 appendix C) with the PKCS#12 KDF:
 *   the legacy form Windows, iOS and gpgsm 2.2 import.
 * - pbeWithSHAAnd40BitRC2-CBC (the certificates of Windows and macOS exports and of
 *   `openssl pkcs12 -legacy`), 128-bit RC2 and 40/128-bit RC4 (RFC 7292 appendix C,
 *   NSS pk12util -C/-c): the key and IV are derived here, metered like the others,
 *   and the cipher runs in a child process with OpenSSL's legacy provider
 *   (pkcs12-legacy-cipher.ts), because node's default provider lacks RC2 and RC4.
 * PKCS#5 v1.5 PBES1 (pbeWithSHA1AndRC2-CBC, pbeWithMD5AndDES-CBC...) is refused.
 */
import { createCipheriv, createDecipheriv, pbkdf2Sync, randomBytes } from 'node:crypto';
import { Tag, readOid, readOctetString, readSmallInt, type Tlv } from '../asn1/ber.ts';
import { sequence, oid, octetString, integer, NULL } from '../asn1/der.ts';
import { OID } from '../asn1/oids.ts';
import { KakitomeError, malformed } from '../errors.ts';
import { derivePkcs12Key, pkcs12PasswordBytes, type Pkcs12KdfHash } from './pkcs12-kdf.ts';
import type { DerivationSpec, Pkcs12KeyDeriver } from './pkcs12-key-deriver.ts';
import type { LegacyCipher, LegacyDecipher, LegacyDecryption } from './pkcs12-legacy-cipher.ts';

export const PBE_OID = {
  pbes2: '1.2.840.113549.1.5.13',
  pbkdf2: '1.2.840.113549.1.5.12',
  hmacWithSHA1: '1.2.840.113549.2.7',
  hmacWithSHA224: '1.2.840.113549.2.8',
  hmacWithSHA256: '1.2.840.113549.2.9',
  hmacWithSHA384: '1.2.840.113549.2.10',
  hmacWithSHA512: '1.2.840.113549.2.11',
  pbeWithSHAAnd128BitRC4: '1.2.840.113549.1.12.1.1',
  pbeWithSHAAnd40BitRC4: '1.2.840.113549.1.12.1.2',
  pbeWithSHAAnd3KeyTripleDES: '1.2.840.113549.1.12.1.3',
  pbeWithSHAAnd2KeyTripleDES: '1.2.840.113549.1.12.1.4',
  pbeWithSHAAnd128BitRC2: '1.2.840.113549.1.12.1.5',
  pbeWithSHAAnd40BitRC2: '1.2.840.113549.1.12.1.6',
} as const;

const PRF: Record<string, Pkcs12KdfHash> = {
  [PBE_OID.hmacWithSHA1]: 'sha1',
  [PBE_OID.hmacWithSHA224]: 'sha224',
  [PBE_OID.hmacWithSHA256]: 'sha256',
  [PBE_OID.hmacWithSHA384]: 'sha384',
  [PBE_OID.hmacWithSHA512]: 'sha512',
};

const CBC: Record<string, { cipher: string; keyLength: number; ivLength: number }> = {
  [OID.aes128_CBC]: { cipher: 'aes-128-cbc', keyLength: 16, ivLength: 16 },
  [OID.aes192_CBC]: { cipher: 'aes-192-cbc', keyLength: 24, ivLength: 16 },
  [OID.aes256_CBC]: { cipher: 'aes-256-cbc', keyLength: 32, ivLength: 16 },
  [OID.des_ede3_cbc]: { cipher: 'des-ede3-cbc', keyLength: 24, ivLength: 8 },
};

/** RFC 7292 appendix C schemes whose cipher only OpenSSL's legacy provider has. */
const LEGACY: Record<string, { cipher: LegacyCipher; keyLength: number; ivLength: number }> = {
  [PBE_OID.pbeWithSHAAnd40BitRC2]: { cipher: 'rc2-40-cbc', keyLength: 5, ivLength: 8 },
  [PBE_OID.pbeWithSHAAnd128BitRC2]: { cipher: 'rc2-cbc', keyLength: 16, ivLength: 8 },
  [PBE_OID.pbeWithSHAAnd40BitRC4]: { cipher: 'rc4-40', keyLength: 5, ivLength: 0 },
  [PBE_OID.pbeWithSHAAnd128BitRC4]: { cipher: 'rc4', keyLength: 16, ivLength: 0 },
};

/** PKCS#5 v1.5 PBES1 (RFC 8018 6.1): PBKDF1, which PKCS#12 writers no longer use. */
const PBES1 = new Set(['1.2.840.113549.1.5.1', '1.2.840.113549.1.5.3', '1.2.840.113549.1.5.4', '1.2.840.113549.1.5.6', '1.2.840.113549.1.5.10', '1.2.840.113549.1.5.11']);

function runCipher(decrypt: boolean, cipher: string, key: Uint8Array, iv: Uint8Array, data: Uint8Array): Buffer {
  try {
    const c = decrypt ? createDecipheriv(cipher, key, iv) : createCipheriv(cipher, key, iv);
    return Buffer.concat([c.update(data), c.final()]);
  } catch (e) {
    // Padding failure: the MAC normally catches a wrong password first; files without a MAC end here.
    throw new KakitomeError('KEY_INVALID', 'The PKCS#12 content could not be decrypted: wrong password or damaged file.', { cause: e });
  }
}

/**
 * A parsed PBE AlgorithmIdentifier: the derivations it needs (known before any work
 * is done, so a file can be priced first) and how to decrypt with them: here
 * (AES, 3DES), or by preparing the block for the legacy-provider child (RC2, RC4).
 */
export type PbeScheme =
  | { derivations: DerivationSpec[]; decrypt(deriver: Pkcs12KeyDeriver, data: Uint8Array): Buffer }
  | { derivations: DerivationSpec[]; legacy(deriver: Pkcs12KeyDeriver, data: Uint8Array): LegacyDecryption };

/** An encrypted block of a PKCS#12 file and the scheme that protects it. */
export interface PbeBlock {
  scheme: PbeScheme;
  bytes: Uint8Array;
}

/**
 * Decrypts `blocks` in order. Those that need RC2/RC4 go to `legacy` in one batch
 * (one child process), and only if there are any.
 */
export function decryptPbeBlocks(blocks: readonly PbeBlock[], deriver: Pkcs12KeyDeriver, legacy: LegacyDecipher): Buffer[] {
  const out: Buffer[] = [];
  const batch: LegacyDecryption[] = [];
  const batched: number[] = [];
  try {
    for (const { scheme, bytes } of blocks) {
      if ('decrypt' in scheme) {
        out.push(scheme.decrypt(deriver, bytes));
      } else {
        batched.push(out.length);
        out.push(Buffer.alloc(0));
        batch.push(scheme.legacy(deriver, bytes));
      }
    }
    if (batch.length > 0) legacy(batch).forEach((plain, i) => (out[batched[i]!] = plain));
    return out;
  } catch (e) {
    // Key bags decrypted before a later one failed (a budget, a damaged block): wipe them.
    for (const plain of out) plain.fill(0);
    throw e;
  }
}

/**
 * pkcs-12PbeParams (RFC 7292 appendix C): salt and iterations for the SHA-1 PKCS#12
 * KDF; returns the derivation for a diversifier (B.3: 1 key, 2 IV) and a length.
 */
function readPkcs12PbeParams(params: Tlv): (purpose: 1 | 2, length: number) => DerivationSpec {
  const p = params.fields('pkcs-12PbeParams');
  const salt = readOctetString(p.expect(Tag.OCTET_STRING, 'salt'));
  const iterations = readSmallInt(p.expect(Tag.INTEGER, 'iterations'));
  p.end();
  return (purpose, length) => ({ kdf: 'pkcs12', hash: 'sha1', salt, iterations, password: 'bmp', purpose, length });
}

/** Reads the PBE AlgorithmIdentifier `alg` (PBES2/PBKDF2 or pbeWithSHAAnd3-KeyTripleDES-CBC). */
export function parsePbeAlgorithm(alg: Tlv): PbeScheme {
  const f = alg.fields('AlgorithmIdentifier');
  const id = readOid(f.expect(Tag.OID, 'algorithm'));
  const params = f.next('parameters');
  f.end();
  if (id === PBE_OID.pbes2) {
    const p = params.fields('PBES2-params');
    const kdf = p.expect(Tag.SEQUENCE, 'keyDerivationFunc').fields('keyDerivationFunc');
    if (readOid(kdf.expect(Tag.OID, 'algorithm')) !== PBE_OID.pbkdf2) throw new KakitomeError('UNSUPPORTED_ALG', 'PBES2 with a key derivation function other than PBKDF2.');
    const kp = kdf.expect(Tag.SEQUENCE, 'PBKDF2-params').fields('PBKDF2-params');
    kdf.end();
    const salt = readOctetString(kp.expect(Tag.OCTET_STRING, 'salt'));
    const iterations = readSmallInt(kp.expect(Tag.INTEGER, 'iterationCount'));
    const keyLengthT = kp.optional(Tag.INTEGER);
    const prfT = kp.optional(Tag.SEQUENCE);
    kp.end();
    let prf: Pkcs12KdfHash = 'sha1'; // RFC 8018 A.2: DEFAULT algid-hmacWithSHA1
    if (prfT) {
      const name = PRF[readOid(prfT.children()[0] ?? malformed('empty prf'))];
      if (!name) throw new KakitomeError('UNSUPPORTED_ALG', 'PBKDF2 with an unknown pseudo-random function.');
      prf = name;
    }
    const enc = p.expect(Tag.SEQUENCE, 'encryptionScheme').fields('encryptionScheme');
    p.end();
    const scheme = CBC[readOid(enc.expect(Tag.OID, 'algorithm'))];
    if (!scheme) throw new KakitomeError('UNSUPPORTED_ALG', 'PBES2 with an encryption scheme other than AES-CBC or 3DES-CBC.');
    const iv = readOctetString(enc.expect(Tag.OCTET_STRING, 'iv'));
    enc.end();
    if (iv.length !== scheme.ivLength) malformed('PBES2 IV length');
    if (keyLengthT && readSmallInt(keyLengthT) !== scheme.keyLength) malformed('PBKDF2 keyLength does not match the cipher');
    const key: DerivationSpec = { kdf: 'pbkdf2', hash: prf, salt, iterations, length: scheme.keyLength };
    return { derivations: [key], decrypt: (deriver, data) => runCipher(true, scheme.cipher, deriver.derive(key), iv, data) };
  }
  if (id === PBE_OID.pbeWithSHAAnd3KeyTripleDES || id === PBE_OID.pbeWithSHAAnd2KeyTripleDES) {
    const twoKey = id === PBE_OID.pbeWithSHAAnd2KeyTripleDES;
    // Two-key 3DES derives 16 octets and repeats K1 as K3 (RFC 7292 C).
    const spec = readPkcs12PbeParams(params);
    const keySpec = spec(1, twoKey ? 16 : 24);
    const ivSpec = spec(2, 8);
    return {
      derivations: [keySpec, ivSpec],
      decrypt: (deriver, data) => {
        const k = deriver.derive(keySpec);
        const key = twoKey ? Buffer.concat([k, k.subarray(0, 8)]) : k;
        try {
          return runCipher(true, 'des-ede3-cbc', key, deriver.derive(ivSpec), data);
        } finally {
          if (twoKey) key.fill(0);
        }
      },
    };
  }
  const legacy = LEGACY[id];
  if (legacy) {
    const spec = readPkcs12PbeParams(params);
    const key = spec(1, legacy.keyLength);
    // RC4 takes no IV, so none is derived (as OpenSSL does).
    const iv = legacy.ivLength === 0 ? undefined : spec(2, legacy.ivLength);
    return {
      derivations: iv ? [key, iv] : [key],
      legacy: (deriver, data) => ({ cipher: legacy.cipher, key: deriver.derive(key), iv: iv ? deriver.derive(iv) : new Uint8Array(0), data }),
    };
  }
  if (PBES1.has(id)) {
    throw new KakitomeError('UNSUPPORTED_ALG', `This PKCS#12 file uses PKCS#5 v1.5 encryption (${id}, e.g. openssl -certpbe PBE-SHA1-RC2-64), which PKCS#12 writers no longer use. Re-export it with AES (openssl pkcs12 -export without -legacy) or with -certpbe PBE-SHA1-3DES.`);
  }
  throw new KakitomeError('UNSUPPORTED_ALG', `Unknown PKCS#12 encryption algorithm ${id}.`);
}

export interface PbeResult {
  /** The AlgorithmIdentifier, DER. */
  algorithm: Buffer;
  ciphertext: Buffer;
}

/** PBES2 with PBKDF2-HMAC-SHA256 and AES-256-CBC (RFC 8018 6.2, A.2, B.2.5). */
export function encryptPbes2(password: string, plain: Uint8Array, iterations: number): PbeResult {
  const salt = randomBytes(16);
  const iv = randomBytes(16);
  const key = pbkdf2Sync(Buffer.from(password, 'utf8'), salt, iterations, 32, 'sha256');
  const algorithm = sequence(
    oid(PBE_OID.pbes2),
    sequence(
      sequence(oid(PBE_OID.pbkdf2), sequence(octetString(salt), integer(iterations), sequence(oid(PBE_OID.hmacWithSHA256), NULL))),
      sequence(oid(OID.aes256_CBC), octetString(iv)),
    ),
  );
  return { algorithm, ciphertext: runCipher(false, 'aes-256-cbc', key, iv, plain) };
}

/** pbeWithSHAAnd3-KeyTripleDES-CBC (RFC 7292 C) for the legacy profile. */
export function encryptPbeSha1TripleDes(password: string, plain: Uint8Array, iterations: number): PbeResult {
  const salt = randomBytes(8);
  const pw = pkcs12PasswordBytes(password);
  const key = derivePkcs12Key('sha1', pw, salt, 1, iterations, 24);
  const iv = derivePkcs12Key('sha1', pw, salt, 2, iterations, 8);
  const algorithm = sequence(oid(PBE_OID.pbeWithSHAAnd3KeyTripleDES), sequence(octetString(salt), integer(iterations)));
  return { algorithm, ciphertext: runCipher(false, 'des-ede3-cbc', key, iv, plain) };
}

