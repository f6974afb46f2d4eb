/**
 * What every API request goes through, whichever way it is served (the Hono
 * application, create-app.ts, or POST /api/v1/sign straight on node:http,
 * sign-route.ts): a request id and the in-flight gauge at the start; at the end
 * the counters and one log line (never a body, a query string, a header value or a
 * key secret); a failure turned into problem details, logged when it is ours (5xx)
 * and audited when a key's use was refused.
 */
import { randomUUID } from 'node:crypto';
import { isKakitomeError } from '../errors.ts';
import { problemFor, ProblemError, shown, type Problem } from './problem.ts';
import { actorOf, type RequestState, type ServiceContext } from './service-context.ts';

type Schema<T> = { safeParse(v: unknown): { success: true; data: T } | { success: false; error: { issues: Array<{ path: PropertyKey[]; message: string }> } } };

/** Parses request values with a route's schema; 400 INVALID_ARGUMENT naming the parameter. */
export function parsed<T>(schema: Schema<T>, values: unknown, what: string): T {
  const r = schema.safeParse(values);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  throw new ProblemError(400, 'INVALID_ARGUMENT', `${what} ${shown(issue.path.map(String).join('.'), 64) || '(unknown)'}: ${shown(issue.message, 200)}.`);
}

export function startRequest(ctx: ServiceContext): { state: RequestState; started: number } {
  ctx.metrics.inFlight++;
  return { state: { requestId: randomUUID() }, started: performance.now() };
}

export function finishRequest(ctx: ServiceContext, state: RequestState, started: number, method: string, status: number): void {
  ctx.metrics.inFlight--;
  const seconds = (performance.now() - started) / 1000;
  const route = state.route ?? 'unmatched';
  ctx.metrics.observeRequest(method, route, status, seconds);
  ctx.log({
    time: new Date().toISOString(), level: status >= 500 ? 'error' : 'info', msg: 'request', request: state.requestId,
    method, route, status, ms: Math.round(seconds * 10_000) / 10,
    tenant: state.key?.tenant, key: state.key?.id, code: state.code,
  });
}

/** The problem details for a failed request; logs our own failures and audits a key's refused use. */
export async function problemForRequest(ctx: ServiceContext, state: RequestState | undefined, e: unknown): Promise<{ problem: Problem; headers: Record<string, string> }> {
  const { problem, headers } = problemFor(e, state?.requestId);
  if (state) state.code = problem.code;
  if (problem.status >= 500) ctx.log({ time: new Date().toISOString(), level: 'error', msg: 'internal error', request: state?.requestId, error: e instanceof Error ? `${e.name}: ${e.message}` : String(e) });
  if (state?.key && state.route && isKakitomeError(e) && problem.status !== 429) {
    // Every use of a key is audited, refusals too (a rate-limited flood is not: it would fill the log).
    const operation = state.audit ?? state.route.split('/').pop();
    ctx.metrics.countOperation(operation ?? 'unknown', 'refused');
    await ctx.store.actingAs(actorOf(state.key)).audit(`api.${operation}.refused`, undefined, `${problem.code}: ${problem.detail}`).catch(() => undefined);
  }
  return { problem, headers };
}
