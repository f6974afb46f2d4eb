/**
 * The structured result of verifying or decrypting a message (brief, "Safe
 * verification"; style guide, "Verdicts"). Never a bare boolean: the status is
 * computed from per-layer and per-signer facts, each failure has a stable code,
 * and "broken" (invalid) is kept apart from "not allowed / not known"
 * (valid-untrusted).
 *
 * Status, and the CLI exit code it maps to:
 * - 'trusted'          every signer of the message body verifies, its certificate chains to a trust anchor
 *                      (injected SignerValidator) and matches From; nothing flagged. Exit 0.
 * - 'valid-untrusted'  the signatures verify, but the chain was not checked (no validator), is untrusted,
 *                      the signer does not match From, or the structure was flagged (odd protocol parameter,
 *                      protected-header From mismatch). `code` says which. Exit 1.
 * - 'invalid'          a signature covering the message body fails (BAD_SIG, DIGEST_MISMATCH, ATTR_INVALID...). Exit 1.
 * - 'partial'          the body is not signed, but parts inside it are (PARTIAL_SIGNED): the signed part
 *                      vouches for nothing around it. Exit 1.
 * - 'unsigned'         no signature at all; `code` is UNAUTH_ENC when the body was CBC-encrypted (decrypted only
 *                      with allowUnauthenticated: see unauthenticated-content.ts). Exit 1 for verify.
 *
 * Attached (forwarded) messages have verdicts of their own (`attachedMessages`) that
 * never change the status, code, signers or exit code of the message holding them.
 */
import type { ErrorCode } from '../errors.ts';
import type { IdentityReport, TrustReport } from '../pki/types.ts';
import type { Certificate } from '../x509/certificate.ts';
import type { SmimeCapability } from '../cms/capabilities.ts';
import type { CmsIdentifier } from '../cms/identifier.ts';

export type VerdictStatus = 'trusted' | 'valid-untrusted' | 'invalid' | 'unsigned' | 'partial';

export interface LayerReport {
  kind: 'signed' | 'enveloped' | 'auth-enveloped' | 'compressed' | 'certs-only';
  /** multipart/signed ('detached') or application/pkcs7-mime ('opaque'). */
  form: 'detached' | 'opaque';
  /** The MIME type that carried the layer, as written (application/x-pkcs7-mime...). */
  mediaType: string;
  /** False for layers found inside unprotected content (they vouch for nothing around them). */
  coversBody: boolean;
  /** Enveloped layers: whether they were decrypted. */
  decrypted?: boolean;
  warnings: string[];
}

export interface SignerVerdict {
  /** First e-mail address in the certificate. */
  email?: string;
  subject: string;
  /** Cryptographic result for this signer. */
  status: 'valid' | 'invalid';
  /** Failure code: the signature's, else the trust report's, else IDENTITY_MISMATCH. */
  code: ErrorCode | undefined;
  message: string;
  signingTime?: Date;
  algorithms: { digest: string; signature: string };
  /** 'message': signs the message body; 'part': signs a part inside unsigned content. */
  scope: 'message' | 'part';
  certificate?: Certificate;
  /** Present when a SignerValidator was given. */
  trust?: TrustReport;
  identity: IdentityReport;
  /**
   * Everything said about this signer that is not a failure: the signature's own notes
   * (no signing time, SHA-1 digest, short RSA key...) and then the trust report's.
   */
  warnings: string[];
  /** The signer's SMIMECapabilities attribute (RFC 8551 2.5.2), for harvesting; never a verification result. */
  capabilities?: SmimeCapability[];
  /** The signer's SMIMEEncryptionKeyPreference (RFC 8551 2.5.3), for harvesting. */
  encryptionKeyPreference?: CmsIdentifier;
  /** Certificates carried in the signed layer (where a preferred encryption certificate is found). */
  carried?: Certificate[];
  /**
   * Countersignatures on this signer's signature (RFC 5652 11.4), checked
   * cryptographically and, when they verify, their certificates path-validated
   * against the same trust anchors (`trust`); never part of this signer's status,
   * code or trust. First level only. Absent when there are none.
   */
  countersignatures?: CountersignatureVerdict[];
}

