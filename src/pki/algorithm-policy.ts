/**
 * The algorithm policy: one plain, JSON-serialisable object an administrator can
 * read (`kakitome policy show` prints DEFAULT_POLICY), copy and change. Brief,
 * "Safe verification": weak algorithms are refused or flagged by a policy the
 * administrator can see.
 *
 * Two situations are told apart (issue 4): creating a new signature (our own
 * signing: always the strict rules, not configurable downwards) and judging an
 * existing one received in mail. On receive, SHA-1 anywhere in a signature or its
 * certification path and RSA keys under 2048 bits are refused by default (issue 9
 * item 5: SHA-1 chosen-prefix collisions are practical since 2020, Thunderbird
 * refuses SHA-1 signatures since 115, the CA/B Forum S/MIME requirements forbid
 * both); 'warn' (allowLegacyAlgorithms, `--allow-legacy`) accepts them for
 * archives, and the verdict then says its trust rests on them. MD5 and RSA keys
 * under 1024 bits are always refused (RFC 6151).
 */
import type { Certificate } from '../x509/certificate.ts';
import { OID, oidName } from '../asn1/oids.ts';
import type { KeyObject } from 'node:crypto';
import { decode, readOid, Tag } from '../asn1/ber.ts';
import { malformed } from '../errors.ts';

export type LegacyAction = 'reject' | 'warn';

export interface AlgorithmPolicy {
  /** Bumped when the meaning of a field changes. */
  version: 1;
  /** Hashes refused everywhere (signatures, certificates, CRLs, OCSP). */
  refusedHashes: string[];
  /** SHA-1 in signatures and certificates received (RFC 8551 2.1: SHA-1 MUST NOT be used for new signatures). Default 'reject'. */
  sha1OnReceive: LegacyAction;
  /** RSA keys shorter than minRsaBits (and at least 1024 bits) in certificates received. Default 'reject'. */
  shortRsaOnReceive: LegacyAction;
  minRsaBits: number;
  /** Smallest EC curve accepted (bits of the group order); smaller curves are refused. */
  minEcBits: number;
  /** Named EC curves accepted; anything else is refused (explicit parameters included). */
  allowedCurves: string[];
}

export const DEFAULT_POLICY: Readonly<AlgorithmPolicy> = Object.freeze({
  version: 1,
  refusedHashes: ['md5'],
  sha1OnReceive: 'reject',
  shortRsaOnReceive: 'reject',
  minRsaBits: 2048,
  minEcBits: 256,
  allowedCurves: ['prime256v1', 'secp384r1', 'secp521r1'],
} as AlgorithmPolicy);

/**
 * `policy` with SHA-1 and short RSA keys accepted (with a warning) on receive: for
 * reading archives of old mail (`--allow-legacy`). Nothing else is loosened.
 */
export function allowLegacyAlgorithms(policy: AlgorithmPolicy = DEFAULT_POLICY): AlgorithmPolicy {
  return { ...policy, sha1OnReceive: 'warn', shortRsaOnReceive: 'warn' };
}

/** The policy as indented JSON, for the CLI and the console. */
export function describeAlgorithmPolicy(policy: AlgorithmPolicy = DEFAULT_POLICY): string {
  return JSON.stringify(policy, null, 2);
}

const HASH_OF: Record<string, string> = {
  [OID.md5]: 'md5',
  [OID.md5WithRSAEncryption]: 'md5',
  [OID.sha1]: 'sha1',
  [OID.sha1WithRSAEncryption]: 'sha1',
  [OID.ecdsaWithSHA1]: 'sha1',
  '1.2.840.10040.4.3': 'sha1', // dsa-with-sha1
  [OID.sha224]: 'sha224',
  [OID.sha224WithRSAEncryption]: 'sha224',
  [OID.ecdsaWithSHA224]: 'sha224',
  [OID.sha256]: 'sha256',
  [OID.sha256WithRSAEncryption]: 'sha256',
  [OID.ecdsaWithSHA256]: 'sha256',
  [OID.sha384]: 'sha384',
  [OID.sha384WithRSAEncryption]: 'sha384',
  [OID.ecdsaWithSHA384]: 'sha384',
  [OID.sha512]: 'sha512',
  [OID.sha512WithRSAEncryption]: 'sha512',
  [OID.ecdsaWithSHA512]: 'sha512',
};

const CURVE_BITS: Record<string, number> = { prime256v1: 256, secp384r1: 384, secp521r1: 521, secp256k1: 256, secp224r1: 224, prime192v1: 192 };

export interface AlgorithmFinding {
  /** reject: refused (WEAK_ALG); warn: a legacy algorithm the policy accepts, flagged. */
  action: 'reject' | 'warn';
  message: string;
  /** For SHA-1 and short RSA keys, which the policy may accept: the bare fact, without the decision. */
  legacy?: string;
}

export type AlgorithmSituation = 'create' | 'receive';

/** The hash a signature or digest algorithm OID uses, when known ('sha256', 'md5'...). */
export function hashOfAlgorithm(oid: string): string | undefined {
  return HASH_OF[oid];
}

