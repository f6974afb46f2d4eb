/**
 * The default Fetcher: plain HTTP GET/POST with a size cap and a deadline.
 * RFC 5280 4.2.1.13 and 4.2.2.1 and RFC 5019 use http:// for CRLs, caIssuers and
 * OCSP (https would need revocation checking to fetch revocation data), so only
 * http: URLs are accepted; anything else fails. Redirects are not followed: a
 * revocation location that moves is the CA's problem, and following it would let
 * a certificate steer our requests elsewhere.
 *
 * Every URL fetched was written by a CA, so none is trusted to point somewhere
 * harmless (issue 9, item 8: blind SSRF). The host is resolved first and every
 * address it resolves to is judged (classify-internal-address.ts): loopback,
 * private, link-local (cloud metadata), shared, multicast and reserved addresses
 * are refused unless the administrator allow-listed the host or address
 * (`allowInternal`). The connection then goes to the address that was judged, never
 * to a second resolution of the name, so DNS rebinding between check and connect
 * is impossible; the Host header still names the URL's host.
 */
import { request } from 'node:http';
import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { KakitomeError } from '../errors.ts';
import type { Fetcher, FetchRequest } from './types.ts';
import { classifyInternalAddress } from './classify-internal-address.ts';
import { createHostList, normalizeHostname, type HostList } from './match-host-list.ts';

export interface ResolvedAddress {
  address: string;
  family: number;
}

export interface HttpFetcherOptions {
  /**
   * When given, only these hosts (names, addresses or CIDR blocks, as in
   * match-host-list.ts) may be contacted. A host named here is contacted whatever
   * its address: naming it is the administrator's decision.
   */
  allowedHosts?: string[];
  /**
   * Hosts (by name), addresses and CIDR blocks that may be contacted although they
   * are internal (loopback, private, link-local...): an internal CA's CRL and OCSP
   * server, or the loopback servers of tests. Empty by default.
   */
  allowInternal?: string[];
  /** Name resolution (all addresses of a host); node:dns lookup by default. */
  lookup?: (hostname: string) => Promise<ResolvedAddress[]>;
}

export function createHttpFetcher(options: HttpFetcherOptions = {}): Fetcher {
  const only = options.allowedHosts ? createHostList(options.allowedHosts, 'allowedHosts') : undefined;
  const internal = createHostList(options.allowInternal ?? [], 'allowInternal');
  const resolve = options.lookup ?? ((host: string) => dnsLookup(host, { all: true, verbatim: true }));
  return (url: string, req: FetchRequest) => fetchOverHttp(url, req, only, internal, resolve);
}

async function fetchOverHttp(url: string, req: FetchRequest, only: HostList | undefined, internal: HostList, resolve: (host: string) => Promise<ResolvedAddress[]>): Promise<Uint8Array> {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new KakitomeError('INVALID_ARGUMENT', `Not a URL: ${url}`);
  }
  if (u.protocol !== 'http:') throw new KakitomeError('UNSUPPORTED_ALG', `Only http: locations are fetched (got ${u.protocol}).`);
  const host = normalizeHostname(u.hostname);
  if (only && !only.hasName(host)) throw new KakitomeError('INVALID_ARGUMENT', `Host ${u.hostname} is not in the fetcher's allowed hosts.`);
  const deadline = Date.now() + req.timeoutMs;
  const tooSlow = () => new KakitomeError('LIMIT', `${url} did not answer within ${req.timeoutMs} ms.`);
  const addresses = isIP(host) ? [{ address: host, family: isIP(host) }] : await withDeadline(resolveHost(host, resolve), req.timeoutMs, tooSlow);
  const named = internal.hasName(host) || (only?.hasName(host) ?? false);
  // Every address must pass: a name that resolves to one public and one internal
  // address would otherwise reach the internal one on a retry or a second lookup.
  for (const a of addresses) {
    const kind = classifyInternalAddress(a.address);
    if (kind && !named && !internal.hasAddress(a.address)) {
      throw new KakitomeError('INVALID_ARGUMENT', `${url} was not fetched: ${host === a.address ? host : `${host} resolves to ${a.address}, which`} is ${kind}. Internal addresses are fetched only when allow-listed (allowInternal).`, { remedy: 'allowInternal' });
    }
  }
  // Like any client, try the next judged address when one cannot be connected to.
  for (let i = 0; ; i++) {
    try {
      return await exchange(u, url, addresses[i]!, req, Math.max(1, deadline - Date.now()), tooSlow);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? '';
      if (i + 1 >= addresses.length || !CONNECT_FAILURES.has(code) || Date.now() >= deadline) throw e;
    }
  }
}

const CONNECT_FAILURES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'EAFNOSUPPORT']);

async function resolveHost(host: string, resolve: (host: string) => Promise<ResolvedAddress[]>): Promise<ResolvedAddress[]> {
  let found: ResolvedAddress[];
  try {
    found = await resolve(host);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new KakitomeError('INVALID_ARGUMENT', `${host} could not be resolved${code ? ` (${code})` : ''}.`, { cause: e });
  }
  if (found.length === 0) throw new KakitomeError('INVALID_ARGUMENT', `${host} has no address.`);
  return found;
}

function withDeadline<T>(p: Promise<T>, ms: number, error: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(error()), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** One HTTP exchange with the judged address (no second name resolution). */
function exchange(u: URL, url: string, to: ResolvedAddress, req: FetchRequest, timeoutMs: number, tooSlow: () => Error): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { host: u.host };
    if (req.body) {
      headers['content-type'] = req.contentType ?? 'application/octet-stream';
      headers['content-length'] = req.body.length;
    }
    const r = request({ host: to.address, family: to.family === 6 ? 6 : 4, port: u.port || 80, path: `${u.pathname}${u.search}`, method: req.method, headers, setHost: false, timeout: timeoutMs }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new KakitomeError('CERT_UNTRUSTED', `${url} answered HTTP ${res.statusCode}.`));
        return;
      }
      const declared = Number(res.headers['content-length'] ?? 0);
      if (declared > req.maxBytes) {
        res.destroy();
        reject(new KakitomeError('LIMIT', `${url} announces ${declared} bytes, more than ${req.maxBytes}.`));
        return;
      }
      const chunks: Buffer[] = [];
      let total = 0;
      res.on('data', (c: Buffer) => {
        total += c.length;
        if (total > req.maxBytes) {
          res.destroy();
          reject(new KakitomeError('LIMIT', `${url} sent more than ${req.maxBytes} bytes.`));
          return;
        }
        chunks.push(c);
      });
      res.on('end', () => resolve(Buffer.concat(chunks)));
      res.on('error', reject);
    });
    // The deadline covers the whole exchange, not just idle time.
    const deadline = setTimeout(() => r.destroy(tooSlow()), timeoutMs);
    r.on('close', () => clearTimeout(deadline));
    r.on('timeout', () => r.destroy(tooSlow()));
    r.on('error', reject);
    r.end(req.body);
  });
}
