/**
 * `kakitome gateway`'s options, checked before anything starts: every address,
 * domain and name is validated here and refused with what is wrong and what to
 * give instead, so a typo never becomes a gateway that relays to the wrong place.
 */
import { isIP } from 'node:net';
import { availableParallelism, hostname } from 'node:os';
import { resolve } from 'node:path';
import { KakitomeError } from '../errors.ts';
import { normalizeDomain } from './mail-domain.ts';
import { parseHostPort } from '../smtp/parse-host-port.ts';
import type { GatewayConfig } from './start-gateway.ts';

export interface GatewayCliOptions {
  listen?: string;
  nextHop?: string;
  domain?: string[];
  authservId?: string;
  policy?: string;
  metrics?: string;
  lmtp?: boolean;
  dnsServer?: string[];
  workers?: string;
  spoolDir?: string;
}

/** Crypto worker threads at most (each holds a store connection and a copy of the caches). */
const MAX_WORKERS = 64;

/**
 * The default: one per CPU but one, which the main thread keeps busy (SMTP, DNS, the
 * relay, and the streaming of large messages); 0 (the main thread alone) on one CPU.
 * Each worker costs ~45 MiB of memory (its own isolate, modules, store and caches).
 */
export function defaultWorkers(): number {
  return Math.min(availableParallelism() - 1, MAX_WORKERS);
}

/** --workers: an integer from 0 (crypto on the main thread) to MAX_WORKERS. */
function checkWorkers(text: string | undefined): number {
  if (text === undefined) return defaultWorkers();
  if (!/^\d{1,3}$/.test(text) || Number(text) > MAX_WORKERS) throw new KakitomeError('INVALID_ARGUMENT', `--workers ${JSON.stringify(text)}: give the number of crypto worker threads, 0 (on the main thread) to ${MAX_WORKERS}; default one per CPU but one (${defaultWorkers()} here).`);
  return Number(text);
}

/** A DNS server as node:dns takes it: an IP address, "IPv4:PORT" or "[IPv6]:PORT". */
function checkDnsServer(text: string): string {
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(text) ?? /^([^:]+):(\d{1,5})$/.exec(text);
  const host = m ? m[1]! : text;
  const port = m ? Number(m[2]) : 53;
  if (!isIP(host) || port < 1 || port > 65535) throw new KakitomeError('INVALID_ARGUMENT', `--dns-server ${JSON.stringify(text)}: give an IP address, optionally with a port (127.0.0.1, 127.0.0.1:5353, [::1]:53).`);
  return text;
}

/** --spool-dir: a directory path (created 0700 at start when missing). */
function checkSpoolDir(text: string): string {
  if (!text.trim() || /[\x00-\x1f]/.test(text)) throw new KakitomeError('INVALID_ARGUMENT', `--spool-dir ${JSON.stringify(text)}: give a directory for large messages in transit, e.g. /var/lib/kakitome/spool.`);
  return resolve(text);
}

/** RFC 8601 authserv-id as we write it unquoted: a host-name-like token. */
const AUTHSERV_ID = /^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/;

export function parseGatewayConfig(o: GatewayCliOptions, defaultAuthservId: string = hostname()): GatewayConfig {
  if (!o.listen) throw new KakitomeError('INVALID_ARGUMENT', 'gateway needs --listen HOST:PORT: where Postfix\'s content filter connects (e.g. 127.0.0.1:10025).');
  if (!o.nextHop) throw new KakitomeError('INVALID_ARGUMENT', 'gateway needs --next-hop HOST:PORT: Postfix\'s reinjection listener (e.g. 127.0.0.1:10026).');
  if (!o.domain || o.domain.length === 0) throw new KakitomeError('INVALID_ARGUMENT', 'gateway needs at least one --domain DOMAIN: the mail domains of this organisation (mail to them is inbound, mail from them to others outbound).');
  const listen = parseHostPort('--listen', o.listen);
  const nextHop = parseHostPort('--next-hop', o.nextHop);
  if (listen.port === nextHop.port && listen.host === nextHop.host) throw new KakitomeError('INVALID_ARGUMENT', `--listen and --next-hop are both ${o.listen}: the gateway would relay to itself (a mail loop).`);
  const authservId = o.authservId ?? defaultAuthservId;
  if (!AUTHSERV_ID.test(authservId)) throw new KakitomeError('INVALID_ARGUMENT', `--authserv-id ${JSON.stringify(authservId)}: give this gateway's name as in Authentication-Results, a host name such as mail.example.com.`);
  return {
    listen,
    nextHop,
    domains: new Set(o.domain.map(normalizeDomain)),
    authservId,
    ...(o.policy !== undefined ? { policyPath: o.policy } : {}),
    ...(o.metrics !== undefined ? { metrics: parseHostPort('--metrics', o.metrics) } : {}),
    lmtp: o.lmtp === true,
    ...(o.dnsServer?.length ? { dnsServers: o.dnsServer.map(checkDnsServer) } : {}),
    workers: checkWorkers(o.workers),
    ...(o.spoolDir !== undefined ? { spoolDir: checkSpoolDir(o.spoolDir) } : {}),
  };
}
