/**
 * HOST:PORT as the gateway's options take it (--listen, --next-hop, --metrics):
 * an IPv4 address or host name, or an IPv6 address in brackets ("[::1]:10025"),
 * and a port 1-65535. Anything else is refused with what was wrong, at start.
 */
import { KakitomeError } from '../errors.ts';

export interface HostPort {
  host: string;
  port: number;
}

const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

export function parseHostPort(option: string, text: string): HostPort {
  const bracketed = /^\[([0-9A-Fa-f:.]+)\]:(\d+)$/.exec(text);
  const plain = /^([^:[\]\s]+):(\d+)$/.exec(text);
  const m = bracketed ?? plain;
  if (!m) throw new KakitomeError('INVALID_ARGUMENT', `${option} ${JSON.stringify(text)}: give HOST:PORT, e.g. 127.0.0.1:10025 (an IPv6 address in brackets: [::1]:10025).`);
  const host = m[1]!;
  const port = Number(m[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new KakitomeError('INVALID_ARGUMENT', `${option} ${text}: the port must be 1-65535.`);
  if (!bracketed && !HOST_NAME.test(host)) throw new KakitomeError('INVALID_ARGUMENT', `${option} ${text}: ${JSON.stringify(host)} is not a host name or IPv4 address.`);
  return { host, port };
}

export function formatHostPort(hp: HostPort): string {
  return hp.host.includes(':') ? `[${hp.host}]:${hp.port}` : `${hp.host}:${hp.port}`;
}
