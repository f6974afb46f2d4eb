/**
 * Signature algorithms in CMS SignerInfo (RFC 5652 5.3 signatureAlgorithm):
 * RSA PKCS#1 v1.5 (RFC 8017, RFC 5754 3.2), RSASSA-PSS (RFC 4055, RFC 4056),
 * ECDSA (RFC 5753 / RFC 5758), Ed25519/Ed448 pure mode (RFC 8419) and ML-DSA pure
 * mode (RFC 9882). The primitives are node:crypto's; this file chooses the
 * identifiers on output and, on input, checks that identifier, digestAlgorithm and
 * key type agree before any signature is verified.
 *
 * Output choice for RSA PKCS#1 v1.5: `rsaEncryption` with NULL parameters, as OpenSSL
 * writes it. RFC 8551 allows both forms; OpenSSL, NSS, gpgsm and Bouncy Castle all
 * read rsaEncryption, and older clients (Outlook) have read it for twenty years.
 */
import { sign as cryptoSign, verify as cryptoVerify, constants, type KeyObject } from 'node:crypto';
import { Tag, readSmallInt, type Tlv } from '../../asn1/ber.ts';
import { OID } from '../../asn1/oids.ts';
import { sequence, oid, explicit, integer, NULL } from '../../asn1/der.ts';
import { KakitomeError } from '../../errors.ts';
import { hasNoParameters, parseAlgorithmIdentifier, type AlgorithmIdentifier } from '../algorithm-identifier.ts';
import { encodeDigestAlgorithm, parseDigestAlgorithm, digestAlgorithm, type DigestAlgorithm, type DigestName } from './digest.ts';

export type HashChoice = 'sha256' | 'sha384' | 'sha512';
export type RsaPadding = 'pkcs1' | 'pss';

/** How one key signs in CMS: identifiers plus a bound signing function. */
export interface SigningScheme {
  /** Readable name: 'rsassa-pkcs1-v1_5', 'rsassa-pss', 'ecdsa-with-sha256', 'ed25519', 'ml-dsa-65'... */
  name: string;
  /** The SignerInfo digestAlgorithm (also the digest of messageDigest). */
  digest: DigestName;
  /** DER DigestAlgorithmIdentifier. */
  digestAlgorithm: Buffer;
  /** DER SignatureAlgorithmIdentifier. */
  signatureAlgorithm: Buffer;
  /** Signs `data` (the DER signed attributes) and returns the signature value. */
  sign(data: Uint8Array): Buffer;
}

const ML_DSA_OIDS: Record<string, string> = { 'ml-dsa-44': OID.mlDsa44, 'ml-dsa-65': OID.mlDsa65, 'ml-dsa-87': OID.mlDsa87 };
const ML_DSA_SIG_LENGTH: Record<string, number> = { 'ml-dsa-44': 2420, 'ml-dsa-65': 3309, 'ml-dsa-87': 4627 };
const ECDSA_OIDS: Record<string, string> = {
  sha1: OID.ecdsaWithSHA1,
  sha224: OID.ecdsaWithSHA224,
  sha256: OID.ecdsaWithSHA256,
  sha384: OID.ecdsaWithSHA384,
  sha512: OID.ecdsaWithSHA512,
};
const RSA_OIDS: Record<string, DigestName> = {
  [OID.md5WithRSAEncryption]: 'md5',
  [OID.sha1WithRSAEncryption]: 'sha1',
  [OID.sha224WithRSAEncryption]: 'sha224',
  [OID.sha256WithRSAEncryption]: 'sha256',
  [OID.sha384WithRSAEncryption]: 'sha384',
  [OID.sha512WithRSAEncryption]: 'sha512',
};
const ECDSA_BY_OID = new Map<string, DigestName>(Object.entries(ECDSA_OIDS).map(([h, o]) => [o, h as DigestName]));

/** The default hash for a key: matched to the curve for ECDSA (RFC 5753 7.1). */
function defaultHash(key: KeyObject): HashChoice {
  if (key.asymmetricKeyType === 'ec') {
    const c = key.asymmetricKeyDetails?.namedCurve;
    if (c === 'secp384r1') return 'sha384';
    if (c === 'secp521r1') return 'sha512';
  }
  return 'sha256';
}

/** RSASSA-PSS-params for `hash`: MGF1 with the same hash, salt = hash length, trailer default (RFC 4055 3.1). */
function encodePssParameters(hash: HashChoice): Buffer {
  const h = encodeDigestAlgorithm(hash);
  return sequence(explicit(0, h), explicit(1, sequence(oid(OID.mgf1), h)), explicit(2, integer(digestAlgorithm(hash).length)));
}

