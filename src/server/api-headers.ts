/**
 * Headers on every API answer (/api/v1/..., /healthz, /metrics). The API shares
 * the console's origin, and some answers echo what the caller sent (the path in a
 * 404's detail, a signed or decrypted message): a browser led to such a URL must
 * neither sniff it into a page nor run or frame anything in it, and no cache keeps
 * a decrypted message or a batch's result. The console sets its own
 * (console/security-headers.ts).
 */
export const API_HEADERS: Readonly<Record<string, string>> = {
  'x-content-type-options': 'nosniff',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'; base-uri 'none'",
  'cache-control': 'no-store',
};

export function addApiHeaders(res: Response): void {
  for (const [k, v] of Object.entries(API_HEADERS)) if (!res.headers.has(k)) res.headers.set(k, v);
}

/** The same as a flat name, value list, for node:http's writeHead (sign-route.ts). */
export const API_HEADER_LIST: readonly string[] = Object.entries(API_HEADERS).flat();
