/**
 * The command line's exit statuses and the mapping from Kakitome error codes to
 * them. Scripts depend on these numbers: they never change meaning.
 *
 *   0  success (for verify: the signature is valid AND the signer is trusted)
 *   1  the message failed: verification failed, the signer is untrusted, or it
 *      cannot be decrypted
 *   2  usage error or malformed input (bad options, unreadable files, a full disk, wrong
 *      passphrase, a key that does not fit its certificate, broken ASN.1/MIME)
 *   3  internal error: a bug in Kakitome, never a verdict about the message
 */
import { isKakitomeError, type ErrorCode } from '../errors.ts';

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;
export const EXIT_INTERNAL = 3;

export type ExitCode = typeof EXIT_OK | typeof EXIT_FAILED | typeof EXIT_USAGE | typeof EXIT_INTERNAL;

/**
 * Codes that describe the caller's input or options rather than a verdict about a
 * message. Everything else (BAD_SIG, CERT_UNTRUSTED, DECRYPT_FAILED, ...) is a
 * verdict and exits 1.
 */
const USAGE_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['MALFORMED', 'LIMIT', 'INVALID_ARGUMENT', 'KEY_INVALID', 'NO_SPACE']);

/** The exit status for a thrown error. */
export function exitCodeForError(e: unknown): ExitCode {
  if (isKakitomeError(e)) return USAGE_CODES.has(e.code) ? EXIT_USAGE : EXIT_FAILED;
  if (isFileSystemError(e)) return EXIT_USAGE;
  return EXIT_INTERNAL;
}

/**
 * The exit status for a finished verification (src/smime/verdict.ts statuses):
 * only 'trusted' is success; a verdict whose code says the input itself was
 * malformed or over a limit exits 2 like a thrown MALFORMED would.
 */
export function exitCodeForVerdict(v: { status: string; code?: ErrorCode | undefined }): ExitCode {
  if (v.code !== undefined && USAGE_CODES.has(v.code)) return EXIT_USAGE;
  return v.status === 'trusted' ? EXIT_OK : EXIT_FAILED;
}

/** The worst of several statuses (a batch exits with its worst message). */
export function worstExitCode(codes: Iterable<ExitCode>): ExitCode {
  let worst: ExitCode = EXIT_OK;
  for (const c of codes) if (c > worst) worst = c;
  return worst;
}

export function isFileSystemError(e: unknown): e is NodeJS.ErrnoException {
  return e instanceof Error && typeof (e as NodeJS.ErrnoException).code === 'string' && typeof (e as NodeJS.ErrnoException).syscall === 'string';
}
