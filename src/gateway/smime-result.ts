/**
 * The RFC 7281 `smime` result for what the gateway found on an inbound message:
 *
 * | found | result |
 * |---|---|
 * | a trusted signature of the From address | pass |
 * | a signature that does not verify (invalid) | fail |
 * | a good signature whose certificate is revoked, expired, not for e-mail, too weak, damaged (an extension that cannot be read: MALFORMED), or not the From address's | fail |
 * | a good signature from a signer nobody vouches for (CERT_UNTRUSTED), flagged structure, a signed part inside unsigned content | neutral |
 * | revocation required and not answerable now | temperror |
 * | no signature | none |
 * | CBC encryption not opened (UNAUTH_ENC), encrypted for nobody whose key we hold (NOT_RECIPIENT) | neutral |
 * | undecryptable, malformed, over a limit, unsupported | permerror |
 */
import { KakitomeError, type ErrorCode } from '../errors.ts';
import type { MessageVerdict } from '../smime/verdict.ts';
import type { SmimeAuthentication } from './authentication-results.ts';

const FAILING: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['CERT_REVOKED', 'CERT_EXPIRED', 'CERT_USAGE', 'WEAK_ALG', 'IDENTITY_MISMATCH', 'MALFORMED']);
const NEUTRAL_ERRORS: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['UNAUTH_ENC', 'NOT_RECIPIENT']);

export function smimeResultOfVerdict(v: MessageVerdict): SmimeAuthentication {
  const signer = v.signers.find((s) => s.scope === 'message') ?? v.signers[0];
  const who = signer ? { signer: { ...(signer.email ? { email: signer.email } : {}), ...(signer.certificate ? { serial: signer.certificate.serialHex } : {}) } } : {};
  const code = v.code ? { code: v.code } : {};
  switch (v.status) {
    case 'trusted':
      return { result: 'pass', reason: v.summary, ...who };
    case 'invalid':
      return { result: 'fail', reason: v.summary, ...code, ...who };
    case 'valid-untrusted':
      if (v.code === 'REVOCATION_UNKNOWN') return { result: 'temperror', reason: v.summary, ...code, ...who };
      return { result: v.code !== undefined && FAILING.has(v.code) ? 'fail' : 'neutral', reason: v.summary, ...code, ...who };
    case 'partial':
      return { result: 'neutral', reason: v.summary, ...code, ...who };
    case 'unsigned':
      return { result: 'none', reason: v.summary, ...code };
  }
}

/** A refusal about the message itself (a KakitomeError from the library); anything else is no verdict and is not mapped. */
export function smimeResultOfError(e: KakitomeError): SmimeAuthentication {
  return { result: NEUTRAL_ERRORS.has(e.code) ? 'neutral' : 'permerror', code: e.code, reason: e.message };
}

/**
 * Codes that are verdicts about the message (its bytes, its signatures, its
 * encryption): the message is labelled and delivered. Every other failure (the
 * store, an option, a bug) is the gateway's problem and defers the message (4xx).
 */
export const MESSAGE_VERDICT_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'MALFORMED', 'NO_SIGNERS', 'AMBIGUOUS_CONTENT', 'ATTR_INVALID', 'DIGEST_MISMATCH', 'BAD_SIG', 'UNSUPPORTED_ALG', 'WEAK_ALG',
  'CERT_UNTRUSTED', 'CERT_EXPIRED', 'CERT_REVOKED', 'REVOCATION_UNKNOWN', 'CERT_USAGE', 'IDENTITY_MISMATCH', 'PARTIAL_SIGNED',
  'UNAUTH_ENC', 'DECRYPT_FAILED', 'NOT_RECIPIENT', 'LIMIT',
]);

export function isMessageVerdictError(e: unknown): e is KakitomeError {
  return e instanceof KakitomeError && MESSAGE_VERDICT_CODES.has(e.code);
}
