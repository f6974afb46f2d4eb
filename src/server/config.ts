/**
 * The configuration of `kakitome serve`, checked once at start: a bad value stops
 * the server before it listens, with a message naming the option and what it
 * accepts. Options come from the command line, with environment variables as
 * defaults (KAKITOME_HTTP, KAKITOME_MAX_MESSAGE_SIZE), and the store is found as
 * every command finds it (KAKITOME_HOME, KAKITOME_DATABASE_URL).
 */
import { KakitomeError } from '../errors.ts';
import type { RevocationMode } from '../pki/check-revocation.ts';
import { availableParallelism } from 'node:os';
import { readFileSync } from 'node:fs';
import { parsePublicUrl } from './console/console-origin.ts';
import { parseHostPort, type HostPort } from '../smtp/parse-host-port.ts';
import { isMailboxAddress } from '../x509/mailbox-address.ts';
import { checkIssuerUrl, type ConsoleOidcConfig } from './console/oidc-sign-in.ts';

/** Serving threads at most (each holds a store connection, a cache and a copy of the modules). */
const MAX_WORKERS = 64;

export interface ServeConfig {
  host: string;
  /** 0: any free port (the log line "listening" names it). */
  port: number;
  /** Largest message body accepted, in bytes (default 50 MiB); above it: 413. */
  maxMessageBytes: number;
  /** How long in-flight requests may take to finish after SIGTERM before connections are cut. */
  shutdownGraceMs: number;
  /** Revocation checking for /verify and /decrypt (as verify --revocation; default allow-unknown). */
  revocation: RevocationMode;
  /** The console's public address (https://... of a TLS proxy in front); default: the listen address. */
  publicUrl?: string;
  /** Largest mail the console's check page reads (default 10 MiB). */
  checkMaxBytes?: number;
  /** How long a step-up re-authentication holds in the console (default 5 minutes; console/step-up.ts). */
  stepUpWindowMs?: number;
  /** A directory the console's "can I send encrypted mail to ...?" asks when the store has no certificate. */
  ldap?: { url: string; baseDn: string };
  /** Batches (POST /api/v1/batches) and their job queue; DEFAULT_BATCH_CONFIG when absent. */
  batch?: BatchConfig;
  /** Mail the console sends (sign-in links, invitations, expiry notices): the relay that takes it and the From address. */
  mail?: ConsoleMailConfig;
  /** Single sign-on by OpenID Connect (the secret read from its pass spec by `kakitome serve`). */
  oidc?: ConsoleOidcConfig;
  /**
   * Serving threads (server/workers; default one per CPU): each serves whole
   * requests on the shared port. 0: everything on the main thread. Read by
   * `kakitome serve`; startServer itself always serves on the calling thread.
   */
  workers?: number;
  /**
   * HTTP connections open at once on this node, all serving threads together (each
   * takes its share); more are closed as they arrive. Default: from the open-files
   * limit (defaultMaxConnections). startServer without it: DEFAULT_MAX_CONNECTIONS.
   */
  maxConnections?: number;
}

export interface ConsoleMailConfig {
  /** The SMTP relay (an MTA that accepts mail from this host for any recipient, e.g. the local Postfix). */
  relay: HostPort;
  /** The envelope sender and From: address. */
  from: string;
}

export interface BatchConfig {
  /** Messages per chunk, the queue's unit of work (a node claims, signs and stores a chunk whole). */
  chunkMessages: number;
  /** Upload bytes per chunk: a chunk is cut at whichever comes first (a larger message is a chunk alone). */
  chunkBytes: number;
  /** Chunks this node signs at once. */
  workers: number;
  /** A claimed chunk's (and an upload's) lease: a node that stops renewing it loses the chunk to another after this long. */
  leaseMs: number;
  /** How long a finished batch and its result are kept. */
  retentionMs: number;
  /** Largest upload (request body) accepted. */
  maxBatchBytes: number;
  /** Most messages in one batch. */
  maxBatchMessages: number;
  /** Batches a tenant may have unfinished (being received or signed) at once; beyond: 429. */
  maxUnfinishedBatches: number;
  /**
   * How often an idle node looks for work in the shared queue (each wait drawn from half
   * to one and a half times it, so nodes do not poll in step). An upload wakes the node that
   * received it at once; the other nodes find its chunks at their next look.
   */
  pollMs: number;
  /**
   * Times one chunk may be given back for the service's passing trouble (its attempt
   * refunded) on this node before its messages are failed (batch-worker.ts):
   * MAX_INTERRUPTIONS when absent.
   */
  maxInterruptions?: number;
}