/** One countersignature: who made it, and whether it verifies over the countersigned signature value. */
export interface CountersignatureVerdict {
  /** The SignerInfo's signer identifier in words ('serial 0A1B...' or 'key id ...'). */
  identifier: string;
  /** The countersigner's certificate subject, when its certificate is among the message's (or the given) certificates. */
  subject?: string;
  certificate?: Certificate;
  status: 'valid' | 'invalid';
  code: ErrorCode | undefined;
  message: string;
  signingTime?: Date;
  algorithms: { digest: string; signature: string };
  warnings: string[];
  /**
   * The countersigner's certificate judged by the signers' validator (path, validity at
   * the countersignature's signing time under the 'signingTime' clock, revocation,
   * algorithms; no sender comparison: a countersigner is not the author). Absent when
   * the countersignature does not verify or no validator was given.
   */
  trust?: TrustReport;
  /** Set instead of `trust` when the countersigner's certificate could not be judged at all (a MALFORMED extension, say). */
  trustFailure?: { code: ErrorCode; message: string };
}

export interface EncryptionReport {
  contentEncryption: string;
  /** True for AEAD content encryption (AuthEnvelopedData); false for CBC (EnvelopedData). */
  authenticated: boolean;
  /**
   * What vouches for the decrypted content: the AEAD tag ('aead'), for CBC content a
   * trusted signature of the From address made inside the encryption ('signature'),
   * or nothing ('none': CBC content released only because allowUnauthenticated was given).
   */
  authenticatedBy: 'aead' | 'signature' | 'none';
  recipients: number;
  keyManagement: string;
}

export interface ProtectedHeadersReport {
  /** RFC 9788 hp parameter of the cryptographic payload. */
  mode: 'cipher' | 'clear';
  /** The protected header fields (decoded text), in order: what a reader should be shown. */
  headers: Array<[string, string]>;
  /** Plain-language notes on outer fields that differ from the protected ones without an HP-Outer explanation. */
  mismatches: string[];
}

export interface MessageVerdict {
  status: VerdictStatus;
  code: ErrorCode | undefined;
  /** One plain-language line for a person. */
  summary: string;
  /** Outermost first. */
  layers: LayerReport[];
  signers: SignerVerdict[];
  encryption?: EncryptionReport;
  protectedHeaders?: ProtectedHeadersReport;
  /**
   * The header fields a reader sees (From, Sender, To, Cc, Reply-To, Subject, Date,
   * those present) that no signature covers: set when the body is validly signed
   * without RFC 9788 header protection. A warning says the same in words.
   */
  unsignedHeaders?: string[];
  warnings: string[];
  /**
   * Messages attached to this one (message/rfc822 and message/global parts: forwarded
   * mail), each opened and judged on its own, against its own From: never merged into
   * this verdict (an attached message's valid signature never makes this one
   * 'trusted'; an invalid one never makes it 'invalid'). Present when the reader looked
   * and found any; the streaming readers do not look and say so in `warnings`.
   */
  attachedMessages?: AttachedMessageVerdict[];
  /** The message with the S/MIME layers removed (signature / encryption), protected headers restored. */
  output: Buffer;
}

/**
 * One attached message (open-attached-messages.ts): its own verdict, or why it was
 * not opened. Its `verdict.output` is what verifyMessage / decryptMessage would give
 * for it alone (decrypted only when keys were given, under the same EFAIL rule, and
 * withheld when a signature over its decrypted content fails); the message holding
 * it is never changed.
 */
export interface AttachedMessageVerdict {
  /** Where it is: the part number (IMAP numbering: "2", "1.3"; "1" when it is the whole body) in the message as `output` holds it. */
  part: string;
  /** The part's file name (Content-Disposition filename, else Content-Type name), for display. */
  filename?: string;
  /** Its own verdict (its own layers, signers, From, attached messages). Absent when `error` says why not. */
  verdict?: MessageVerdict;
  /**
   * Set when it was decrypted and its verdict releases it: the attached message with
   * only its encryption removed, the signatures made inside the encryption kept (so a
   * new recipient can verify them), protected header fields restored. What
   * decryptAttachedMessages puts in its place.
   */
  decrypted?: Buffer;
  /** Why it was not opened (LIMIT), or the error opening it gave (NOT_RECIPIENT, UNAUTH_ENC, DECRYPT_FAILED, MALFORMED...). */
  error?: { code: ErrorCode; message: string };
  /** One plain-language line naming the attachment and what was found. */
  summary: string;
}

/** Exit status for the CLI: 0 only for a trusted signature. */
export function verdictExitCode(v: Pick<MessageVerdict, 'status'>): 0 | 1 {
  return v.status === 'trusted' ? 0 : 1;
}
