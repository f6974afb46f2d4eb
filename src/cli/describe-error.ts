/**
 * Turns an error into the lines the command line prints on stderr: what went wrong
 * (the error's own message) and what to do (a hint per stable code, the same advice
 * as docs/errors.md; for an error that names its remedy, the command line's own flag or
 * command for it, since the library's message is worded for every front end).
 * Internal errors print no stack unless KAKITOME_DEBUG is set,
 * and no error ever prints a key or passphrase: messages are written not to carry them.
 */
import { isKakitomeError, type ErrorCode, type Remedy } from '../errors.ts';
import { isFileSystemError } from './exit-codes.ts';
import { describeFsError } from './io.ts';

const HINTS: Record<ErrorCode, string> = {
  MALFORMED: 'The input is damaged or is not what this command expects (a whole .eml message, a PEM/DER certificate or key). Do not trust it; get it again.',
  NO_SIGNERS: 'Treat the message as unsigned.',
  AMBIGUOUS_CONTENT: 'Two readings of one message: treat it as an attack and use neither.',
  ATTR_INVALID: 'The signature cannot be relied on.',
  DIGEST_MISMATCH: 'The message was changed after it was signed.',
  BAD_SIG: 'The signature is forged or damaged.',
  UNSUPPORTED_ALG: 'Kakitome does not implement this algorithm here: ask the sender to use a current client.',
  WEAK_ALG: 'The algorithm is refused by policy: the sender must upgrade.',
  CERT_UNTRUSTED: 'No path to a trust anchor: add the issuing CA with --ca FILE if you trust it.',
  CERT_EXPIRED: 'The certificate was not valid at the time checked; the report says which clock was used.',
  CERT_REVOKED: 'The certificate was revoked: do not trust the message.',
  REVOCATION_UNKNOWN: 'No CRL or OCSP answer for a certificate of the path, and policy requires one: check that the CA\'s CRL/OCSP server is reachable (an internal one needs --allow-internal-fetch), or use --revocation allow-unknown.',
  CERT_USAGE: 'The certificate was not issued for this use of e-mail.',
  TIMESTAMP_INVALID: 'The signature timestamp cannot be used (the report says why): verify with --validity-clock now, or trust the TSA\'s CA with --tsa-ca FILE if that is the cause.',
  IDENTITY_MISMATCH: 'The signer is not the From address: possibly a spoof.',
  PARTIAL_SIGNED: 'Only part of the message is signed: treat the other parts as unsigned.',
  UNAUTH_ENC: 'A signature of the sender counts only if its CA is trusted (--ca FILE or the key store). To open the message anyway, knowing that what it shows may have been altered (EFAIL), use --allow-unauthenticated.',
  DECRYPT_FAILED: 'Check that you used the key of a recipient (for a backup archive: its passphrase); otherwise the message or archive is damaged.',
  NOT_RECIPIENT: 'Use the key of a listed recipient (see `kakitome inspect`).',
  LIMIT: 'A size, depth or count limit was exceeded; the limits protect against hostile input.',
  NO_SPACE: 'The file system is full (or your quota is used up); nothing partial was kept. Free space (df -h shows it) and run the command again.',
  KEY_INVALID: 'Check the key file, that it matches the certificate, and the passphrase (--pass).',
  INVALID_ARGUMENT: 'See `kakitome <command> --help`.',
  UNAUTHENTICATED: 'Send Authorization: Bearer <key> with a key from `kakitome tenant key NAME`.',
  FORBIDDEN: 'Use a key with the right scope, or add the domain or identity to the tenant (`kakitome tenant add`, `kakitome tenant identity`).',
  RATE_LIMITED: 'Wait the seconds in Retry-After, or ask for a higher limit (`kakitome tenant limit`).',
  NOT_FOUND: 'Check the name or id: the list command of what it names shows them (`kakitome tenant list`, `tenant keys`, `dkim list`, `gateway held list`).',
  CONFLICT: 'Wait for the batch to finish (GET /api/v1/batches/{id}), or use a new Idempotency-Key for a new upload.',
};