export const DEFAULT_BATCH_CONFIG: Readonly<BatchConfig> = Object.freeze({
  chunkMessages: 500,
  chunkBytes: 8 * 1024 * 1024,
  workers: 1,
  leaseMs: 30_000,
  retentionMs: 24 * 3600_000,
  maxBatchBytes: 4 * 1024 ** 3,
  maxBatchMessages: 1_000_000,
  maxUnfinishedBatches: 10,
  pollMs: 1000,
});

export function batchConfigOf(config: ServeConfig): BatchConfig {
  return config.batch ?? DEFAULT_BATCH_CONFIG;
}

export interface ServeOptions {
  http?: string;
  publicUrl?: string;
  checkMaxSize?: string;
  stepUpMinutes?: string;
  maxMessageSize?: string;
  shutdownGrace?: string;
  revocation?: string;
  ldapUrl?: string;
  ldapBase?: string;
  mailRelay?: string;
  mailFrom?: string;
  oidcIssuer?: string;
  oidcClientId?: string;
  oidcClientSecret?: string;
  batchChunk?: string;
  batchWorkers?: string;
  batchLease?: string;
  batchRetention?: string;
  batchPoll?: string;
  maxBatchSize?: string;
  maxBatchMessages?: string;
  workers?: string;
  maxConnections?: string;
}

export const DEFAULT_MAX_MESSAGE_BYTES = 50 * 1024 * 1024;
/** Where `kakitome serve` listens when told nothing: this machine only. */
export const DEFAULT_LISTEN = '127.0.0.1:8080';
const REVOCATION_MODES: readonly RevocationMode[] = ['require', 'allow-unknown', 'off', 'hard-fail', 'soft-fail'];

function invalid(message: string): never {
  throw new KakitomeError('INVALID_ARGUMENT', message);
}

/** HOST:PORT, [IPv6]:PORT. */
export function parseListenAddress(text: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(text.trim());
  if (!m) invalid(`--http ${text}: give HOST:PORT, e.g. 127.0.0.1:8080 or [::1]:8080 (0.0.0.0:8080 listens on every interface).`);
  const port = Number(m[3]);
  if (port > 65535) invalid(`--http ${text}: the port must be 0 to 65535.`);
  return { host: m[1] ?? m[2]!, port };
}

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kib: 1024, kb: 1000, m: 1024 ** 2, mib: 1024 ** 2, mb: 1000 ** 2, g: 1024 ** 3, gib: 1024 ** 3, gb: 1000 ** 3 };

/** 52428800, 50MiB, 50M (binary), 50MB (decimal). */
export function parseSize(text: string, option: string, max = 4 * 1024 ** 3): number {
  const m = /^(\d{1,13})\s*([a-zA-Z]*)$/.exec(text.trim());
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) invalid(`${option} ${text}: give a size in bytes, or with a unit: 50MiB, 512KiB, 1GiB.`);
  const bytes = Number(m[1]) * unit;
  if (bytes < 1024 || bytes > max) invalid(`${option} ${text}: the size must be from 1 KiB to ${max / 1024 ** 3} GiB.`);
  return bytes;
}

/** A whole number in [min, max] for `option`; `fallback` when not given. */
function parseCount(text: string | undefined, option: string, min: number, max: number, fallback: number): number {
  if (text === undefined) return fallback;
  if (!/^\d{1,10}$/.test(text.trim()) || Number(text) < min || Number(text) > max) invalid(`${option} ${text}: give a whole number from ${min} to ${max}.`);
  return Number(text);
}

