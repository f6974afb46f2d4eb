/**
 * KeyTransRecipientInfo (RFC 5652 6.2.1) with RSA:
 *   KeyTransRecipientInfo ::= SEQUENCE { version CMSVersion (0 | 2), rid RecipientIdentifier,
 *     keyEncryptionAlgorithm KeyEncryptionAlgorithmIdentifier, encryptedKey OCTET STRING }
 * - RSAES-PKCS1-v1_5 (RFC 8017 7.2, rsaEncryption with NULL parameters, RFC 3370 4.2.1).
 * - RSAES-OAEP (RFC 8017 7.1, parameters per RFC 4055 4 / RFC 3560), with the label
 *   the sender chose, if any (pSourceFunc id-pSpecified).
 *
 * PKCS#1 v1.5 decryption relies on OpenSSL 3.5's implicit rejection (Node 24): a bad
 * padding yields a pseudo-random message instead of an error. The caller replaces a
 * result of the wrong length with a random key (RFC 3218 2.3.2) so every failure
 * surfaces at the content layer as the same DecryptionError.
 */
import { constants, privateDecrypt, publicEncrypt, type KeyObject } from 'node:crypto';
import { Tag, type Tlv, readOctetString, readSmallInt } from '../../asn1/ber.ts';
import { sequence, integer, octetString, explicit, NULL } from '../../asn1/der.ts';
import { OID } from '../../asn1/oids.ts';
import { KakitomeError, malformed } from '../../errors.ts';
import { encodeAlgorithmIdentifier, hasNoParameters, parseAlgorithmIdentifier, type AlgorithmIdentifier } from '../algorithm-identifier.ts';
import { encodeIdentifier, identifierFor, parseIdentifier, type CmsIdentifier } from '../identifier.ts';
import type { KeyAttempt, RecipientOptions } from './recipient-options.ts';

export interface KeyTransRecipient {
  kind: 'ktri';
  index: number;
  rid: CmsIdentifier;
  keyEncryptionAlgorithm: AlgorithmIdentifier;
  encryptedKey: Uint8Array;
}

type OaepHash = 'sha1' | 'sha224' | 'sha256' | 'sha384' | 'sha512';

const HASH_BY_OID: Record<string, OaepHash> = {
  [OID.sha1]: 'sha1',
  [OID.sha224]: 'sha224',
  [OID.sha256]: 'sha256',
  [OID.sha384]: 'sha384',
  [OID.sha512]: 'sha512',
};
const OID_BY_HASH: Record<'sha256' | 'sha384' | 'sha512', string> = { sha256: OID.sha256, sha384: OID.sha384, sha512: OID.sha512 };

/**
 * RSAES-OAEP-params with hash and MGF1 hash equal and the default (empty) label.
 * RFC 4055 2.1: SHA-2 AlgorithmIdentifiers are written with absent parameters.
 */
export function encodeOaepAlgorithm(hash: 'sha256' | 'sha384' | 'sha512'): Buffer {
  const h = encodeAlgorithmIdentifier(OID_BY_HASH[hash]);
  return encodeAlgorithmIdentifier(OID.rsaesOaep, sequence(explicit(0, h), explicit(1, encodeAlgorithmIdentifier(OID.mgf1, h))));
}

const PKCS1_ALGORITHM = encodeAlgorithmIdentifier(OID.rsaEncryption, NULL);

/**
 * `rsa` (a privateDecrypt or publicEncrypt given an options object, the only way to
 * choose the padding) with stack traces off while it runs. Node 24's
 * prepareAsymmetricKey first asks whether the options object is a KeyObject, then a
 * CryptoKey, each by catching a TypeError, and V8 captures a stack for both:
 * measured (a 2048-bit publicEncrypt 30 frames deep, 20,000 calls) 42-54 µs a call
 * against 30-38 µs without the captures; in the gateway's crypto worker (perf,
 * inbound) the two errors were 3% of its samples. Synchronous, so nothing else runs
 * while the limit is 0; an error of the operation itself keeps its message and code,
 * without a stack (decryption's are caught below; encryption of a content key does
 * not fail once the certificate's key is RSA).
 */
