/**
 * The contract between signature verification (src/cms, src/smime) and trust
 * decisions (src/pki). Verification code never imports the PKI implementation: it
 * receives a SignerValidator through its options (style guide: "code that joins
 * them takes the context as a parameter"), so the same verifier runs with no
 * network, with a store, or with a test PKI.
 */
import type { ErrorCode } from '../errors.ts';
import type { Certificate } from '../x509/certificate.ts';

/** Which clock a validity decision used (brief: "the verdict says which clock it used"). */
export interface ClockUsed {
  source: 'now' | 'signingTime' | 'timestamp';
  time: Date;
}

export interface RevocationReport {
  status: 'good' | 'revoked' | 'unknown' | 'not-checked';
  /** Where the answer came from. */
  source?: 'ocsp' | 'crl' | 'embedded-ocsp' | 'embedded-crl' | 'cache';
  /** thisUpdate / producedAt of the evidence used. */
  time?: Date;
  revokedAt?: Date;
  reason?: string;
  message: string;
}

export interface IdentityReport {
  /** match: a From mailbox is in the certificate; mismatch: it is not; unknown: nothing to compare. */
  status: 'match' | 'mismatch' | 'unknown';
  from?: string;
  certificateAddresses: string[];
  message: string;
}

/** The trust verdict for one signer certificate. */
export interface TrustReport {
  status: 'trusted' | 'untrusted';
  /** Set when untrusted: CERT_UNTRUSTED, CERT_EXPIRED, CERT_REVOKED, CERT_USAGE, WEAK_ALG, IDENTITY_MISMATCH. */
  code?: ErrorCode;
  /** One plain-language sentence. */
  message: string;
  /** Leaf first, anchor last (when a path was found). */
  path: Certificate[];
  anchor?: Certificate;
  clock: ClockUsed;
  revocation: RevocationReport;
  identity: IdentityReport;
  /** CA/B Forum S/MIME BR profile, when recognised (e.g. 'mailbox-validated strict'). */
  profile?: string;
  warnings: string[];
}

export interface SignerValidationInput {
  certificate: Certificate;
  /** Certificates carried in the message: candidates for intermediates, never anchors. */
  carried: Certificate[];
  /** CRLs carried in the SignedData (RevocationInfoChoices), DER. */
  carriedCrls?: Uint8Array[];
  signingTime?: Date;
  /** The message's From and Sender mailboxes (addr-spec), for RFC 8550 identity checks. */
  from?: string[];
  sender?: string;
  /** What the certificate is used for here. */
  usage: 'signing' | 'encryption';
}

export type SignerValidator = (input: SignerValidationInput) => Promise<TrustReport>;
