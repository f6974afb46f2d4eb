/**
 * Where the console is served from, which decides three defences:
 * - the Host header must name it (else 421): a DNS-rebinding page, whose Host is
 *   its own name resolving to our address, gets nothing;
 * - a state-changing request must come from one of its origins (check-request.ts);
 * - links printed or shown (the setup link, invitations) start with `baseUrl`.
 *
 * With a public URL (--public-url, KAKITOME_PUBLIC_URL: what people type, e.g. the
 * https:// address of a TLS proxy in front) that is the only name served. Without
 * one, the listen address is served under its own name, and a loopback or
 * wildcard address also under localhost and this machine's interface addresses.
 */
import { networkInterfaces } from 'node:os';
import { KakitomeError } from '../../errors.ts';

export interface ConsoleOrigin {
  /** Host header values served (lower case, with port). */
  hosts: ReadonlySet<string>;
  /** scheme://host[:port] values an unsafe request's Origin may carry. */
  origins: ReadonlySet<string>;
  /** The address printed in links, without a trailing slash. */
  baseUrl: string;
  /** True when served over https (adds Strict-Transport-Security). */
  secure: boolean;
}

/** A public URL, checked: http(s), a host, no path, query, fragment or credentials. */
export function parsePublicUrl(text: string): URL {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new KakitomeError('INVALID_ARGUMENT', `--public-url ${text}: give the address people open, e.g. https://mail-console.example.co.jp.`);
  }
  if ((u.protocol !== 'https:' && u.protocol !== 'http:') || u.username || u.password || (u.pathname !== '/' && u.pathname !== '') || u.search || u.hash) {
    throw new KakitomeError('INVALID_ARGUMENT', `--public-url ${text}: give only scheme, host and port, e.g. https://mail-console.example.co.jp (the console is served under /).`);
  }
  return u;
}

function bracket(address: string): string {
  return address.includes(':') ? `[${address}]` : address;
}

export function consoleOriginFor(listenUrl: string, publicUrl?: string): ConsoleOrigin {
  if (publicUrl) {
    const u = parsePublicUrl(publicUrl);
    return { hosts: new Set([u.host.toLowerCase()]), origins: new Set([u.origin]), baseUrl: u.origin, secure: u.protocol === 'https:' };
  }
  const listen = new URL(listenUrl);
  const port = listen.port;
  const address = listen.hostname.replace(/^\[|\]$/g, '');
  const names = new Set<string>([bracket(address)]);
  const wildcard = address === '0.0.0.0' || address === '::';
  const loopback = /^127\./.test(address) || address === '::1';
  if (loopback || wildcard) names.add('localhost');
  if (wildcard) {
    for (const list of Object.values(networkInterfaces())) for (const i of list ?? []) if (!i.address.startsWith('fe80:')) names.add(bracket(i.address));
    names.delete(bracket(address));
  }
  const hosts = new Set([...names].map((n) => `${n.toLowerCase()}:${port}`));
  const origins = new Set([...hosts].map((h) => `http://${h}`));
  const first = wildcard ? `127.0.0.1:${port}` : `${bracket(address)}:${port}`;
  return { hosts, origins, baseUrl: `http://${first}`, secure: false };
}
