/**
 * An administrator's list of hosts for the fetcher and the caIssuers chase: host
 * names ("ca.example.com"; ".example.com" for a domain and every name under it),
 * IP addresses ("127.0.0.1", "::1") and CIDR blocks ("10.20.0.0/16", "fd00::/8").
 * Names are compared case-insensitively and without a trailing dot; addresses
 * match IPv4-mapped IPv6 forms too (node:net BlockList). A malformed entry is
 * refused when the list is made, not silently ignored.
 */
import { BlockList, isIP } from 'node:net';
import { KakitomeError } from '../errors.ts';

export interface HostList {
  /** Whether the host name of a URL (brackets around IPv6 literals allowed) is listed by name or address. */
  hasName(hostname: string): boolean;
  /** Whether an IP address is listed (as an address or inside a CIDR block). */
  hasAddress(address: string): boolean;
  readonly empty: boolean;
}

const HOSTNAME = /^\.?(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\.)*[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;

/** Lower case, without IPv6 brackets or a trailing dot. */
export function normalizeHostname(hostname: string): string {
  return hostname.replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '').toLowerCase();
}

export function createHostList(entries: readonly string[], what: string): HostList {
  const names = new Set<string>();
  const suffixes: string[] = [];
  const blocks = new BlockList();
  for (const raw of entries) {
    const entry = normalizeHostname(raw.trim());
    const slash = entry.indexOf('/');
    const addr = slash >= 0 ? entry.slice(0, slash) : entry;
    const family = isIP(addr);
    if (family) {
      const type = family === 4 ? 'ipv4' : 'ipv6';
      const bits = slash >= 0 ? Number(entry.slice(slash + 1)) : family === 4 ? 32 : 128;
      if (!Number.isInteger(bits) || bits < 0 || bits > (family === 4 ? 32 : 128) || (slash >= 0 && !/^\d{1,3}$/.test(entry.slice(slash + 1)))) {
        throw new KakitomeError('INVALID_ARGUMENT', `${what}: "${raw}" is not a valid CIDR block.`);
      }
      blocks.addSubnet(addr, bits, type);
    } else if (slash < 0 && HOSTNAME.test(entry)) {
      if (entry.startsWith('.')) suffixes.push(entry);
      else names.add(entry);
    } else {
      throw new KakitomeError('INVALID_ARGUMENT', `${what}: "${raw}" is neither a host name, an IP address nor a CIDR block.`);
    }
  }
  const hasAddress = (address: string): boolean => {
    const family = isIP(address);
    return family !== 0 && blocks.check(address, family === 4 ? 'ipv4' : 'ipv6');
  };
  return {
    empty: entries.length === 0,
    hasAddress,
    hasName(hostname: string): boolean {
      const h = normalizeHostname(hostname);
      if (isIP(h)) return hasAddress(h);
      return names.has(h) || suffixes.some((s) => h.endsWith(s) || h === s.slice(1));
    },
  };
}
