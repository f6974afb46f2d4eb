/**
 * KEMRecipientInfo (RFC 9629) with ML-KEM (RFC 9936), carried in
 * OtherRecipientInfo ([4], oriType id-ori-kem):
 *
 *   KEMRecipientInfo ::= SEQUENCE { version CMSVersion (0), rid RecipientIdentifier,
 *     kem KEMAlgorithmIdentifier, kemct OCTET STRING, kdf KeyDerivationAlgorithmIdentifier,
 *     kekLength INTEGER (1..65535), ukm [0] EXPLICIT UserKeyingMaterial OPTIONAL,
 *     wrap KeyEncryptionAlgorithmIdentifier, encryptedKey EncryptedKey }
 *
 * KEK = KDF(ss, kekLength, DER(CMSORIforKEMOtherInfo { wrap, kekLength, ukm })) (RFC 9629 5).
 * RFC 9936 2.1: HKDF-SHA256 with an empty salt; aes128-wrap for ML-KEM-512 and
 * aes256-wrap for ML-KEM-768/1024. We send exactly that.
 */
import { decapsulate, encapsulate, type KeyObject } from 'node:crypto';
import { Tag, type Tlv, readOctetString, readOid, readSmallInt } from '../../asn1/ber.ts';
import { sequence, integer, octetString, explicit, implicit, oid as encodeOid } from '../../asn1/der.ts';
import { OID } from '../../asn1/oids.ts';
import { KakitomeError, malformed } from '../../errors.ts';
import { encodeAlgorithmIdentifier, hasNoParameters, parseAlgorithmIdentifier, type AlgorithmIdentifier } from '../algorithm-identifier.ts';
import { encodeIdentifier, identifierFor, parseIdentifier, type CmsIdentifier } from '../identifier.ts';
import { deriveHkdf } from '../algorithms/kdf.ts';
import { encodeKeyWrapAlgorithm, keyWrapByOid, parseKeyWrapAlgorithm, unwrapKey, wrapKey } from '../algorithms/key-wrap.ts';
import type { KeyAttempt, KeyManagement, RecipientOptions } from './recipient-options.ts';

export interface KemRecipient {
  kind: 'kemri';
  index: number;
  rid: CmsIdentifier;
  kem: AlgorithmIdentifier;
  kemct: Uint8Array;
  kdf: AlgorithmIdentifier;
  kekLength: number;
  ukm: Uint8Array | undefined;
  wrap: AlgorithmIdentifier;
  encryptedKey: Uint8Array;
}

interface MlKem {
  oid: string;
  keyType: 'ml-kem-512' | 'ml-kem-768' | 'ml-kem-1024';
  ciphertextLength: number;
  wrapOid: string;
}

// FIPS 203 table 3 ciphertext sizes; RFC 9936 2.1 wrap choices.
const ML_KEMS: readonly MlKem[] = [
  { oid: OID.mlKem512, keyType: 'ml-kem-512', ciphertextLength: 768, wrapOid: OID.aes128_wrap },
  { oid: OID.mlKem768, keyType: 'ml-kem-768', ciphertextLength: 1088, wrapOid: OID.aes256_wrap },
  { oid: OID.mlKem1024, keyType: 'ml-kem-1024', ciphertextLength: 1568, wrapOid: OID.aes256_wrap },
];

const HKDF_BY_OID: Record<string, 'sha256' | 'sha384' | 'sha512'> = {
  [OID.hkdfWithSha256]: 'sha256',
  [OID.hkdfWithSha384]: 'sha384',
  [OID.hkdfWithSha512]: 'sha512',
};

/** CMSORIforKEMOtherInfo ::= SEQUENCE { wrap, kekLength INTEGER, ukm [0] EXPLICIT OCTET STRING OPTIONAL } */
export function encodeKemOtherInfo(wrapAlgorithm: Uint8Array, kekLength: number, ukm?: Uint8Array): Buffer {
  return ukm ? sequence(wrapAlgorithm, integer(kekLength), explicit(0, octetString(ukm))) : sequence(wrapAlgorithm, integer(kekLength));
}

/** Builds the OtherRecipientInfo ([4] IMPLICIT) holding a KEMRecipientInfo for an ML-KEM certificate. */
export function buildKemRecipientInfo(cek: Uint8Array, r: RecipientOptions): Buffer {
  const pub = r.certificate.publicKey;
  const kem = ML_KEMS.find((k) => k.keyType === pub.asymmetricKeyType);
  if (!kem) throw new KakitomeError('KEY_INVALID', `Certificate "${r.certificate.subjectText}" does not hold an ML-KEM key.`);
  const wrap = keyWrapByOid(kem.wrapOid)!;
  if (cek.length > wrap.kekLength) throw new KakitomeError('INVALID_ARGUMENT', `A ${cek.length}-byte content key cannot be protected by ${wrap.cipher}.`);
  const { sharedKey, ciphertext } = encapsulate(pub);
  const wrapAlg = encodeKeyWrapAlgorithm(wrap);
  const kek = deriveHkdf('sha256', sharedKey, encodeKemOtherInfo(wrapAlg, wrap.kekLength), wrap.kekLength);
  const ek = wrapKey(wrap, kek, cek);
  kek.fill(0);
  sharedKey.fill(0);
  const kind = r.identifier ?? 'issuerAndSerialNumber';
  const kemri = sequence(
    integer(0),
    encodeIdentifier(identifierFor(r.certificate, kind)),
    encodeAlgorithmIdentifier(kem.oid),
    octetString(ciphertext),
    encodeAlgorithmIdentifier(OID.hkdfWithSha256),
    integer(wrap.kekLength),
    wrapAlg,
    octetString(ek),
  );
  return implicit(4, true, encodeOid(OID.kemri), kemri);
}