/** A received legacy algorithm (SHA-1, a short RSA key): the sentence says which way the policy went and how to change it. */
function legacyFinding(action: LegacyAction, fact: string): AlgorithmFinding {
  return action === 'reject'
    ? { action, legacy: fact, message: `${fact} Legacy algorithms are refused; allow them (allowLegacy) only to read old mail.` }
    : { action, legacy: fact, message: `${fact} Accepted only because legacy algorithms are allowed.` };
}

/** Judges a hash/signature algorithm OID. Returns undefined when it is acceptable. */
export function judgeHashAlgorithm(oid: string, situation: AlgorithmSituation, policy: AlgorithmPolicy, what: string): AlgorithmFinding | undefined {
  const h = HASH_OF[oid];
  if (!h) return undefined;
  if (policy.refusedHashes.includes(h)) return { action: 'reject', message: `${what} uses ${h.toUpperCase()} (${oidName(oid)}), which is refused.` };
  if (h === 'sha1') {
    if (situation === 'create') return { action: 'reject', message: `${what}: SHA-1 is refused for new signatures (RFC 8551 2.1).` };
    return legacyFinding(policy.sha1OnReceive, `${what} uses SHA-1 (${oidName(oid)}), a broken hash for signatures.`);
  }
  return undefined;
}

/** Judges a public key's size/curve. Returns undefined when it is acceptable. */
export function judgePublicKey(key: KeyObject, situation: AlgorithmSituation, policy: AlgorithmPolicy, what: string): AlgorithmFinding | undefined {
  const d = key.asymmetricKeyDetails;
  if (key.asymmetricKeyType === 'rsa' || key.asymmetricKeyType === 'rsa-pss') {
    const bits = d?.modulusLength ?? 0;
    if (bits >= policy.minRsaBits) return undefined;
    // Below 1024 bits is broken outright, whatever the setting.
    if (situation === 'create' || bits < 1024) return { action: 'reject', message: `${what} has a ${bits}-bit RSA key; at least ${policy.minRsaBits} bits are required.` };
    return legacyFinding(policy.shortRsaOnReceive, `${what} has a ${bits}-bit RSA key, below the ${policy.minRsaBits}-bit minimum.`);
  }
  if (key.asymmetricKeyType === 'ec') {
    const curve = d?.namedCurve;
    if (!curve || !policy.allowedCurves.includes(curve)) return { action: 'reject', message: `${what} uses the EC curve ${curve ?? '(explicit parameters)'}, which the policy does not allow.` };
    if ((CURVE_BITS[curve] ?? 0) < policy.minEcBits) return { action: 'reject', message: `${what} uses ${curve}, below the ${policy.minEcBits}-bit minimum.` };
    return undefined;
  }
  if (key.asymmetricKeyType === 'dsa') return { action: 'reject', message: `${what} has a DSA key, which S/MIME 4.0 does not use.` };
  return undefined;
}

/**
 * The hash OID of RSASSA-PSS-params (RFC 4055 3.1): hashAlgorithm [0], SHA-1 when
 * absent. The certificate's signature was verified by OpenSSL with these very
 * parameters; the policy must judge the same hash, which the OID rsassaPss does not name.
 */
function pssHashOid(parameters: Uint8Array | undefined): string {
  if (!parameters) return OID.sha1;
  const params = decode(parameters, { der: true });
  if (params.tag !== Tag.SEQUENCE) malformed('RSASSA-PSS-params');
  const hash = params.children().find((c) => c.tag === 0xa0)?.children()[0]?.children()[0];
  return hash ? readOid(hash, 'PSS hashAlgorithm') : OID.sha1;
}

/** Findings for a certificate: its signature hash and its public key. */
export function judgeCertificateAlgorithms(cert: Certificate, situation: AlgorithmSituation, policy: AlgorithmPolicy, what: string, checkSignature = true): AlgorithmFinding[] {
  const out: AlgorithmFinding[] = [];
  // (An anchor's self-signature is not judged, nor read: its parameters were never verified.)
  const signatureHash = () => (cert.signatureAlgorithm === OID.rsassaPss ? pssHashOid(cert.signatureParameters) : cert.signatureAlgorithm);
  const h = checkSignature ? judgeHashAlgorithm(signatureHash(), situation, policy, `${what}'s signature`) : undefined;
  if (h) out.push(h);
  // RFC 5480 2.1.1: only namedCurve. OpenSSL recognises a named curve spelled out as
  // explicit parameters (asymmetricKeyDetails then names it), so the SPKI decides.
  if (cert.publicKeyAlgorithm === OID.ecPublicKey && cert.publicKeyParameters === undefined) {
    out.push({ action: 'reject', message: `${what} has an EC key with explicit (or implicit) curve parameters instead of a named curve (RFC 5480 2.1.1).` });
    return out;
  }
  const k = judgePublicKey(cert.publicKey, situation, policy, what);
  if (k) out.push(k);
  return out;
}
