/**
 * The console's rate limits (sign-in, single-use links, the check page,
 * certificate requests), on the service's token buckets (rate-limiter.ts) under
 * keys of their own. Refusal is 429 with Retry-After, rendered as a page.
 */
import { ProblemError } from '../problem.ts';
import type { ConsoleContext } from './console-context.ts';

export async function takeRate(cx: ConsoleContext, what: string, who: string, perMinute: number): Promise<void> {
  const r = await cx.service.rateLimiter.take(`console:${what}:${who}`, perMinute);
  if (!r.allowed) throw new ProblemError(429, 'RATE_LIMITED', `Too many ${what} requests; try again in ${r.retryAfter} s.`, { 'retry-after': String(r.retryAfter) });
}