/** The library's remedies (errors.ts) as the command line offers them. */
const REMEDIES: Record<Remedy, string> = {
  email: 'Name the address with --email ADDRESS.',
  passphrase: 'Give the passphrase with --pass prompt, env:VAR, file:PATH or fd:N.',
  from: 'Give the sender with --from ADDRESS.',
  crlUrl: 'Give --crl-url URL or --ocsp-url URL for the mailbox certificates.',
  rootCrlUrl: 'Give --root-crl-url URL or --ocsp-url URL for the issuing CA.',
  allowInternal: 'Allow the host with --allow-internal-fetch HOST|CIDR if it is yours.',
  trust: 'Import the CA certificate file with kakitome certs import FILE --trust trusted.',
  signingKey: 'Issue one with kakitome ca issue --email ADDRESS, or import one with kakitome keys import (then --sign uses it).',
  recipientKey: 'Import yours (kakitome keys import --p12 FILE), or give --cert FILE --key FILE or --p12 FILE.',
  tenant: 'Add it with kakitome tenant add NAME --domain DOMAIN (kakitome tenant list shows the tenants).',
  tenantDomain: 'Give its domains: kakitome tenant add NAME --domain example.com.',
  tenantIdentity: 'Add it with kakitome tenant identity TENANT --p12 FILE (or --email ADDRESS, issued by the internal CA).',
  dkimKey: 'Add one with kakitome dkim add DOMAIN --selector SEL and publish its DNS record.',
  recipientCertificate: 'Import their certificate with kakitome certs import FILE, or verify a signed message from them (kakitome verify keeps the sender\'s certificate). A new key waiting for a decision: kakitome certs history ADDRESS, then kakitome certs accept FINGERPRINT --email ADDRESS.',
  internalCa: 'Initialise the internal CA with kakitome ca init --name NAME.',
  ocspSigner: 'Issue the OCSP signing certificates with kakitome ca ocsp-signer (run it daily: it renews them before they expire).',
  masterKey: 'Give this command the store\'s master key (KAKITOME_HOME/master.key, KAKITOME_MASTER_KEY_FD or the systemd credential); a new store gets one from kakitome init.',
  apiKeyId: 'The API key ids are the first column of kakitome tenant keys [NAME].',
  heldMessageId: 'The held messages and their ids: kakitome gateway held list.',
  recordedRoot: 'kakitome certs roots lists the recorded CA roots with their fingerprints.',
  dkimSelector: 'kakitome dkim list DOMAIN shows the DKIM keys and their selectors.',
  diskSpace: 'Free space on the file system the message names (df -h shows it), or write to a path on another one (-o PATH).',
  permissions: 'Give the path to this user (chown) and close it to group and others (chmod 700 a directory, chmod 600 a file), or use a path of your own; the message says which.',
};

export function hintForCode(code: ErrorCode): string {
  return HINTS[code];
}

/** Lines for stderr, without a trailing newline: "kakitome sign: CODE: message" then "  hint". */
export function describeError(command: string, e: unknown): string {
  const who = command ? `kakitome ${command}` : 'kakitome';
  if (isKakitomeError(e)) return describeFailure(command, e);
  if (isFileSystemError(e) && (e.syscall === 'listen' || e.syscall === 'bind')) return describeListenError(who, e);
  if (isFileSystemError(e)) return `${who}: ${e.path ?? ''}: ${describeFsError(e)}.\n  Check the path and its permissions.`;
  const detail = process.env['KAKITOME_DEBUG'] ? `\n${(e as Error)?.stack ?? String(e)}` : '';
  return `${who}: internal error: ${(e as Error)?.message ?? String(e)}\n  This is a bug in Kakitome, not a verdict about the message; please report it (set KAKITOME_DEBUG=1 for details).${detail}`;
}

/** The same lines for a failure that crossed a worker boundary as plain data. */
export function describeFailure(command: string, f: { code: ErrorCode | 'INTERNAL'; message: string; remedy?: Remedy | undefined }): string {
  const who = command ? `kakitome ${command}` : 'kakitome';
  if (f.code === 'INTERNAL') return `${who}: internal error: ${f.message}\n  This is a bug in Kakitome, not a verdict about the message; please report it.`;
  const hint = f.remedy ? REMEDIES[f.remedy] : HINTS[f.code].replace('<command>', command || '<command>');
  return `${who}: ${f.code}: ${f.message}\n  ${hint}`;
}

/** A server that could not take its address (a system error from listen, not a file). */
function describeListenError(who: string, e: NodeJS.ErrnoException & { address?: string; port?: number }): string {
  const at = e.address !== undefined ? `${e.address}:${e.port ?? ''}` : 'the address to listen on';
  if (e.code === 'EADDRINUSE') return `${who}: ${at}: address already in use.\n  Another process listens there: stop it, or choose another port.`;
  if (e.code === 'EACCES' || e.code === 'EPERM') return `${who}: ${at}: permission denied.\n  Ports below 1024 need privileges: use a higher port, or grant CAP_NET_BIND_SERVICE.`;
  if (e.code === 'EADDRNOTAVAIL') return `${who}: ${at}: no such local address.\n  Use an address of this machine (127.0.0.1, or an interface's address).`;
  return `${who}: ${at}: ${e.code ?? e.message}.`;
}