/**
 * Chooses identifiers for signing with `key`. `hash` applies to RSA and ECDSA only:
 * Ed25519 uses SHA-512 (RFC 8419 3.1), Ed448 SHAKE256/512 (RFC 8419 3.1), ML-DSA
 * SHA-512 (RFC 9882 3.3). Throws KEY_INVALID for keys that cannot sign in CMS.
 */
export function selectSigningScheme(key: KeyObject, hash?: HashChoice, rsaPadding: RsaPadding = 'pkcs1'): SigningScheme {
  if (key.type !== 'private') throw new KakitomeError('KEY_INVALID', 'A private key is needed to sign.');
  const t = key.asymmetricKeyType;
  switch (t) {
    case 'rsa':
    case 'rsa-pss': {
      const h = hash ?? 'sha256';
      if (rsaPadding === 'pss' || t === 'rsa-pss') {
        const opts = { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: digestAlgorithm(h).length };
        return {
          name: 'rsassa-pss',
          digest: h,
          digestAlgorithm: encodeDigestAlgorithm(h),
          signatureAlgorithm: sequence(oid(OID.rsassaPss), encodePssParameters(h)),
          sign: (data) => cryptoSign(h, data, opts),
        };
      }
      return {
        name: 'rsassa-pkcs1-v1_5',
        digest: h,
        digestAlgorithm: encodeDigestAlgorithm(h),
        signatureAlgorithm: sequence(oid(OID.rsaEncryption), NULL),
        sign: (data) => cryptoSign(h, data, key),
      };
    }
    case 'ec': {
      const h = hash ?? defaultHash(key);
      // DER (ECDSA-Sig-Value, RFC 5753 7.2) is node:crypto's default dsaEncoding; passing
      // the bare KeyObject avoids a per-call options object that costs ~40% of a P-256 sign.
      return {
        name: `ecdsa-with-${h}`,
        digest: h,
        digestAlgorithm: encodeDigestAlgorithm(h),
        // RFC 5758 3.2: parameters MUST be absent.
        signatureAlgorithm: sequence(oid(ECDSA_OIDS[h]!)),
        sign: (data) => cryptoSign(h, data, key),
      };
    }
    case 'ed25519':
    case 'ed448': {
      const d: DigestName = t === 'ed25519' ? 'sha512' : 'shake256';
      return {
        name: t,
        digest: d,
        digestAlgorithm: encodeDigestAlgorithm(d),
        // RFC 8419 3.1: parameters MUST be absent; PureEdDSA, no context.
        signatureAlgorithm: sequence(oid(t === 'ed25519' ? OID.Ed25519 : OID.Ed448)),
        sign: (data) => cryptoSign(null, data, key),
      };
    }
    case 'ml-dsa-44':
    case 'ml-dsa-65':
    case 'ml-dsa-87':
      return {
        name: t,
        digest: 'sha512',
        digestAlgorithm: encodeDigestAlgorithm('sha512'),
        // RFC 9882 3: pure mode, empty context, parameters absent.
        signatureAlgorithm: sequence(oid(ML_DSA_OIDS[t]!)),
        sign: (data) => cryptoSign(null, data, key),
      };
    default:
      throw new KakitomeError('KEY_INVALID', `A ${t ?? 'unknown'} key cannot sign CMS messages.`);
  }
}

/** What a verifier needs for one SignerInfo, after the consistency checks. */
export interface VerificationScheme {
  name: string;
  /** Signatures longer than this are rejected before node:crypto sees them. */
  maxSignatureLength: number;
  warnings: string[];
  /**
   * Notes on algorithm strength (a SHA-1 or SHA-224 digest, an RSA key under 2048
   * bits), kept apart from `warnings`: an algorithm policy (src/pki) decides on them.
   */
  weaknesses: string[];
  /** Raw primitive check; callers turn the result into a verdict. */
  check(data: Uint8Array, signature: Uint8Array): boolean;
}

function unsupported(msg: string): never {
  throw new KakitomeError('UNSUPPORTED_ALG', msg);
}

function weakDigestCheck(d: DigestAlgorithm, weaknesses: string[]): void {
  if (d.weakness === 'refused') throw new KakitomeError('WEAK_ALG', `The ${d.name} digest is refused: it is broken.`);
  if (d.weakness === 'legacy') weaknesses.push(`The ${d.name} digest is a legacy algorithm; the signature may be forgeable.`);
}

interface PssParameters {
  hash: DigestAlgorithm;
  saltLength: number;
  defaulted: boolean;
}

