/**
 * The DNS work one message may cause, bounded. A message chooses the names looked
 * up (its DKIM-Signature fields' d= and s=, its SPF record's includes, its From
 * domain), so a hostile one could ask for thousands of lookups or for names whose
 * servers never answer. Per message:
 * - at most `maxLookups` queries (SPF's own limit of 10, RFC 7208 section 4.6.4,
 *   applies inside this), beyond which each query fails at once;
 * - everything within `deadlineMs`, after which each query fails at once;
 * - each query bounded by the node:dns Resolver's timeout and tries.
 * A query refused by these bounds fails with ETIMEOUT, which mailauth reports as
 * temperror (RFC 8601: a transient error; the message is delivered and labelled,
 * never held back or lost for it).
 *
 * The servers are the system's (/etc/resolv.conf) unless given: a node:dns
 * Resolver with setServers, e.g. a local validating resolver on loopback.
 */
import { Resolver } from 'node:dns/promises';

export interface DnsLimits {
  /** Queries per message (default 40). */
  maxLookups: number;
  /** Milliseconds for all of a message's queries (default 8000). */
  deadlineMs: number;
  /** Milliseconds a server has to answer one query before it is asked again (default 2000). */
  queryTimeoutMs: number;
  /** Attempts per query (default 2). */
  tries: number;
}

export const DEFAULT_DNS_LIMITS: Readonly<DnsLimits> = Object.freeze({ maxLookups: 40, deadlineMs: 8000, queryTimeoutMs: 2000, tries: 2 });

/** mailauth's resolver: (name, rrtype) answered as node:dns's resolve answers. */
export type DnsLookup = (name: string, rrtype: string) => Promise<never[]>;

/** A Resolver asking `servers` ("IP" or "IP:PORT"; the system's when empty). */
export function createDnsResolver(servers: readonly string[] = [], limits: Pick<DnsLimits, 'queryTimeoutMs' | 'tries'> = DEFAULT_DNS_LIMITS): Resolver {
  const resolver = new Resolver({ timeout: limits.queryTimeoutMs, tries: limits.tries });
  if (servers.length) resolver.setServers([...servers]);
  return resolver;
}

function refused(name: string, why: string): Error {
  return Object.assign(new Error(`DNS lookup of ${name} not made: ${why}`), { code: 'ETIMEOUT' });
}

/** A lookup function for one message, within `limits`. */
export function boundedLookup(resolver: Resolver, limits: DnsLimits = DEFAULT_DNS_LIMITS): DnsLookup {
  const deadline = Date.now() + limits.deadlineMs;
  let count = 0;
  return async (name, rrtype) => {
    if (++count > limits.maxLookups) throw refused(name, `the message needed more than ${limits.maxLookups} lookups`);
    const left = deadline - Date.now();
    if (left <= 0) throw refused(name, `the message's ${limits.deadlineMs} ms for DNS were used up`);
    let timer: NodeJS.Timeout | undefined;
    try {
      return (await Promise.race([
        resolver.resolve(name, rrtype as 'TXT'),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(refused(name, `no answer within the message's ${limits.deadlineMs} ms for DNS`)), left);
        }),
      ])) as never[];
    } finally {
      clearTimeout(timer);
    }
  };
}
