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
import { checkClientDeadlines, type ClientDeadlines } from '../../smtp/client-deadlines.ts';
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
  /** How slow a client may be before it is told 421 4.4.2 and dropped (client-deadlines.ts). */
  deadlines: ClientDeadlines;
}

export interface SubmissionOptions {
  smtp?: string;
  relay?: string;
  smtpTlsCert?: string;
  smtpTlsKey?: string;
  smtpImplicitTls?: boolean;
  /** Seconds for a command line (an AUTH exchange). */
  smtpCommandTimeout?: string;
  /** Least average DATA rate, bytes/s, after the grace (the command timeout). */
  smtpMinDataRate?: string;
  /** Seconds a connection may last. */
  smtpSessionTimeout?: string;
}

export const DEFAULT_RELAY_TIMEOUT_MS = 120_000;

/**
 * A submission client is a mail program, not a person: a command line is at most a
 * few KiB and arrives in one packet, so a minute is generous (RFC 5321 4.5.3.2 allows
 * a server 5 minutes; a submission service may be stricter). 500 bytes/s after that
 * minute is Postfix's smtpd_min_data_rate, under any real link (GPRS carries some
 * 5 KB/s): a 25 MiB message may take 14 hours. A session ends after 30 minutes at the
 * next pause between messages; the client reconnects for the rest.
 */
export const SUBMISSION_DEADLINES: Readonly<ClientDeadlines> = Object.freeze({ commandMs: 60_000, dataGraceMs: 60_000, minDataRate: 500, sessionMs: 30 * 60_000 });

const DEADLINE_OPTIONS: Record<keyof ClientDeadlines, [option: string, unit: 's' | 'bytes/s']> = { commandMs: ['--smtp-command-timeout', 's'], dataGraceMs: ['--smtp-command-timeout', 's'], minDataRate: ['--smtp-min-data-rate', 'bytes/s'], sessionMs: ['--smtp-session-timeout', 's'] };

function number(value: string | undefined, option: string): number | undefined {
  if (value === undefined || value === '') return undefined;
  if (!/^\d+(\.\d+)?$/.test(value.trim())) invalid(`${option} ${value}: give a number.`);
  return Number(value);
}

/** The deadlines from the options (or $KAKITOME_SMTP_*), checked against DEADLINE_BOUNDS. */
export function resolveSubmissionDeadlines(o: SubmissionOptions, env: NodeJS.ProcessEnv = process.env): ClientDeadlines {
  const command = number(o.smtpCommandTimeout ?? env.KAKITOME_SMTP_COMMAND_TIMEOUT, '--smtp-command-timeout');
  const rate = number(o.smtpMinDataRate ?? env.KAKITOME_SMTP_MIN_DATA_RATE, '--smtp-min-data-rate');
  const session = number(o.smtpSessionTimeout ?? env.KAKITOME_SMTP_SESSION_TIMEOUT, '--smtp-session-timeout');
  const commandMs = command === undefined ? SUBMISSION_DEADLINES.commandMs : Math.round(command * 1000);
  return checkClientDeadlines({
    commandMs,
    // The grace before the rate counts is one command's time: the 354 and the first packets.
    dataGraceMs: commandMs,
    minDataRate: rate === undefined ? SUBMISSION_DEADLINES.minDataRate : Math.round(rate),
    sessionMs: session === undefined ? SUBMISSION_DEADLINES.sessionMs : Math.round(session * 1000),
  }, (name, min, max) => {
    const [option, unit] = DEADLINE_OPTIONS[name];
    const scale = unit === 's' ? 1000 : 1;
    return `${option}: give ${unit === 's' ? 'seconds' : 'bytes a second'} from ${min / scale} to ${max / scale}.`;
  });
}

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
  return { listen, relay: next, ...(tls ? { tls } : {}), maxMessageBytes, relayTimeoutMs: DEFAULT_RELAY_TIMEOUT_MS, maxClients: 200, maxRecipients: 1000, deadlines: resolveSubmissionDeadlines(o, env) };
}
