/**
 * Headers on every console response. The Content-Security-Policy allows scripts,
 * styles and connections only from this server: no inline script or style, no
 * eval (htmx's hx-on attributes, which need it, are not used), no framing, forms
 * posting only here. Pages are never cached (they show personal data and one-time
 * secrets); the referrer never leaves the console (a setup or invitation link in
 * the address bar must not leak to another site). 'same-origin' rather than
 * 'no-referrer': under no-referrer browsers send `Origin: null` on form posts, and
 * the CSRF check (check-request.ts) needs the real Origin.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

export function securityHeaders(o: { secure: boolean; cache: 'none' | 'asset' }): Record<string, string> {
  return {
    'content-security-policy': CONTENT_SECURITY_POLICY,
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    'referrer-policy': 'same-origin',
    'cross-origin-opener-policy': 'same-origin',
    'cross-origin-resource-policy': 'same-origin',
    'permissions-policy': 'camera=(), microphone=(), geolocation=(), payment=(), usb=()',
    'cache-control': o.cache === 'asset' ? 'public, max-age=3600' : 'no-store',
    ...(o.secure ? { 'strict-transport-security': 'max-age=31536000' } : {}),
  };
}
