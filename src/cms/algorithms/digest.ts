/**
 * Digest algorithms in CMS (RFC 5652 5.3 digestAlgorithm, RFC 5754 SHA-2,
 * RFC 8419 2.3 id-shake256-len for Ed448, RFC 8702 SHAKE). Hashing itself is
 * node:crypto's; this file maps identifiers to it and encodes them.
 *
 * Receive policy (brief, "Weak algorithms"): MD5 is refused (WEAK_ALG); SHA-1 and
 * SHA-224 are accepted and flagged `legacy` so the verdict can warn and the PKI
 * policy layer can decide.
 */
import { createHash, type Hash } from 'node:crypto';
import { Tag, readSmallInt } from '../../asn1/ber.ts';
import { OID } from '../../asn1/oids.ts';
import { sequence, oid, integer } from '../../asn1/der.ts';
import { KakitomeError } from '../../errors.ts';
import { hasNoParameters, type AlgorithmIdentifier } from '../algorithm-identifier.ts';

/** Readable digest names, as reported in verdicts. 'shake256' is SHAKE256 with 512-bit output (RFC 8419). */
export type DigestName = 'md5' | 'sha1' | 'sha224' | 'sha256' | 'sha384' | 'sha512' | 'sha3-256' | 'sha3-384' | 'sha3-512' | 'shake256';

export interface DigestAlgorithm {
  name: DigestName;
  oid: string;
  /** Output length in bytes. */
  length: number;
  /** 'refused' (MD5), 'legacy' (SHA-1, SHA-224: warn) or undefined. */
  weakness: 'refused' | 'legacy' | undefined;
}

/** id-shake256-len (RFC 8419 2.3). Kept here, not in oids.ts: only EdDSA in CMS uses it. */
export const ID_SHAKE256_LEN = '2.16.840.1.101.3.4.2.18';

const TABLE: Record<DigestName, DigestAlgorithm> = {
  md5: { name: 'md5', oid: OID.md5, length: 16, weakness: 'refused' },
  sha1: { name: 'sha1', oid: OID.sha1, length: 20, weakness: 'legacy' },
  sha224: { name: 'sha224', oid: OID.sha224, length: 28, weakness: 'legacy' },
  sha256: { name: 'sha256', oid: OID.sha256, length: 32, weakness: undefined },
  sha384: { name: 'sha384', oid: OID.sha384, length: 48, weakness: undefined },
  sha512: { name: 'sha512', oid: OID.sha512, length: 64, weakness: undefined },
  'sha3-256': { name: 'sha3-256', oid: OID.sha3_256, length: 32, weakness: undefined },
  'sha3-384': { name: 'sha3-384', oid: OID.sha3_384, length: 48, weakness: undefined },
  'sha3-512': { name: 'sha3-512', oid: OID.sha3_512, length: 64, weakness: undefined },
  shake256: { name: 'shake256', oid: ID_SHAKE256_LEN, length: 64, weakness: undefined },
};

const BY_OID = new Map<string, DigestAlgorithm>(Object.values(TABLE).map((d) => [d.oid, d]));

export function digestAlgorithm(name: DigestName): DigestAlgorithm {
  return TABLE[name];
}

/**
 * Resolves a DigestAlgorithmIdentifier. Parameters must be absent or NULL
 * (RFC 5754 2: absent preferred, NULL accepted), except id-shake256-len whose
 * parameter must be the output length 512 (RFC 8419 2.3: the only length CMS uses).
 * Throws UNSUPPORTED_ALG for anything else; MD5 is returned (flagged `refused`) so the
 * caller can report WEAK_ALG rather than "unknown".
 */
export function parseDigestAlgorithm(a: AlgorithmIdentifier): DigestAlgorithm {
  const d = BY_OID.get(a.oid);
  if (!d) throw new KakitomeError('UNSUPPORTED_ALG', `Digest algorithm ${a.oid} is not supported.`);
  if (d.name === 'shake256') {
    const p = a.parameters;
    if (!p || p.tag !== Tag.INTEGER || readSmallInt(p, 'ShakeOutputLen') !== 512) {
      throw new KakitomeError('UNSUPPORTED_ALG', 'id-shake256-len is only supported with an output length of 512 bits (RFC 8419).');
    }
    return d;
  }
  if (!hasNoParameters(a)) throw new KakitomeError('UNSUPPORTED_ALG', `Digest algorithm ${d.name} has unexpected parameters.`);
  return d;
}

const encoded = new Map<DigestName, Buffer>();

/** DER DigestAlgorithmIdentifier: parameters absent (RFC 5754 2), 512 for id-shake256-len (RFC 8419). */
export function encodeDigestAlgorithm(name: DigestName): Buffer {
  let e = encoded.get(name);
  if (!e) {
    const d = TABLE[name];
    e = d.name === 'shake256' ? sequence(oid(d.oid), integer(512)) : sequence(oid(d.oid));
    encoded.set(name, e);
  }
  return e;
}

/** A node:crypto Hash for the algorithm, for callers that digest a stream. */
export function createDigest(d: DigestAlgorithm | DigestName): Hash {
  const name = typeof d === 'string' ? d : d.name;
  return name === 'shake256' ? createHash('shake256', { outputLength: 64 }) : createHash(name);
}

/** The digest of `data` in one call. */
export function computeDigest(d: DigestAlgorithm | DigestName, data: Uint8Array): Buffer {
  return createDigest(d).update(data).digest();
}