/** Parses the contents of a [4] OtherRecipientInfo; undefined when its type is not id-ori-kem. */
export function parseKemRecipientInfo(t: Tlv, index: number): KemRecipient | undefined {
  const of = t.fields('OtherRecipientInfo');
  const oriType = readOid(of.expect(Tag.OID, 'oriType'), 'oriType');
  const value = of.next('oriValue');
  of.end();
  if (oriType !== OID.kemri) return undefined;
  if (value.tag !== Tag.SEQUENCE) malformed('KEMRecipientInfo is not a SEQUENCE');
  const f = value.fields('KEMRecipientInfo');
  const version = readSmallInt(f.expect(Tag.INTEGER, 'version'), 'version');
  if (version !== 0) malformed(`KEMRecipientInfo version ${version} (must be 0)`);
  const rid = parseIdentifier(f.next('rid'));
  const kem = parseAlgorithmIdentifier(f.expect(Tag.SEQUENCE, 'kem'), 'kem');
  const kemct = readOctetString(f.next('kemct'), 'kemct');
  const kdf = parseAlgorithmIdentifier(f.expect(Tag.SEQUENCE, 'kdf'), 'kdf');
  const kekLength = readSmallInt(f.expect(Tag.INTEGER, 'kekLength'), 'kekLength');
  if (kekLength < 1 || kekLength > 65535) malformed('kekLength out of range');
  const ukmT = f.optional(0xa0);
  let ukm: Uint8Array | undefined;
  if (ukmT) {
    const c = ukmT.children();
    if (c.length !== 1) malformed('ukm must hold one OCTET STRING');
    ukm = readOctetString(c[0]!, 'ukm');
  }
  const wrap = parseAlgorithmIdentifier(f.expect(Tag.SEQUENCE, 'wrap'), 'wrap');
  const encryptedKey = readOctetString(f.next('encryptedKey'), 'encryptedKey');
  f.end();
  return { kind: 'kemri', index, rid, kem, kemct, kdf, kekLength, ukm, wrap, encryptedKey };
}

/** The node:crypto key type that can open this recipient, if we support its KEM. */
export function kemKeyType(r: KemRecipient): MlKem['keyType'] | undefined {
  return ML_KEMS.find((k) => k.oid === r.kem.oid)?.keyType;
}

/** Validates the public parameters (KEM, KDF, kekLength, wrap) without touching the key. */
export function checkKemAlgorithm(r: KemRecipient): { kem: MlKem; hash: 'sha256' | 'sha384' | 'sha512'; wrap: ReturnType<typeof parseKeyWrapAlgorithm> } {
  const kem = ML_KEMS.find((k) => k.oid === r.kem.oid);
  if (!kem) throw new KakitomeError('UNSUPPORTED_ALG', `KEM algorithm ${r.kem.oid} is not supported (ML-KEM only).`);
  // RFC 9936 2.1 / draft-ietf-lamps-kyber-certificates: ML-KEM AlgorithmIdentifiers have absent parameters.
  if (r.kem.parameters !== undefined) malformed('ML-KEM AlgorithmIdentifier must not have parameters');
  const hash = HKDF_BY_OID[r.kdf.oid];
  if (!hash) throw new KakitomeError('UNSUPPORTED_ALG', `KEMRecipientInfo KDF ${r.kdf.oid} is not supported (HKDF only).`);
  if (!hasNoParameters(r.kdf)) malformed('HKDF AlgorithmIdentifier must not have parameters (RFC 8619)');
  const wrap = parseKeyWrapAlgorithm(r.wrap);
  // RFC 9936 2.2.1: L must be consistent with the key size of the key-encryption algorithm.
  if (r.kekLength !== wrap.kekLength) malformed(`kekLength ${r.kekLength} does not match ${wrap.cipher}`);
  return { kem, hash, wrap };
}

/**
 * Opens a KEMRecipientInfo with an ML-KEM private key. ML-KEM decapsulation has
 * implicit rejection built in (FIPS 203 6.3): a wrong ciphertext gives a
 * pseudo-random secret and the key-wrap check fails, so `cek` is undefined.
 */
export function decryptKemKey(r: KemRecipient, key: KeyObject): KeyAttempt {
  const { kem, hash, wrap } = checkKemAlgorithm(r);
  const keyManagement: KeyManagement = kem.keyType;
  const warnings = r.encryptedKey.length - 8 > wrap.kekLength ? [`key wrap ${wrap.cipher} is weaker than the ${(r.encryptedKey.length - 8) * 8}-bit content key`] : [];
  if (key.asymmetricKeyType !== kem.keyType || r.kemct.length !== kem.ciphertextLength) return { cek: undefined, keyManagement, warnings, implicitRejection: false };
  let ss: Buffer;
  try {
    ss = decapsulate(key, r.kemct);
  } catch {
    return { cek: undefined, keyManagement, warnings, implicitRejection: false };
  }
  const kek = deriveHkdf(hash, ss, encodeKemOtherInfo(r.wrap.der, r.kekLength, r.ukm), r.kekLength);
  const cek = unwrapKey(wrap, kek, r.encryptedKey);
  kek.fill(0);
  ss.fill(0);
  return { cek, keyManagement, warnings, implicitRejection: false };
}
