/**
 * Every failure Kakitome reports carries a stable `code`. Codes are API and never
 * change meaning; messages are for people and may be reworded.
 *
 * The verification codes are the ones the brief's "Safe verification" lists; the
 * few others describe misuse of the API or of a key.
 */
export type ErrorCode =
  /** The input is not well-formed (bad DER/BER, wrong structure, trailing data). */
  | 'MALFORMED'
  /** A SignedData carries no SignerInfo: a signature without a signer is no signature. */
  | 'NO_SIGNERS'
  /** Both encapsulated and detached content, or otherwise two readings of one input. */
  | 'AMBIGUOUS_CONTENT'
  /** Signed attributes missing, duplicated, multi-valued, wrongly typed or inconsistent. */
  | 'ATTR_INVALID'
  /** The content's digest does not match the messageDigest attribute. */
  | 'DIGEST_MISMATCH'
  /** The signature value does not verify with the signer's public key. */
  | 'BAD_SIG'
  /** An algorithm Kakitome does not implement (or not in this role). */
  | 'UNSUPPORTED_ALG'
  /** An algorithm refused by policy (MD5, SHA-1, short RSA keys...). */
  | 'WEAK_ALG'
  | 'CERT_UNTRUSTED'
  | 'CERT_EXPIRED'
  | 'CERT_REVOKED'
  /** Revocation is required by policy (revocation: 'require') and a certificate of the path has no answer. */
  | 'REVOCATION_UNKNOWN'
  | 'CERT_USAGE'
  /**
   * The validity clock is the signature timestamp (validityClock 'timestamp') and the
   * signer's RFC 3161 timestamp token is present but not usable; the report says why.
   */
  | 'TIMESTAMP_INVALID'
  | 'IDENTITY_MISMATCH'
  | 'PARTIAL_SIGNED'
  | 'UNAUTH_ENC'
  /** Decryption failed. Deliberately one code and one message for every cause. */
  | 'DECRYPT_FAILED'
  /** None of the envelope's recipients matches the keys offered (public information). */
  | 'NOT_RECIPIENT'
  /** A size, depth or count limit was exceeded. */
  | 'LIMIT'
  /**
   * The file system a file is written to is full, or the user's quota is used up
   * (ENOSPC, EDQUOT, SQLite's SQLITE_FULL): nothing partial is kept. Remedy `diskSpace`.
   */
  | 'NO_SPACE'
  /** A key or certificate given to an operation is unusable for it. */
  | 'KEY_INVALID'
  /** The caller passed options that cannot work together or are out of range. */
  | 'INVALID_ARGUMENT'
  /** A service request carries no API key, or one that is unknown, malformed or revoked (HTTP 401). */
  | 'UNAUTHENTICATED'
  /** The API key is valid but may not do this: a missing scope, another tenant's identity or domain (HTTP 403). */
  | 'FORBIDDEN'
  /** The API key used up the request rate an administrator set for it (HTTP 429). */
  | 'RATE_LIMITED'
  /** The service has no such resource or route (HTTP 404). */
  | 'NOT_FOUND'
  /**
   * The request does not fit the resource's state: an Idempotency-Key reused with
   * another request, or whose first request is still being received; a batch's
   * result asked for before the batch finished (HTTP 409, or 422 for a reused key).
   */
  | 'CONFLICT';

/**
 * What would let the failed call succeed, in the library's terms: an option of the
 * operation (`email`, `passphrase`, `from`, `crlUrl`, `rootCrlUrl`, `allowInternal`,
 * `trust`) or something to add to the store (`signingKey`, `recipientKey`, `tenant`,
 * `tenantDomain`, `tenantIdentity`, `dkimKey`, `recipientCertificate`, `internalCa`,
 * `ocspSigner`, `masterKey`), or the right name to give, as a list of the store shows
 * it (`apiKeyId`: an API key's id, as the tenant's key list shows it; `heldMessageId`: a
 * held message's, as the list of held messages shows it; `recordedRoot`: a CA root
 * recorded from signed mail; `dkimSelector`: a domain's DKIM key), or the owner and mode of
 * a file or directory (`permissions`: the Kakitome home, the master key file, a store
 * file's directory), or room on the file system a file is written to (`diskSpace`). The message says it
 * in words every front end can show (the API, the console, the gateway), never as a
 * command of one of them; a front end may add its own control for it (the CLI its flag
 * or command: src/cli/describe-error.ts).
 */