function resolveBatchConfig(o: ServeOptions): BatchConfig {
  const d = DEFAULT_BATCH_CONFIG;
  return {
    ...d,
    chunkMessages: parseCount(o.batchChunk, '--batch-chunk', 1, 10_000, d.chunkMessages),
    workers: parseCount(o.batchWorkers, '--batch-workers', 1, 64, d.workers),
    leaseMs: parseCount(o.batchLease, '--batch-lease', 2, 3600, d.leaseMs / 1000) * 1000,
    retentionMs: parseCount(o.batchRetention, '--batch-retention', 1, 8760, d.retentionMs / 3600_000) * 3600_000,
    pollMs: parseCount(o.batchPoll, '--batch-poll', 50, 60_000, d.pollMs),
    maxBatchBytes: o.maxBatchSize === undefined ? d.maxBatchBytes : parseSize(o.maxBatchSize, '--max-batch-size', 1024 ** 4),
    maxBatchMessages: parseCount(o.maxBatchMessages, '--max-batch-messages', 1, 100_000_000, d.maxBatchMessages),
  };
}

export function resolveServeConfig(o: ServeOptions, env: NodeJS.ProcessEnv = process.env): ServeConfig {
  const http = o.http ?? (env.KAKITOME_HTTP || DEFAULT_LISTEN);
  const { host, port } = parseListenAddress(http);
  const publicUrl = o.publicUrl ?? (env.KAKITOME_PUBLIC_URL || undefined);
  if (publicUrl !== undefined) parsePublicUrl(publicUrl);
  const checkSize = o.checkMaxSize ?? env.KAKITOME_CHECK_MAX_SIZE;
  const stepUp = o.stepUpMinutes ?? (env.KAKITOME_STEP_UP_MINUTES || undefined);
  const size = o.maxMessageSize ?? env.KAKITOME_MAX_MESSAGE_SIZE;
  const maxMessageBytes = size === undefined || size === '' ? DEFAULT_MAX_MESSAGE_BYTES : parseSize(size, '--max-message-size');
  const grace = o.shutdownGrace ?? '30';
  if (!/^\d{1,4}$/.test(grace)) invalid(`--shutdown-grace ${grace}: give whole seconds, e.g. 30.`);
  const revocation = (o.revocation ?? 'allow-unknown') as RevocationMode;
  if (!REVOCATION_MODES.includes(revocation)) invalid(`--revocation ${o.revocation}: one of ${REVOCATION_MODES.join(', ')}.`);
  const ldapUrl = o.ldapUrl ?? (env.KAKITOME_LDAP_URL || undefined);
  const ldapBase = o.ldapBase ?? (env.KAKITOME_LDAP_BASE || undefined);
  if (ldapUrl !== undefined && !/^ldaps?:\/\/[^\s/]+\/?$/i.test(ldapUrl)) invalid(`--ldap-url ${ldapUrl}: give ldap://host:port or ldaps://host:port.`);
  if ((ldapUrl === undefined) !== (ldapBase === undefined)) invalid('--ldap-url and --ldap-base go together (or $KAKITOME_LDAP_URL and $KAKITOME_LDAP_BASE).');
  const mail = resolveMailConfig(o.mailRelay ?? (env.KAKITOME_MAIL_RELAY || undefined), o.mailFrom ?? (env.KAKITOME_MAIL_FROM || undefined));
  return {
    host, port, maxMessageBytes, shutdownGraceMs: Number(grace) * 1000, revocation,
    ...(mail ? { mail } : {}),
    ...(ldapUrl !== undefined && ldapBase !== undefined ? { ldap: { url: ldapUrl, baseDn: ldapBase } } : {}),
    ...(publicUrl !== undefined ? { publicUrl } : {}),
    ...(checkSize ? { checkMaxBytes: parseSize(checkSize, '--check-max-size') } : {}),
    ...(stepUp !== undefined ? { stepUpWindowMs: parseCount(stepUp, '--step-up-minutes', 1, 60, 5) * 60_000 } : {}),
    batch: resolveBatchConfig(o),
    workers: parseWorkers(o.workers),
    maxConnections: parseMaxConnections(o.maxConnections ?? (env.KAKITOME_MAX_CONNECTIONS || undefined), openFilesLimit()),
  };
}

/** Connections when the open-files limit is unknown (not Linux), and startServer's without a config value. */
export const DEFAULT_MAX_CONNECTIONS = 1000;
/** Descriptors kept for everything but HTTP connections: the store, the SMTP port's 200 clients a thread, logs, modules, fetches. */
const RESERVED_FILES = 512;

/** This process's soft limit on open files (RLIMIT_NOFILE), where /proc tells it. */
export function openFilesLimit(): number | undefined {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return m === null ? undefined : m[1] === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(m[1]);
  } catch {
    return undefined;
  }
}

