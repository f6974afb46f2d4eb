/**
 * The trust options verify and decrypt share (--ca, --certfile, --revocation,
 * --validity-clock, --tsa-ca, --fetch-ca-issuers, --allow-internal-fetch,
 * --allow-legacy), as plain data for the job: files named, not yet read, so they
 * cross into batch workers. The job reads them (cli/load-trust-options.ts) into the
 * library's TrustOptions (src/operations/trust-options.ts).
 */
import { Option, type Command } from 'commander';
import { collect } from './message-options.ts';
import type { TrustOptions } from '../../operations/trust-options.ts';

/** The trust options as the command line gives them to a job: the library's, with files for the certificates. */
export interface TrustJobOptions extends Omit<TrustOptions, 'anchors' | 'tsaAnchors'> {
  /** Trust anchor files and directories (--ca). */
  ca: string[];
  /** Untrusted extra certificates (openssl's -certfile): a signer certificate the message leaves out, intermediates. Never anchors. */
  certfile: string[];
  /** Trust anchors for TSA certificates (--tsa-ca); empty: the --ca anchors (and the store's). */
  tsaCa?: string[];
}

/** The options every command that verifies signers shares (verify, decrypt). */
export interface VerifyingCliOptions {
  ca?: string[];
  certfile?: string[];
  harvest: boolean;
  home?: string;
  databaseUrl?: string;
  revocation: string;
  validityClock: string;
  tsaCa?: string[];
  fetchCaIssuers?: string[];
  allowInternalFetch?: string[];
  allowLegacy?: boolean;
  json?: boolean;
}

/**
 * The trust options (see the header), shared by verify and decrypt. Encrypt checks
 * the certificates of address recipients with them (`forEncryption`): without
 * --validity-clock (a recipient is checked now) and --allow-legacy (old mail is
 * read on legacy algorithms, never encrypted to them).
 */
export function addTrustOptions(cmd: Command, caHelp: string, which: { forEncryption?: boolean } = {}): Command {
  cmd
    .option('--ca <file>', caHelp, collect)
    .option('--certfile <file>', 'untrusted extra certificates, PEM or DER (repeatable), as openssl\'s -certfile: the signer certificate a message leaves out (gpgsm does) and intermediates; never trust anchors', collect)
    .addOption(new Option('--revocation <mode>', 'revocation checking (CRL/OCSP over http) of every certificate below the anchor: require refuses a signer when any has no answer (REVOCATION_UNKNOWN), allow-unknown says "revocation unknown", off skips it (hard-fail and soft-fail: former names of require and allow-unknown)').choices(['require', 'allow-unknown', 'off', 'hard-fail', 'soft-fail']).default('allow-unknown'));
  if (!which.forEncryption) {
    cmd.addOption(new Option('--validity-clock <clock>', 'check certificate validity now; at the time of the signature\'s verified RFC 3161 timestamp (timestamp: a timestamp that fails verification fails the signer, none means now); or at the signing time (signing-time: a verified timestamp, else the signer\'s own signingTime, for old mail)').choices(['now', 'signing-time', 'timestamp']).default('now'));
    cmd.option('--tsa-ca <file>', 'trust anchors for the certificates of time-stamping authorities (repeatable); default: the --ca anchors', collect);
  }
  cmd
    .option('--fetch-ca-issuers <host>', 'fetch missing intermediate CA certificates from AIA caIssuers URLs on this host (repeatable; ".example.com" for a domain); none by default', collect)
    .option('--allow-internal-fetch <host|cidr>', 'let CRL/OCSP/caIssuers requests reach this internal host, address or CIDR block (loopback, private, link-local are refused by default; repeatable)', collect);
  if (!which.forEncryption) cmd.option('--allow-legacy', 'accept SHA-1 and RSA keys under 2048 bits in the signature and its certificate path (refused by default, WEAK_ALG), and signatures without signed attributes (refused by default, ATTR_INVALID), to read old mail; the report says the trust rests on them');
  return cmd;
}

/** The plain-data trust options from parsed CLI options. */
export function trustOptionsOf(opts: { ca?: string[]; certfile?: string[]; revocation: string; validityClock?: string; tsaCa?: string[]; fetchCaIssuers?: string[]; allowInternalFetch?: string[]; allowLegacy?: boolean }): TrustJobOptions {
  return {
    ca: opts.ca ?? [],
    certfile: opts.certfile ?? [],
    revocation: opts.revocation as TrustJobOptions['revocation'],
    validityClock: opts.validityClock === 'signing-time' ? 'signingTime' : opts.validityClock === 'timestamp' ? 'timestamp' : 'now',
    tsaCa: opts.tsaCa ?? [],
    fetchCaIssuers: opts.fetchCaIssuers ?? [],
    allowInternalFetch: opts.allowInternalFetch ?? [],
    allowLegacy: opts.allowLegacy === true,
  };
}