/** RSASSA-PSS-params (RFC 4055 3.1), EXPLICIT tags, each field DEFAULT-able (SHA-1 defaults). */
function parsePssParameters(a: AlgorithmIdentifier): PssParameters {
  const p = a.parameters;
  // RFC 4055 3.1: the parameters MUST be present in a signature's AlgorithmIdentifier.
  if (!p || p.tag !== Tag.SEQUENCE) unsupported('RSASSA-PSS without RSASSA-PSS-params.');
  const f = p.fields('RSASSA-PSS-params');
  let defaulted = false;
  let hash = digestAlgorithm('sha1');
  const h = f.optional(0xa0);
  if (h) hash = parseDigestAlgorithm(parseAlgorithmIdentifier(onlyChild(h), 'hashAlgorithm'));
  else defaulted = true;
  let mgfHash = digestAlgorithm('sha1');
  const m = f.optional(0xa1);
  if (m) {
    const mgf = parseAlgorithmIdentifier(onlyChild(m), 'maskGenAlgorithm');
    if (mgf.oid !== OID.mgf1 || !mgf.parameters) unsupported(`RSASSA-PSS mask generation ${mgf.oid} is not supported (only MGF1).`);
    mgfHash = parseDigestAlgorithm(parseAlgorithmIdentifier(mgf.parameters, 'MGF1 hash'));
  } else defaulted = true;
  let saltLength = 20;
  const s = f.optional(0xa2);
  if (s) saltLength = readSmallInt(onlyChild(s), 'saltLength');
  else defaulted = true;
  const tr = f.optional(0xa3);
  // trailerFieldBC (1) is the only trailer RFC 4055 defines.
  if (tr && readSmallInt(onlyChild(tr), 'trailerField') !== 1) unsupported('RSASSA-PSS trailerField other than 1.');
  f.end();
  // node:crypto uses one hash for both the message and MGF1; RFC 4055 3.1 recommends they match.
  if (mgfHash.name !== hash.name) unsupported(`RSASSA-PSS with MGF1-${mgfHash.name} and ${hash.name} hash is not supported.`);
  return { hash, saltLength, defaulted };
}

function onlyChild(t: Tlv): Tlv {
  const c = t.children();
  if (c.length !== 1) throw new KakitomeError('MALFORMED', 'Malformed input: EXPLICIT tag must hold exactly one value.');
  return c[0]!;
}

/**
 * Checks that `signatureAlgorithm`, the SignerInfo's `digest` and `publicKey` agree
 * and returns how to verify. Throws UNSUPPORTED_ALG for unknown or inconsistent
 * combinations (for example ecdsa-with-SHA256 beside a SHA-384 digestAlgorithm, or
 * an RSA identifier with an EC key) and WEAK_ALG for MD5.
 */
