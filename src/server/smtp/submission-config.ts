/**
 * The configuration of the submission port (`kakitome serve --smtp HOST:PORT
 * --relay HOST:PORT`), checked once at start like the HTTP options: a bad address,
 * an unreadable or mismatched certificate and key, or a port without TLS beyond
 * loopback stops the server before anything listens, naming the option.
 *
 * Security default: AUTH carries an API key, so it needs TLS (STARTTLS with
 * --smtp-tls-cert/--smtp-tls-key, or implicit TLS with --smtp-implicit-tls). A
 * port without a certificate listens on a loopback address only (a relay on the
 * same machine, a test), where the key never crosses a network.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { createSecureContext } from 'node:tls';
import { KakitomeError } from '../../errors.ts';
import { parseHostPort, type HostPort } from '../../smtp/parse-host-port.ts';
import { parseListenAddress } from '../config.ts';

export interface SubmissionConfig {
  listen: HostPort;
  relay: HostPort;
  /** TLS: STARTTLS, or from the first byte when implicit. Absent: a loopback-only port without TLS. */
  tls?: { key: Buffer; cert: Buffer; implicit: boolean };
  /** Largest message accepted (SIZE), shared with the HTTP API's --max-message-size. */
  maxMessageBytes: number;
  /** How long the relay may take to accept a message before the client is told 451. */
  relayTimeoutMs: number;
  /** Connections at once. */
  maxClients: number;
  /** Recipients per message. */
  maxRecipients: number;
}

export interface SubmissionOptions {
  smtp?: string;
  relay?: string;
  smtpTlsCert?: string;
  smtpTlsKey?: string;
  smtpImplicitTls?: boolean;
}

export const DEFAULT_RELAY_TIMEOUT_MS = 120_000;

function invalid(message: string): never {
  throw new KakitomeError('INVALID_ARGUMENT', message);
}

/** 127.0.0.0/8, ::1 (also IPv4-mapped), localhost. */
export function isLoopback(host: string | undefined): boolean {
  if (!host) return false;
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1') return true;
  const v4 = h.startsWith('::ffff:') ? h.slice(7) : h;
  return isIP(v4) === 4 && v4.startsWith('127.');
}

function readPem(path: string, option: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    return invalid(`${option} ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : 'cannot be read'}.`);
  }
}

/** The submission port's configuration, or undefined when --smtp was not given. */
export function resolveSubmissionConfig(o: SubmissionOptions, maxMessageBytes: number, env: NodeJS.ProcessEnv = process.env): SubmissionConfig | undefined {
  const smtp = o.smtp ?? (env.KAKITOME_SMTP || undefined);
  const relay = o.relay ?? (env.KAKITOME_SMTP_RELAY || undefined);
  if (!smtp) {
    if (relay || o.smtpTlsCert || o.smtpTlsKey || o.smtpImplicitTls) invalid('--relay and the --smtp-tls-* options go with --smtp HOST:PORT (the submission port).');
    return undefined;
  }
  let listen: HostPort;
  try {
    listen = parseListenAddress(smtp);
  } catch {
    return invalid(`--smtp ${smtp}: give HOST:PORT, e.g. 0.0.0.0:587 (with TLS) or 127.0.0.1:2525; port 0 picks a free port.`);
  }
  if (!relay) invalid('--smtp needs --relay HOST:PORT: the MTA that takes the signed mail on (e.g. 127.0.0.1:25).');
  const next = parseHostPort('--relay', relay);
  if ((o.smtpTlsCert === undefined) !== (o.smtpTlsKey === undefined)) invalid('Give both --smtp-tls-cert FILE and --smtp-tls-key FILE (PEM), or neither.');
  let tls: SubmissionConfig['tls'];
  if (o.smtpTlsCert !== undefined) {
    const cert = readPem(o.smtpTlsCert, '--smtp-tls-cert');
    const key = readPem(o.smtpTlsKey!, '--smtp-tls-key');
    try {
      // Refuses a key that is not the certificate's, and unreadable PEM, now rather than at the first client.
      createSecureContext({ cert, key });
    } catch (e) {
      invalid(`--smtp-tls-cert/--smtp-tls-key: not a usable certificate and key (${(e as Error).message}).`);
    }
    tls = { cert, key, implicit: o.smtpImplicitTls === true };
  } else if (o.smtpImplicitTls) {
    invalid('--smtp-implicit-tls needs --smtp-tls-cert FILE and --smtp-tls-key FILE.');
  } else if (!isLoopback(listen.host)) {
    invalid(`--smtp ${smtp} without --smtp-tls-cert/--smtp-tls-key: API keys would cross the network in clear. Give a certificate (STARTTLS, or --smtp-implicit-tls), or listen on 127.0.0.1 or [::1].`);
  }
  return { listen, relay: next, ...(tls ? { tls } : {}), maxMessageBytes, relayTimeoutMs: DEFAULT_RELAY_TIMEOUT_MS, maxClients: 200, maxRecipients: 1000 };
}
