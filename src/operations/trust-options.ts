/**
 * What a signer is judged against, as plain data: the administrator's anchors
 * (beyond the key store's trusted CAs), revocation, the validity clock, what may be
 * fetched, and whether legacy algorithms are read. The front ends fill it in: the
 * CLI from --ca, --tsa-ca, --revocation... (cli/commands/trust-options.ts, files
 * read by cli/load-trust-options.ts); the signing service, the console and the
 * gateway with storeTrustOptions. create-trust-validator.ts turns it into the
 * SignerValidator the S/MIME layer is given.
 */
import type { RevocationMode } from '../pki/check-revocation.ts';
import type { Certificate } from '../x509/certificate.ts';

export interface TrustOptions {
  /** The administrator's trust anchors; the key store's trusted CAs join them when a store is given. */
  anchors: readonly Certificate[];
  /** Trust anchors for TSA certificates; absent or empty: the signer anchors (and the store's). */
  tsaAnchors?: readonly Certificate[];
  /**
   * allow-unknown: a certificate without a CRL/OCSP answer is reported as
   * "revocation unknown" (in the summary line too), not fatal; require makes it
   * REVOCATION_UNKNOWN. hard-fail and soft-fail are the former names.
   */
  revocation: RevocationMode;
  /**
   * 'now'; 'signingTime' accepts a signature made while the certificate was valid
   * (a verified timestamp's time, else the signer's signingTime); 'timestamp' only
   * a verified RFC 3161 signature timestamp's time (else now; a bad token fails).
   */
  validityClock: 'now' | 'signingTime' | 'timestamp';
  /** Hosts whose AIA caIssuers URLs may be chased (none: no chasing). */
  fetchCaIssuers: readonly string[];
  /** Hosts, addresses and CIDR blocks that may be fetched although internal (none: no internal address). */
  allowInternalFetch: readonly string[];
  /** Accept SHA-1 and RSA keys under 2048 bits in received signatures and paths (old mail). */
  allowLegacy: boolean;
}

/**
 * The long-running front ends' trust (the signing service, the console, the
 * gateway, `certs roots trust`): the key store's trusted CAs only, checked now,
 * revocation as configured, nothing chased or fetched from an internal address,
 * no legacy algorithms.
 */
export function storeTrustOptions(revocation: RevocationMode): TrustOptions {
  return { anchors: [], revocation, validityClock: 'now', fetchCaIssuers: [], allowInternalFetch: [], allowLegacy: false };
}