function withoutStackTraces<T>(rsa: () => T): T {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return rsa();
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/** Builds one KeyTransRecipientInfo for an RSA certificate. */
export function buildKeyTransRecipientInfo(cek: Uint8Array, r: RecipientOptions): Buffer {
  const kind = r.identifier ?? 'issuerAndSerialNumber';
  const rid = encodeIdentifier(identifierFor(r.certificate, kind));
  const key = r.certificate.publicKey;
  if (key.asymmetricKeyType !== 'rsa') throw new KakitomeError('KEY_INVALID', `Certificate "${r.certificate.subjectText}" does not hold an RSA key usable for key transport.`);
  let alg: Buffer;
  let ek: Buffer;
  if ((r.rsaPadding ?? 'pkcs1') === 'oaep') {
    const hash = r.oaepHash ?? 'sha256';
    alg = encodeOaepAlgorithm(hash);
    ek = withoutStackTraces(() => publicEncrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash }, cek));
  } else {
    alg = PKCS1_ALGORITHM;
    ek = withoutStackTraces(() => publicEncrypt({ key, padding: constants.RSA_PKCS1_PADDING }, cek));
  }
  // RFC 5652 6.2.1: version 0 with issuerAndSerialNumber, 2 with subjectKeyIdentifier.
  return sequence(integer(kind === 'issuerAndSerialNumber' ? 0 : 2), rid, alg, octetString(ek));
}

export function parseKeyTransRecipientInfo(t: Tlv, index: number): KeyTransRecipient {
  const f = t.fields('KeyTransRecipientInfo');
  const version = readSmallInt(f.expect(Tag.INTEGER, 'version'), 'version');
  const rid = parseIdentifier(f.next('rid'));
  const expected = rid.kind === 'issuerAndSerialNumber' ? 0 : 2;
  if (version !== expected) malformed(`KeyTransRecipientInfo version ${version} does not match its rid (expected ${expected})`);
  const keyEncryptionAlgorithm = parseAlgorithmIdentifier(f.expect(Tag.SEQUENCE, 'keyEncryptionAlgorithm'), 'keyEncryptionAlgorithm');
  const encryptedKey = readOctetString(f.next('encryptedKey'), 'encryptedKey');
  f.end();
  return { kind: 'ktri', index, rid, keyEncryptionAlgorithm, encryptedKey };
}

interface OaepParameters {
  hash: OaepHash;
  /** The encoding parameters P (RFC 8017 A.2.1 id-pSpecified); empty by default. */
  label: Uint8Array;
}

const NO_LABEL = new Uint8Array(0);

/** RFC 8017 A.2.1 / RFC 4055 4.1. Absent parameters or an empty SEQUENCE mean the SHA-1 defaults. */
function parseOaepParameters(alg: AlgorithmIdentifier): OaepParameters {
  const p = alg.parameters;
  if (!p) return { hash: 'sha1', label: NO_LABEL };
  if (p.tag !== Tag.SEQUENCE) malformed('RSAES-OAEP-params is not a SEQUENCE');
  const f = p.fields('RSAES-OAEP-params');
  let hash: OaepHash = 'sha1';
  let mgfHash: OaepHash = 'sha1';
  const h = f.optional(0xa0);
  if (h) hash = hashFrom(onlyChild(h, 'hashAlgorithm'), 'OAEP hashAlgorithm');
  const m = f.optional(0xa1);
  if (m) {
    const mgf = parseAlgorithmIdentifier(onlyChild(m, 'maskGenAlgorithm'), 'maskGenAlgorithm');
    if (mgf.oid !== OID.mgf1) throw new KakitomeError('UNSUPPORTED_ALG', `OAEP mask generation function ${mgf.oid} is not supported (MGF1 only).`);
    if (!mgf.parameters || mgf.parameters.tag !== Tag.SEQUENCE) malformed('MGF1 parameters are missing');
    mgfHash = hashFrom(mgf.parameters, 'MGF1 hash');
  }
  let label: Uint8Array = NO_LABEL;
  const ps = f.optional(0xa2);
  if (ps) {
    // RFC 4055 4.1 says pSourceFunc "SHOULD be omitted", but a sender may set a label
    // (`openssl cms -encrypt -keyopt rsa_oaep_label:HEX` does, and OpenSSL decrypts it):
    // it is public, bound into the padding, and checked by the decryption itself.
    const src = parseAlgorithmIdentifier(onlyChild(ps, 'pSourceAlgorithm'), 'pSourceAlgorithm');
    if (src.oid !== OID.pSpecified) throw new KakitomeError('UNSUPPORTED_ALG', `OAEP pSourceAlgorithm ${src.oid} is not supported (id-pSpecified only).`);
    if (!src.parameters) malformed('id-pSpecified without its OCTET STRING');
    label = readOctetString(src.parameters, 'pSpecified');
  }
  f.end();
  // RFC 8017 B.2.1 recommends MGF1 with the OAEP hash, RFC 4055 4 profiles them equal, and
  // every peer sends them equal. node:crypto also ties MGF1 to oaepHash, so a mismatch cannot
  // be decrypted here: refuse it clearly rather than fail as a decryption error.
  if (mgfHash !== hash) throw new KakitomeError('UNSUPPORTED_ALG', `RSAES-OAEP with hash ${hash} but MGF1-${mgfHash} is not supported.`);
  return { hash, label };
}

