/**
 * Bearer API key authentication with scopes and the key's rate limit, before the
 * body is read: an unauthenticated upload costs the server its headers only. It
 * refreshes the service cache first: everything the request reads is current.
 */
import { isKakitomeError } from '../errors.ts';
import type { ApiKeyRecord, ApiScope } from '../store/tenant-directory.ts';
import { ProblemError } from './problem.ts';
import type { ServiceContext } from './service-context.ts';
import { serviceCache } from './service-cache.ts';

const CHALLENGE = { 'www-authenticate': 'Bearer realm="kakitome"' };

export async function authenticate(ctx: ServiceContext, authorization: string | undefined, scope: ApiScope): Promise<ApiKeyRecord> {
  const m = /^Bearer +([\x21-\x7e]{1,200})$/i.exec(authorization ?? '');
  if (!m) throw new ProblemError(401, 'UNAUTHENTICATED', 'This route needs an API key: send Authorization: Bearer <key> with an API key an administrator made for the tenant.', CHALLENGE);
  let key: ApiKeyRecord;
  try {
    const cache = serviceCache(ctx);
    await cache.refresh();
    key = await cache.authenticate(m[1]!);
  } catch (e) {
    if (isKakitomeError(e, 'UNAUTHENTICATED')) throw new ProblemError(401, 'UNAUTHENTICATED', e.message, CHALLENGE);
    throw e;
  }
  if (!key.scopes.includes(scope)) {
    throw new ProblemError(403, 'FORBIDDEN', `This API key has the scope${key.scopes.length > 1 ? 's' : ''} ${key.scopes.join(', ')}; this route needs ${scope} (an administrator makes a key of tenant "${key.tenant}" with scope ${scope}).`);
  }
  const rate = await ctx.rateLimiter.take(key.id, key.ratePerMinute);
  if (!rate.allowed) {
    throw new ProblemError(429, 'RATE_LIMITED', `This API key may make ${key.ratePerMinute} requests a minute; try again in ${rate.retryAfter} s.`, { 'retry-after': String(rate.retryAfter) });
  }
  return key;
}
