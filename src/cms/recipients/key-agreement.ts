/**
 * KeyAgreeRecipientInfo (RFC 5652 6.2.2) for ephemeral-static ECDH:
 * - P-256/P-384/P-521 per RFC 5753 (X9.63 KDF over ECC-CMS-SharedInfo, 7.2);
 * - X25519/X448 per RFC 8418 (HKDF, or the X9.63 KDF, over the same SharedInfo).
 *
 *   KeyAgreeRecipientInfo ::= SEQUENCE { version CMSVersion (3),
 *     originator [0] EXPLICIT OriginatorIdentifierOrKey, ukm [1] EXPLICIT UserKeyingMaterial OPTIONAL,
 *     keyEncryptionAlgorithm KeyEncryptionAlgorithmIdentifier,
 *     recipientEncryptedKeys SEQUENCE OF RecipientEncryptedKey }
 *
 * The keyEncryptionAlgorithm is a key-agreement scheme (dhSinglePass-*) whose
 * parameters are the key-wrap AlgorithmIdentifier (RFC 5753 7.1.5). We write one
 * KARI per recipient, each with a fresh ephemeral key (as OpenSSL does).
 */
import { createPublicKey, diffieHellman, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { Tag, type Tlv, decode, readBitString, readOctetString, readOid, readSmallInt } from '../../asn1/ber.ts';
import { sequence, integer, octetString, explicit, implicit, bitString, oid as encodeOid } from '../../asn1/der.ts';
import { OID } from '../../asn1/oids.ts';
import { KakitomeError, malformed } from '../../errors.ts';
import { encodeAlgorithmIdentifier, parseAlgorithmIdentifier, hasNoParameters, type AlgorithmIdentifier } from '../algorithm-identifier.ts';
import { encodeIdentifier, identifierFor, parseIssuerAndSerial, type CmsIdentifier } from '../identifier.ts';
import { deriveHkdf, deriveX963, encodeEccCmsSharedInfo, type KdfHash } from '../algorithms/kdf.ts';
import { encodeKeyWrapAlgorithm, keyWrapForKeyLength, parseKeyWrapAlgorithm, unwrapKey, wrapKey } from '../algorithms/key-wrap.ts';
import type { KeyAttempt, RecipientOptions } from './recipient-options.ts';

export interface RecipientEncryptedKey {
  rid: CmsIdentifier;
  encryptedKey: Uint8Array;
}

export interface KeyAgreeRecipient {
  kind: 'kari';
  index: number;
  /** OriginatorPublicKey: algorithm and the raw public key (EC point or X25519/X448 u-coordinate). */
  originatorAlgorithm: AlgorithmIdentifier;
  originatorKey: Uint8Array;
  ukm: Uint8Array | undefined;
  keyEncryptionAlgorithm: AlgorithmIdentifier;
  recipientEncryptedKeys: RecipientEncryptedKey[];
}

interface Scheme {
  kdf: 'x963' | 'hkdf';
  hash: KdfHash;
  cofactor: boolean;
}

const SCHEMES: Record<string, Scheme> = {
  [OID.dhSinglePass_stdDH_sha1kdf]: { kdf: 'x963', hash: 'sha1', cofactor: false },
  [OID.dhSinglePass_stdDH_sha224kdf]: { kdf: 'x963', hash: 'sha224', cofactor: false },
  [OID.dhSinglePass_stdDH_sha256kdf]: { kdf: 'x963', hash: 'sha256', cofactor: false },
  [OID.dhSinglePass_stdDH_sha384kdf]: { kdf: 'x963', hash: 'sha384', cofactor: false },
  [OID.dhSinglePass_stdDH_sha512kdf]: { kdf: 'x963', hash: 'sha512', cofactor: false },
  [OID.dhSinglePass_cofactorDH_sha1kdf]: { kdf: 'x963', hash: 'sha1', cofactor: true },
  [OID.dhSinglePass_cofactorDH_sha224kdf]: { kdf: 'x963', hash: 'sha224', cofactor: true },
  [OID.dhSinglePass_cofactorDH_sha256kdf]: { kdf: 'x963', hash: 'sha256', cofactor: true },
  [OID.dhSinglePass_cofactorDH_sha384kdf]: { kdf: 'x963', hash: 'sha384', cofactor: true },
  [OID.dhSinglePass_cofactorDH_sha512kdf]: { kdf: 'x963', hash: 'sha512', cofactor: true },
  [OID.dhSinglePass_stdDH_hkdf_sha256]: { kdf: 'hkdf', hash: 'sha256', cofactor: false },
  [OID.dhSinglePass_stdDH_hkdf_sha384]: { kdf: 'hkdf', hash: 'sha384', cofactor: false },
  [OID.dhSinglePass_stdDH_hkdf_sha512]: { kdf: 'hkdf', hash: 'sha512', cofactor: false },
};

const X963_SCHEME_OID: Record<'sha256' | 'sha384' | 'sha512', string> = {
  sha256: OID.dhSinglePass_stdDH_sha256kdf,
  sha384: OID.dhSinglePass_stdDH_sha384kdf,
  sha512: OID.dhSinglePass_stdDH_sha512kdf,
};
const HKDF_SCHEME_OID: Record<'sha256' | 'sha384' | 'sha512', string> = {
  sha256: OID.dhSinglePass_stdDH_hkdf_sha256,
  sha384: OID.dhSinglePass_stdDH_hkdf_sha384,
  sha512: OID.dhSinglePass_stdDH_hkdf_sha512,
};

const CURVE_OIDS: Record<string, string> = { prime256v1: OID.prime256v1, secp384r1: OID.secp384r1, secp521r1: OID.secp521r1 };

/** The key-agreement family of a key: its curve OID for EC keys, or X25519/X448. */
function agreementFamily(key: KeyObject): { type: 'ec' | 'x25519' | 'x448'; curveOid?: string } | undefined {
  const t = key.asymmetricKeyType;
  if (t === 'x25519' || t === 'x448') return { type: t };
  if (t === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    const c = curve ? CURVE_OIDS[curve] : undefined;
    return c ? { type: 'ec', curveOid: c } : undefined;
  }
  return undefined;
}

/** The raw public key from a DER SubjectPublicKeyInfo. */
function rawPublicKey(spki: Uint8Array): Uint8Array {
  const parts = decode(spki).children();
  return readBitString(parts[1] ?? malformed('SubjectPublicKeyInfo'), 'subjectPublicKey').bytes;
}

function deriveKek(scheme: Scheme, z: Uint8Array, wrapAlgorithm: Buffer, kekLength: number, ukm: Uint8Array | undefined): Buffer {
  const info = encodeEccCmsSharedInfo(wrapAlgorithm, kekLength, ukm);
  if (scheme.kdf === 'x963') return deriveX963(scheme.hash, z, info, kekLength);
  // RFC 8418 2.2: HKDF with no salt, IKM = the shared secret, info = ECC-CMS-SharedInfo.
  return deriveHkdf(scheme.hash as 'sha256', z, info, kekLength);
}

/** Builds a KeyAgreeRecipientInfo for an EC, X25519 or X448 certificate, with a fresh ephemeral key. */
export function buildKeyAgreeRecipientInfo(cek: Uint8Array, r: RecipientOptions): Buffer {
  const pub = r.certificate.publicKey;
  const fam = agreementFamily(pub);
  if (!fam) throw new KakitomeError('KEY_INVALID', `Certificate "${r.certificate.subjectText}" holds a ${pub.asymmetricKeyType} key, not usable for key agreement.`);
  const eph = fam.type === 'ec' ? generateKeyPairSync('ec', { namedCurve: pub.asymmetricKeyDetails!.namedCurve! }) : generateKeyPairSync(fam.type as 'x25519');
  const z = diffieHellman({ privateKey: eph.privateKey, publicKey: pub });
  const hash = r.kdfHash ?? 'sha256';
  const schemeOid = fam.type === 'ec' ? X963_SCHEME_OID[hash] : HKDF_SCHEME_OID[hash];
  const scheme = SCHEMES[schemeOid]!;
  const wrap = keyWrapForKeyLength(cek.length);
  const wrapAlg = encodeKeyWrapAlgorithm(wrap);
  const kek = deriveKek(scheme, z, wrapAlg, wrap.kekLength, undefined);
  const ek = wrapKey(wrap, kek, cek);
  kek.fill(0);
  z.fill(0);
  // RFC 5753 7.1.2: originatorKey's id-ecPublicKey parameters SHOULD be absent (the curve
  // is the recipient's); RFC 8418 2.3: id-X25519/id-X448 with absent parameters.
  const origAlg = encodeAlgorithmIdentifier(fam.type === 'ec' ? OID.ecPublicKey : fam.type === 'x25519' ? OID.X25519 : OID.X448);
  const origKey = rawPublicKey(eph.publicKey.export({ format: 'der', type: 'spki' }));
  const originator = explicit(0, implicit(1, true, origAlg, bitString(origKey)));
  const kind = r.identifier ?? 'issuerAndSerialNumber';
  const id = identifierFor(r.certificate, kind);
  // KeyAgreeRecipientIdentifier: issuerAndSerialNumber, or rKeyId [0] IMPLICIT RecipientKeyIdentifier.
  const rid = id.kind === 'issuerAndSerialNumber' ? encodeIdentifier(id) : implicit(0, true, octetString(id.keyId));
  const rek = sequence(rid, octetString(ek));
  return implicit(1, true, integer(3), originator, encodeAlgorithmIdentifier(schemeOid, wrapAlg), sequence(rek));
}

/** Parses the contents of a [1] KeyAgreeRecipientInfo. */
export function parseKeyAgreeRecipientInfo(t: Tlv, index: number, maxRecipients: number): KeyAgreeRecipient {
  const f = t.fields('KeyAgreeRecipientInfo');
  const version = readSmallInt(f.expect(Tag.INTEGER, 'version'), 'version');
  if (version !== 3) malformed(`KeyAgreeRecipientInfo version ${version} (must be 3)`);
  const origWrap = f.expect(0xa0, 'originator').children();
  if (origWrap.length !== 1) malformed('originator must hold one value');
  const orig = origWrap[0]!;
  if (orig.tag !== 0xa1) {
    // Static-static originators (issuerAndSerialNumber / subjectKeyIdentifier) are not used in S/MIME.
    throw new KakitomeError('UNSUPPORTED_ALG', 'Key agreement with a static originator key is not supported (ephemeral-static only, RFC 5753 3.1).');
  }
  const of = orig.fields('OriginatorPublicKey');
  const originatorAlgorithm = parseAlgorithmIdentifier(of.expect(Tag.SEQUENCE, 'algorithm'), 'originatorKey.algorithm');
  const bits = readBitString(of.expect(Tag.BIT_STRING, 'publicKey'), 'originatorKey.publicKey');
  of.end();
  if (bits.unusedBits !== 0) malformed('originator public key has unused bits');
  const ukmT = f.optional(0xa1);
  let ukm: Uint8Array | undefined;
  if (ukmT) {
    const c = ukmT.children();
    if (c.length !== 1) malformed('ukm must hold one OCTET STRING');
    ukm = readOctetString(c[0]!, 'ukm');
  }
  const keyEncryptionAlgorithm = parseAlgorithmIdentifier(f.expect(Tag.SEQUENCE, 'keyEncryptionAlgorithm'), 'keyEncryptionAlgorithm');
  const reks = f.expect(Tag.SEQUENCE, 'recipientEncryptedKeys').children(maxRecipients + 1);
  f.end();
  if (reks.length === 0) malformed('KeyAgreeRecipientInfo has no recipientEncryptedKeys');
  if (reks.length > maxRecipients) throw new KakitomeError('LIMIT', `More than ${maxRecipients} recipient encrypted keys.`);
  const recipientEncryptedKeys = reks.map((rek) => {
    const rf = rek.fields('RecipientEncryptedKey');
    const ridT = rf.next('rid');
    let rid: CmsIdentifier;
    if (ridT.tag === Tag.SEQUENCE) rid = parseIssuerAndSerial(ridT);
    else if (ridT.tag === 0xa0) {
      const kf = ridT.fields('RecipientKeyIdentifier');
      const keyId = readOctetString(kf.expect(Tag.OCTET_STRING, 'subjectKeyIdentifier'), 'subjectKeyIdentifier');
      kf.optional(Tag.GENERALIZED_TIME);
      kf.optional(Tag.SEQUENCE);
      kf.end();
      if (keyId.length === 0) malformed('empty subjectKeyIdentifier');
      rid = { kind: 'subjectKeyIdentifier', keyId };
    } else malformed(`KeyAgreeRecipientIdentifier has tag 0x${ridT.tag.toString(16)}`);
    const encryptedKey = readOctetString(rf.next('encryptedKey'), 'encryptedKey');
    rf.end();
    return { rid, encryptedKey };
  });
  return { kind: 'kari', index, originatorAlgorithm, originatorKey: bits.bytes, ukm, keyEncryptionAlgorithm, recipientEncryptedKeys };
}

/** The private-key type (and curve) that can open this KARI. */
export function keyAgreeKeyType(r: KeyAgreeRecipient): 'ec' | 'x25519' | 'x448' | undefined {
  const o = r.originatorAlgorithm.oid;
  return o === OID.ecPublicKey ? 'ec' : o === OID.X25519 ? 'x25519' : o === OID.X448 ? 'x448' : undefined;
}

interface CheckedKari {
  scheme: Scheme;
  wrap: ReturnType<typeof parseKeyWrapAlgorithm>;
  wrapAlg: Buffer;
}

/** Validates the public parameters (scheme, wrap) without touching the key. */
export function checkKeyAgreeAlgorithm(r: KeyAgreeRecipient): CheckedKari {
  const scheme = SCHEMES[r.keyEncryptionAlgorithm.oid];
  if (!scheme) throw new KakitomeError('UNSUPPORTED_ALG', `Key agreement scheme ${r.keyEncryptionAlgorithm.oid} is not supported.`);
  const p = r.keyEncryptionAlgorithm.parameters;
  if (!p || p.tag !== Tag.SEQUENCE) malformed('key agreement scheme parameters (the key-wrap algorithm) are missing');
  const wrap = parseKeyWrapAlgorithm(parseAlgorithmIdentifier(p, 'KeyWrapAlgorithm'));
  const type = keyAgreeKeyType(r);
  if (!type) throw new KakitomeError('UNSUPPORTED_ALG', `Originator key algorithm ${r.originatorAlgorithm.oid} is not supported.`);
  // cofactorDH only makes sense on the P-curves, where the cofactor is 1 and it equals stdDH.
  if (scheme.cofactor && type !== 'ec') throw new KakitomeError('UNSUPPORTED_ALG', 'cofactorDH is not defined for X25519/X448.');
  if (scheme.kdf === 'hkdf' && type === 'ec') throw new KakitomeError('UNSUPPORTED_ALG', 'HKDF key agreement schemes are defined for X25519/X448 only (RFC 8418).');
  // ECC-CMS-SharedInfo.keyInfo is the wrap algorithm as we would encode it (absent parameters, RFC 3565).
  return { scheme, wrap, wrapAlg: encodeKeyWrapAlgorithm(wrap) };
}

/** Rebuilds the originator's public key on the recipient's curve; undefined if it is not a valid point. */
function originatorPublicKey(r: KeyAgreeRecipient, key: KeyObject): KeyObject | undefined {
  const fam = agreementFamily(key);
  if (!fam) return undefined;
  const type = keyAgreeKeyType(r);
  if (type !== fam.type) return undefined;
  let spki: Buffer;
  if (fam.type === 'ec') {
    // RFC 5753 7.1.2: parameters absent, NULL, or the named curve, which must be the recipient's.
    const p = r.originatorAlgorithm.parameters;
    if (!hasNoParameters(r.originatorAlgorithm)) {
      if (p!.tag !== Tag.OID || readOid(p!) !== fam.curveOid) return undefined;
    }
    // RFC 5480 2.2 / RFC 5753 7.1.2: an uncompressed (or compressed) ECPoint; the X9.62
    // hybrid form (06/07) MUST NOT be used, though OpenSSL would decode it (found by test/fuzz).
    const form = r.originatorKey[0];
    if (form !== 0x04 && form !== 0x02 && form !== 0x03) return undefined;
    spki = sequence(sequence(encodeOid(OID.ecPublicKey), encodeOid(fam.curveOid!)), bitString(r.originatorKey));
  } else {
    if (r.originatorAlgorithm.parameters !== undefined) return undefined; // RFC 8410 3: absent
    if (r.originatorKey.length !== (fam.type === 'x25519' ? 32 : 56)) return undefined;
    spki = sequence(sequence(encodeOid(fam.type === 'x25519' ? OID.X25519 : OID.X448)), bitString(r.originatorKey));
  }
  try {
    // OpenSSL decodes the point with EC_POINT_oct2point, which rejects points off the curve
    // (the invalid-curve attack); the point at infinity has no octet encoding here.
    return createPublicKey({ key: spki, format: 'der', type: 'spki' });
  } catch {
    return undefined;
  }
}

/**
 * Opens the RecipientEncryptedKey `rekIndex` of a KARI with `key`. Never throws
 * for cryptographic failures (bad originator point, zero shared secret, key-wrap
 * integrity): `cek` is then undefined.
 */
export function decryptKeyAgreeKey(r: KeyAgreeRecipient, rekIndex: number, key: KeyObject): KeyAttempt {
  const { scheme, wrap, wrapAlg } = checkKeyAgreeAlgorithm(r);
  const type = keyAgreeKeyType(r)!;
  const keyManagement = type === 'ec' ? 'ecdh' : type;
  const warnings = scheme.hash === 'sha1' ? ['ECDH with the SHA-1 KDF (the OpenSSL 3.0 default): ask the sender to use SHA-256'] : [];
  const rek = r.recipientEncryptedKeys[rekIndex];
  // RFC 5753 7.2 / RFC 8551 2.7: the KEK should be at least as strong as the content key
  // (the wrapped key's length, minus the 8-byte integrity block, is public).
  if (rek && rek.encryptedKey.length - 8 > wrap.kekLength) warnings.push(`key wrap ${wrap.cipher} is weaker than the ${(rek.encryptedKey.length - 8) * 8}-bit content key`);
  const pub = originatorPublicKey(r, key);
  if (!rek || !pub) return { cek: undefined, keyManagement, warnings, implicitRejection: false };
  let z: Buffer;
  try {
    z = diffieHellman({ privateKey: key, publicKey: pub });
  } catch {
    return { cek: undefined, keyManagement, warnings, implicitRejection: false };
  }
  // RFC 8418 2 / RFC 7748 6: an all-zero X25519/X448 output means a small-order point: abort.
  if (z.every((b) => b === 0)) return { cek: undefined, keyManagement, warnings, implicitRejection: false };
  const kek = deriveKek(scheme, z, wrapAlg, wrap.kekLength, r.ukm);
  const cek = unwrapKey(wrap, kek, rek.encryptedKey);
  kek.fill(0);
  z.fill(0);
  return { cek, keyManagement, warnings, implicitRejection: false };
}