function onlyChild(t: Tlv, field: string): Tlv {
  const c = t.children();
  if (c.length !== 1) malformed(`${field} must hold exactly one value`);
  return c[0]!;
}

function hashFrom(t: Tlv, field: string): OaepHash {
  const a = parseAlgorithmIdentifier(t, field);
  const h = HASH_BY_OID[a.oid];
  if (!h) throw new KakitomeError('UNSUPPORTED_ALG', `${field} ${a.oid} is not supported.`);
  // QUIRK: RFC 4055 2.1 wants absent parameters for SHA-2 but NULL is common (and is SHA-1's form).
  if (!hasNoParameters(a)) malformed(`${field} has parameters`);
  return h;
}

/** Checks the algorithm without using the key: parameter errors are public, not decryption failures. */
export function checkKeyTransAlgorithm(r: KeyTransRecipient): void {
  const a = r.keyEncryptionAlgorithm;
  if (a.oid === OID.rsaEncryption) {
    // QUIRK: RFC 3370 4.2.1 says NULL; a few writers omit it. Either is unambiguous.
    if (!hasNoParameters(a)) malformed('rsaEncryption key transport must have NULL parameters');
    return;
  }
  if (a.oid === OID.rsaesOaep) {
    parseOaepParameters(a);
    return;
  }
  throw new KakitomeError('UNSUPPORTED_ALG', `Key transport algorithm ${a.oid} is not supported (RSA only).`);
}

/**
 * Opens a KeyTransRecipientInfo with an RSA private key. Never throws for a
 * cryptographic failure: OAEP decoding errors give `cek: undefined`; PKCS#1 v1.5
 * gives whatever implicit rejection produced.
 */
export function decryptKeyTransKey(r: KeyTransRecipient, key: KeyObject): KeyAttempt {
  checkKeyTransAlgorithm(r);
  const a = r.keyEncryptionAlgorithm;
  if (a.oid === OID.rsaEncryption) {
    let cek: Buffer | undefined;
    try {
      cek = withoutStackTraces(() => privateDecrypt({ key, padding: constants.RSA_PKCS1_PADDING }, r.encryptedKey));
    } catch {
      cek = undefined; // e.g. wrong ciphertext length; still indistinguishable to the caller
    }
    return { cek, keyManagement: 'rsa-pkcs1', warnings: [], implicitRejection: true };
  }
  const { hash, label } = parseOaepParameters(a);
  const warnings = hash === 'sha1' ? ['OAEP with SHA-1 (the OpenSSL 3.0 default): ask the sender to use SHA-256'] : [];
  let cek: Buffer | undefined;
  try {
    cek = withoutStackTraces(() => privateDecrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash, ...(label.length ? { oaepLabel: label } : {}) }, r.encryptedKey));
  } catch {
    cek = undefined; // a wrong label fails here like any other padding error
  }
  return { cek, keyManagement: 'rsa-oaep', warnings, implicitRejection: false };
}
