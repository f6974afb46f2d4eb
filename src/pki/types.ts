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

/**
 * The caller's own CA as a revocation source, asked before any network source: the
 * status of `cert`, issued by `issuer`, from records the caller trusts as it trusts
 * its anchors (the key store's internal CA: src/ca/internal-ca-revocation.ts, so
 * its certificates get an answer when its CRL or OCSP URL cannot be reached, or it
 * publishes none). Undefined when the source does not speak for that certificate;
 * then the usual sources are asked.
 */
export type LocalRevocationSource = (cert: Certificate, issuer: Certificate) => Promise<{ status: 'good' | 'revoked'; revokedAt?: Date; reason?: string } | undefined>;

/** The revocation status of one certificate of the path, and where it came from. */
export interface CertificateRevocationReport {
  /** 'signer' for the leaf, 'ca' for an intermediate (the anchor is not checked: trusted by configuration). */
  role: 'signer' | 'ca';
  subject: string;
  /** Serial number, hex. */
  serial: string;
  status: 'good' | 'revoked' | 'unknown' | 'not-checked';
  /** Where the answer came from (absent when unknown or not checked); 'internal-ca': the caller's own CA's records (LocalRevocationSource). */
  source?: 'ocsp' | 'crl' | 'embedded-ocsp' | 'embedded-crl' | 'internal-ca';
  /** The answer was reused from an earlier online check (the source says which). */
  cached?: boolean;
  /** thisUpdate of the evidence used. */
  time?: Date;
  revokedAt?: Date;
  reason?: string;
  /** One plain sentence: the answer and its source, or why there is none. */
  message: string;
}

export interface RevocationReport {
  /** The path as a whole: revoked if any certificate is (and it counts), unknown if any is unknown, good if all are good. */
  status: 'good' | 'revoked' | 'unknown' | 'not-checked';
  /** Where the answer came from (the signer's certificate's, or the revoked one's). */
  source?: 'ocsp' | 'crl' | 'embedded-ocsp' | 'embedded-crl' | 'internal-ca' | 'cache';
  /** thisUpdate / producedAt of the evidence used. */
  time?: Date;
  revokedAt?: Date;
  reason?: string;
  message: string;
  /** Each certificate below the anchor, signer first (empty when no valid path was found). */
  certificates: CertificateRevocationReport[];
}

export interface IdentityReport {
  /** match: a From mailbox is in the certificate; mismatch: it is not; unknown: nothing to compare. */
  status: 'match' | 'mismatch' | 'unknown';
  /** The address compared (on a match, the one that matched). */
  from?: string;
  /**
   * On a match: the field whose address matched. RFC 8550 section 3 accepts the
   * Sender; a reader sees From, so the verdict rules (src/smime/judge-message.ts)
   * never call a Sender-only match trusted.
   */
  field?: 'From' | 'Sender';
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
  /**
   * Legacy algorithms (SHA-1, RSA keys under the policy minimum) in the signature or
   * the path that the policy accepted instead of refusing (allowLegacy, or a 'warn'
   * policy): a 'trusted' status rests on them. One plain sentence each ("The intermediate
   * CA ... uses SHA-1 ..."); `warnings` says them too. Absent when none.
   */
  legacy?: string[];
  /** The signer's RFC 3161 signature timestamp, when the signature carries one. */
  timestamp?: TimestampReport;
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
  /** OCSP responses carried in the message (RevocationInfoChoices other, id-ri-ocsp-response), DER OCSPResponse. */
  carriedOcsp?: Uint8Array[];
  /** Digest and signature algorithms of the CMS signature, checked against the algorithm policy. */
  signatureAlgorithms?: SignatureAlgorithmsUsed;
  /**
   * The RFC 3161 signature timestamp token (id-aa-signatureTimeStampToken) of this
   * signer, as the CMS layer found it (verifyTimestampToken: its signature and its
   * imprint over this signature value). The validator decides whether its TSA is
   * trusted and whether its genTime is the clock (validityClock 'timestamp', or
   * preferred to signingTime by 'signingTime'): a time is never used on the CMS
   * layer's word alone.
   */
  timestampToken?: TimestampEvidence;
}

/** What the CMS layer found in a signature timestamp token (see verifyTimestampToken). */
export interface TimestampEvidence {
  /** 'valid': the token's signature verifies and its imprint is the hash of this signature; 'invalid': `message` says why not. */
  status: 'valid' | 'invalid';
  code?: ErrorCode;
  message: string;
  genTime?: Date;
  /** The TSA's certificate (the token's signer). */
  certificate?: Certificate;
  /** Certificates, CRLs and OCSP responses carried in the token (candidates and evidence, never anchors). */
  certificates: Certificate[];
  crls: Uint8Array[];
  ocspResponses: Uint8Array[];
  /** messageImprint hash algorithm OID. */
  imprintAlgorithm?: string;
  /** The token signature's own algorithms. */
  algorithmOids?: SignatureAlgorithmsUsed;
}

/** The verdict on a signature timestamp token (TrustReport.timestamp). */
export interface TimestampReport {
  /**
   * 'verified': signature, imprint, TSA certificate (timeStamping, path to a TSA anchor,
   * revocation) and genTime all hold; 'refused': something does not (code, message);
   * 'not-checked': the validity clock is 'now', so the token was not needed.
   */
  status: 'verified' | 'refused' | 'not-checked';
  code?: ErrorCode;
  /** genTime as the token states it (also when refused, for the reader; never used then). */
  time?: Date;
  /** The TSA's certificate subject, when known. */
  tsa?: string;
  /** True when the token's time is the clock of this report (clock.source 'timestamp'). */
  used: boolean;
  /** One plain sentence. */
  message: string;
}

export type SignerValidator = (input: SignerValidationInput) => Promise<TrustReport>;

// ------------------------------------------------------------------------------
// Additive extensions (issue 4): what the validator needs injected, and optional
// evidence the CMS layer can pass along. Existing fields keep their meaning.

/**
 * Where trust anchors and known intermediates come from. The administrator's
 * files/directory (loadTrustAnchors) or the store (later) implement it. Anchors
 * are the only certificates ever trusted by themselves.
 */
export interface TrustStore {
  anchors(): Promise<Certificate[]>;
  /** Known intermediate CA certificates whose subject equals `subject` (DER Name). */
  intermediates?(subject: Uint8Array): Promise<Certificate[]>;
}

export interface FetchRequest {
  method: 'GET' | 'POST';
  body?: Uint8Array;
  contentType?: string;
  /** The response is abandoned (LIMIT) beyond this many bytes. */
  maxBytes: number;
  timeoutMs: number;
}

/**
 * Fetches CRLs, OCSP responses and caIssuers certificates. Injected (style guide,
 * "Injection"); createHttpFetcher() is the default. Must reject on any HTTP status
 * other than 200.
 */
export type Fetcher = (url: string, request: FetchRequest) => Promise<Uint8Array>;

/** Algorithms the signer used on the CMS signature itself, for the algorithm policy. */
export interface SignatureAlgorithmsUsed {
  /** digestAlgorithm OID. */
  digest: string;
  /** signatureAlgorithm OID. */
  signature: string;
}