export function resolveVerificationScheme(sigAlg: AlgorithmIdentifier, digest: DigestAlgorithm, publicKey: KeyObject): VerificationScheme {
  const warnings: string[] = [];
  const weaknesses: string[] = [];
  weakDigestCheck(digest, weaknesses);
  const kt = publicKey.asymmetricKeyType;
  const o = sigAlg.oid;
  const keyMismatch = (): never => unsupported(`Signature algorithm ${o} does not match the signer's ${kt} key.`);

  if (o === OID.rsaEncryption || RSA_OIDS[o] !== undefined) {
    if (kt !== 'rsa') keyMismatch();
    if (!hasNoParameters(sigAlg)) unsupported('RSA PKCS#1 v1.5 signature algorithm with parameters.');
    const implied = RSA_OIDS[o];
    if (implied === 'md5') throw new KakitomeError('WEAK_ALG', 'md5WithRSAEncryption is refused: MD5 is broken.');
    // RFC 5754 3.2: the hash in the signature identifier is the SignerInfo's digest.
    if (implied !== undefined && implied !== digest.name) unsupported(`Signature algorithm uses ${implied} but digestAlgorithm is ${digest.name}.`);
    const k = rsaBytes(publicKey, weaknesses);
    const h = digest.name;
    if (h === 'shake256') unsupported('RSA PKCS#1 v1.5 with SHAKE256 is not defined.');
    return { name: 'rsassa-pkcs1-v1_5', maxSignatureLength: k, warnings, weaknesses, check: (data, sig) => cryptoVerify(h, data, publicKey, sig) };
  }
  if (o === OID.rsassaPss) {
    if (kt !== 'rsa' && kt !== 'rsa-pss') keyMismatch();
    const p = parsePssParameters(sigAlg);
    if (p.defaulted) warnings.push('RSASSA-PSS parameters rely on the SHA-1 defaults of RFC 4055 for some fields.');
    // RFC 4056 3: the PSS hash MUST be the SignerInfo's digestAlgorithm.
    if (p.hash.name !== digest.name) unsupported(`RSASSA-PSS hash ${p.hash.name} differs from digestAlgorithm ${digest.name}.`);
    weakDigestCheck(p.hash, []);
    const k = rsaBytes(publicKey, weaknesses);
    const opts = { key: publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: p.saltLength };
    const h = digest.name;
    return { name: 'rsassa-pss', maxSignatureLength: k, warnings, weaknesses, check: (data, sig) => cryptoVerify(h, data, opts, sig) };
  }
  const ecHash = ECDSA_BY_OID.get(o);
  if (ecHash !== undefined) {
    if (kt !== 'ec') keyMismatch();
    // RFC 5758 3.2: parameters MUST be absent. QUIRK: NULL accepted, as for other digests.
    if (!hasNoParameters(sigAlg)) unsupported('ECDSA signature algorithm with parameters.');
    if (ecHash !== digest.name) unsupported(`Signature algorithm uses ${ecHash} but digestAlgorithm is ${digest.name}.`);
    const n = ecOrderBytes(publicKey);
    // ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }: each at most n+1 octets, plus headers.
    return { name: `ecdsa-with-${ecHash}`, maxSignatureLength: 2 * (n + 3) + 4, warnings, weaknesses, check: (data, sig) => cryptoVerify(ecHash, data, publicKey, sig) };
  }
  if (o === OID.Ed25519 || o === OID.Ed448) {
    const want = o === OID.Ed25519 ? 'ed25519' : 'ed448';
    if (kt !== want) keyMismatch();
    if (sigAlg.parameters !== undefined) unsupported(`${want} signature algorithm with parameters (RFC 8419 3.1: absent).`);
    // RFC 8419 3.1: SHA-512 with Ed25519, SHAKE256/512 with Ed448.
    const need = want === 'ed25519' ? 'sha512' : 'shake256';
    if (digest.name !== need) unsupported(`${want} in CMS requires the ${need} digestAlgorithm, not ${digest.name} (RFC 8419).`);
    return { name: want, maxSignatureLength: want === 'ed25519' ? 64 : 114, warnings, weaknesses, check: (data, sig) => cryptoVerify(null, data, publicKey, sig) };
  }
  for (const [name, id] of Object.entries(ML_DSA_OIDS)) {
    if (o !== id) continue;
    if (kt !== name) keyMismatch();
    if (sigAlg.parameters !== undefined) unsupported(`${name} signature algorithm with parameters (RFC 9882: absent).`);
    if (digest.name === 'sha1' || digest.name === 'sha224') unsupported(`${name} with the ${digest.name} digest is not allowed (RFC 9882 3.3).`);
    return { name, maxSignatureLength: ML_DSA_SIG_LENGTH[name]!, warnings, weaknesses, check: (data, sig) => cryptoVerify(null, data, publicKey, sig) };
  }
  return unsupported(`Signature algorithm ${o} is not supported.`);
}

/**
 * A readable name for a signature algorithm identifier without looking at the key
 * (for reports when the signer's certificate is missing): the names
 * resolveVerificationScheme uses, or the dotted OID when unknown.
 */
export function signatureAlgorithmName(sigAlg: AlgorithmIdentifier): string {
  const o = sigAlg.oid;
  if (o === OID.rsaEncryption || RSA_OIDS[o] !== undefined) return 'rsassa-pkcs1-v1_5';
  if (o === OID.rsassaPss) return 'rsassa-pss';
  const ec = ECDSA_BY_OID.get(o);
  if (ec !== undefined) return `ecdsa-with-${ec}`;
  if (o === OID.Ed25519) return 'ed25519';
  if (o === OID.Ed448) return 'ed448';
  for (const [name, id] of Object.entries(ML_DSA_OIDS)) if (o === id) return name;
  return o;
}

function rsaBytes(key: KeyObject, weaknesses: string[]): number {
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  if (bits < 2048) weaknesses.push(`The RSA key has only ${bits} bits; 2048 is the minimum considered safe.`);
  return Math.ceil(bits / 8);
}

function ecOrderBytes(key: KeyObject): number {
  switch (key.asymmetricKeyDetails?.namedCurve) {
    case 'prime256v1':
      return 32;
    case 'secp384r1':
      return 48;
    case 'secp521r1':
      return 66;
    default:
      return unsupported(`ECDSA on curve ${key.asymmetricKeyDetails?.namedCurve ?? 'unknown'} is not supported.`);
  }
}