export type Remedy =
  | 'email' | 'passphrase' | 'from' | 'crlUrl' | 'rootCrlUrl' | 'allowInternal' | 'trust' | 'signingKey' | 'recipientKey' | 'tenant' | 'tenantDomain' | 'tenantIdentity' | 'dkimKey'
  | 'recipientCertificate' | 'internalCa' | 'ocspSigner' | 'masterKey' | 'apiKeyId' | 'heldMessageId' | 'recordedRoot' | 'dkimSelector'
  | 'permissions' | 'diskSpace';

export class KakitomeError extends Error {
  readonly code: ErrorCode;
  readonly remedy?: Remedy;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; remedy?: Remedy }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'KakitomeError';
    this.code = code;
    if (options?.remedy) this.remedy = options.remedy;
  }
}

/** Thrown for any decryption failure; message and code never vary with the cause. */
export class DecryptionError extends KakitomeError {
  constructor() {
    super('DECRYPT_FAILED', 'The message could not be decrypted: it is damaged, was not encrypted for this key, or was altered.');
    this.name = 'DecryptionError';
  }
}

/**
 * Thrown when content decrypted from CBC (EnvelopedData, which has no integrity
 * check) is not released: no trusted signature of the From address, made inside
 * the encryption, covers all of it (EFAIL), or it could not be decrypted or read at
 * all. Message and code never vary with the cause, so that a refusal tells an
 * attacker who altered the ciphertext nothing about the plaintext (no padding or
 * format oracle).
 */
export class UnauthenticatedContentError extends KakitomeError {
  constructor() {
    super(
      'UNAUTH_ENC',
      'The message is encrypted with CBC (enveloped-data), which does not detect tampering, and no trusted signature of its sender made inside the encryption vouches for all of it, or it could not be decrypted at all: it was not opened, so that altered content (EFAIL) is never shown. Ask the sender to encrypt with AES-GCM (authEnveloped-data) or to sign inside the encryption.',
    );
    this.name = 'UnauthenticatedContentError';
  }
}

/**
 * The error's remedy as a member to spread into its plain-data form ({} without one):
 * wherever an error crosses a thread or is written into a report (a batch's failures,
 * problem details, a CLI batch's lines), the remedy goes with its code and message.
 */
export function remedyOf(e: { remedy?: Remedy | undefined }): { remedy?: Remedy } {
  return e.remedy ? { remedy: e.remedy } : {};
}

/** The error again from its plain-data form (code, message and remedy), on the other side of a thread. */
export function errorFromData(d: { code: ErrorCode; message: string; remedy?: Remedy | undefined }): KakitomeError {
  return new KakitomeError(d.code, d.message, d.remedy ? { remedy: d.remedy } : undefined);
}

export function fail(code: ErrorCode, message: string, cause?: unknown): never {
  throw new KakitomeError(code, message, cause === undefined ? undefined : { cause });
}

export function malformed(what: string): never {
  throw new KakitomeError('MALFORMED', `Malformed input: ${what}.`);
}

export function isKakitomeError(e: unknown, code?: ErrorCode): e is KakitomeError {
  return e instanceof KakitomeError && (code === undefined || e.code === code);
}

/**
 * The system's name for a write that failed because its file system is full or the
 * user's quota is used up: ENOSPC, EDQUOT, or node:sqlite's SQLITE_FULL (primary
 * result code 13, https://sqlite.org/rescode.html); else undefined. Such a failure is
 * NO_SPACE with remedy `diskSpace`, never an internal error (the services' own reading
 * of it, as passing trouble worth a 503, is src/server/temporary-failure.ts).
 */
export function diskFullCause(e: unknown): 'ENOSPC' | 'EDQUOT' | 'SQLITE_FULL' | undefined {
  const err = e as { code?: unknown; errcode?: unknown } | undefined;
  if (!err || typeof err !== 'object') return undefined;
  if (err.code === 'ENOSPC' || err.code === 'EDQUOT') return err.code;
  if (typeof err.errcode === 'number' && (err.errcode & 0xff) === 13) return 'SQLITE_FULL';
  return undefined;
}
