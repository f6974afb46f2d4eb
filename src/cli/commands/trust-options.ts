/**
 * The trust options verify and decrypt share (--ca, --certfile, --revocation,
 * --validity-clock, --fetch-ca-issuers, --allow-internal-fetch, --allow-legacy), as
 * plain data for the job (see create-cli-validator.ts).
 */
import { Option, type Command } from 'commander';
import { collect } from './message-options.ts';
import type { RevocationMode } from '../../pki/check-revocation.ts';

export interface TrustOptions {
  ca: string[];
  /** Untrusted extra certificates (openssl's -certfile): a signer certificate the message leaves out, intermediates. Never anchors. */
  certfile: string[];
  /**
   * Default allow-unknown: a certificate without a CRL/OCSP answer is reported as
   * "revocation unknown" (in the summary line too), not fatal; require makes it
   * REVOCATION_UNKNOWN. hard-fail and soft-fail are the former names.
   */
  revocation: RevocationMode;
  /**
   * Default 'now'; 'signingTime' accepts a signature made while the certificate was
   * valid (a verified timestamp's time, else the signer's signingTime); 'timestamp'
   * only a verified RFC 3161 signature timestamp's time (else now; a bad token fails).
   */
  validityClock: 'now' | 'signingTime' | 'timestamp';
  /** Trust anchors for TSA certificates (--tsa-ca); empty: the --ca anchors (and the store's). */
  tsaCa?: string[];
  /** Hosts whose AIA caIssuers URLs may be chased (none by default: no chasing). */
  fetchCaIssuers: string[];
  /** Hosts, addresses and CIDR blocks that may be fetched although internal (none by default). */
  allowInternalFetch: string[];
  /** Accept SHA-1 and RSA keys under 2048 bits in received signatures and paths (old mail); default false. */
  allowLegacy: boolean;
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
export function trustOptionsOf(opts: { ca?: string[]; certfile?: string[]; revocation: string; validityClock?: string; tsaCa?: string[]; fetchCaIssuers?: string[]; allowInternalFetch?: string[]; allowLegacy?: boolean }): TrustOptions {
  return {
    ca: opts.ca ?? [],
    certfile: opts.certfile ?? [],
    revocation: opts.revocation as TrustOptions['revocation'],
    validityClock: opts.validityClock === 'signing-time' ? 'signingTime' : opts.validityClock === 'timestamp' ? 'timestamp' : 'now',
    tsaCa: opts.tsaCa ?? [],
    fetchCaIssuers: opts.fetchCaIssuers ?? [],
    allowInternalFetch: opts.allowInternalFetch ?? [],
    allowLegacy: opts.allowLegacy === true,
  };
}
