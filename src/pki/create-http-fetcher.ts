/**
 * The default Fetcher: plain HTTP GET/POST with a size cap and a deadline.
 * RFC 5280 4.2.1.13 and 4.2.2.1 and RFC 5019 use http:// for CRLs, caIssuers and
 * OCSP (https would need revocation checking to fetch revocation data), so only
 * http: URLs are accepted; anything else fails. Redirects are not followed: a
 * revocation location that moves is the CA's problem, and following it would let
 * a certificate steer our requests elsewhere.
 */
import { request } from 'node:http';
import { KakitomeError } from '../errors.ts';
import type { Fetcher, FetchRequest } from './types.ts';

export interface HttpFetcherOptions {
  /** When given, only these host names (e.g. ['127.0.0.1']) may be contacted. */
  allowedHosts?: string[];
}

export function createHttpFetcher(options: HttpFetcherOptions = {}): Fetcher {
  return (url: string, req: FetchRequest) => fetchOverHttp(url, req, options);
}

function fetchOverHttp(url: string, req: FetchRequest, options: HttpFetcherOptions): Promise<Uint8Array> {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return Promise.reject(new KakitomeError('INVALID_ARGUMENT', `Not a URL: ${url}`));
  }
  if (u.protocol !== 'http:') return Promise.reject(new KakitomeError('UNSUPPORTED_ALG', `Only http: locations are fetched (got ${u.protocol}).`));
  if (options.allowedHosts && !options.allowedHosts.includes(u.hostname)) {
    return Promise.reject(new KakitomeError('INVALID_ARGUMENT', `Host ${u.hostname} is not in the fetcher's allowed hosts.`));
  }
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = {};
    if (req.body) {
      headers['content-type'] = req.contentType ?? 'application/octet-stream';
      headers['content-length'] = req.body.length;
    }
    const r = request(u, { method: req.method, headers, timeout: req.timeoutMs }, (res) => {
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
    const deadline = setTimeout(() => r.destroy(new KakitomeError('LIMIT', `${url} did not answer within ${req.timeoutMs} ms.`)), req.timeoutMs);
    r.on('close', () => clearTimeout(deadline));
    r.on('timeout', () => r.destroy(new KakitomeError('LIMIT', `${url} did not answer within ${req.timeoutMs} ms.`)));
    r.on('error', reject);
    r.end(req.body);
  });
}