/** Three quarters of what the open-files limit leaves after RESERVED_FILES, 64 to 10,000. */
export function defaultMaxConnections(fileLimit: number | undefined): number {
  if (fileLimit === undefined) return DEFAULT_MAX_CONNECTIONS;
  return Math.max(64, Math.min(10_000, Math.floor((fileLimit - RESERVED_FILES) * 0.75)));
}

/** --max-connections: 1 up to what the open-files limit leaves for connections. */
export function parseMaxConnections(text: string | undefined, fileLimit: number | undefined): number {
  if (text === undefined) return defaultMaxConnections(fileLimit);
  const most = fileLimit === undefined ? 1_000_000 : Math.max(1, fileLimit - RESERVED_FILES);
  if (!/^\d{1,7}$/.test(text.trim()) || Number(text) < 1) invalid(`--max-connections ${text}: give the number of HTTP connections open at once, 1 or more (default ${defaultMaxConnections(fileLimit)} here).`);
  if (Number(text) > most) invalid(`--max-connections ${text}: this process may open ${fileLimit} files (ulimit -n), ${RESERVED_FILES} of them kept for the store, the SMTP port and logs; give at most ${most}, or raise the limit (ulimit -n, systemd LimitNOFILE=).`);
  return Number(text);
}

/**
 * --oidc-issuer, --oidc-client-id and --oidc-client-secret (a pass SPEC: env:VAR,
 * file:PATH, fd:N): all or none, checked before anything starts. The secret is
 * read by the caller (resolveSecret: a pass spec), never from the command line.
 */
export async function resolveOidcConfig(o: ServeOptions, resolveSecret: (spec: string) => Promise<string>, env: NodeJS.ProcessEnv = process.env): Promise<ConsoleOidcConfig | undefined> {
  const issuer = o.oidcIssuer ?? (env.KAKITOME_OIDC_ISSUER || undefined);
  const clientId = o.oidcClientId ?? (env.KAKITOME_OIDC_CLIENT_ID || undefined);
  const spec = o.oidcClientSecret ?? (env.KAKITOME_OIDC_CLIENT_SECRET || undefined);
  if (issuer === undefined && clientId === undefined && spec === undefined) return undefined;
  if (issuer === undefined || clientId === undefined || spec === undefined) invalid('--oidc-issuer, --oidc-client-id and --oidc-client-secret go together (or $KAKITOME_OIDC_ISSUER, $KAKITOME_OIDC_CLIENT_ID and $KAKITOME_OIDC_CLIENT_SECRET).');
  checkIssuerUrl(issuer);
  if (!/^[\x21-\x7e]{1,255}$/.test(clientId)) invalid('--oidc-client-id: give the client id the provider gave (printable characters, no spaces).');
  if (spec.startsWith('pass:')) invalid('--oidc-client-secret takes env:VAR, file:PATH or fd:N, not pass: (a secret on the command line is visible to every user of this machine).');
  const clientSecret = await resolveSecret(spec);
  if (!clientSecret) invalid('--oidc-client-secret: the secret is empty.');
  return { issuer, clientId, clientSecret };
}

/** --mail-relay HOST:PORT and --mail-from ADDRESS: both or neither. */
function resolveMailConfig(relay: string | undefined, from: string | undefined): ConsoleMailConfig | undefined {
  if ((relay === undefined) !== (from === undefined)) invalid('--mail-relay and --mail-from go together (or $KAKITOME_MAIL_RELAY and $KAKITOME_MAIL_FROM): the relay that takes the console\'s mail and the address it comes from.');
  if (relay === undefined || from === undefined) return undefined;
  if (!isMailboxAddress(from)) invalid(`--mail-from ${from}: give a mail address, e.g. kakitome@example.co.jp.`);
  return { relay: parseHostPort('--mail-relay', relay), from };
}

/** --workers: 0 (the main thread serves) to MAX_WORKERS serving threads; default one per CPU. */
function parseWorkers(text: string | undefined): number {
  if (text === undefined) return Math.min(availableParallelism(), MAX_WORKERS);
  if (!/^\d{1,3}$/.test(text) || Number(text) > MAX_WORKERS) invalid(`--workers ${text}: give the number of serving threads, 0 (the main thread serves) to ${MAX_WORKERS}; default one per CPU (${availableParallelism()} here).`);
  return Number(text);
}
