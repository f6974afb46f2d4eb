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
import type { ApiKeyRecord } from '../store/tenant-directory.ts';
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
  const ms = Math.round(seconds * 10_000) / 10;
  if (ctx.logLine) return ctx.logLine(requestLine(state, method, route, status, ms));
  ctx.log({
    time: new Date().toISOString(), level: status >= 500 ? 'error' : 'info', msg: 'request', request: state.requestId,
    method, route, status, ms, tenant: state.key?.tenant, key: state.key?.id, code: state.code,
  });
}

/** The last millisecond's time as ISO text: the requests answered within one millisecond share it. */
const clockText = { ms: Number.NaN, text: '' };

function timeText(): string {
  const now = Date.now();
  if (now !== clockText.ms) {
    clockText.ms = now;
    clockText.text = new Date(now).toISOString();
  }
  return clockText.text;
}

/** Per API key record (the service cache keeps one object per key and revision), its part of the line, as JSON. */
const keyTexts = new WeakMap<ApiKeyRecord, string>();

function keyText(key: ApiKeyRecord | undefined): string {
  if (!key) return '';
  let text = keyTexts.get(key);
  if (text === undefined) keyTexts.set(key, (text = `,"tenant":${JSON.stringify(key.tenant)},"key":${JSON.stringify(key.id)}`));
  return text;
}

/**
 * A request's log line, the same JSON text as JSON.stringify of finishRequest's
 * entry (its fields in that order, undefined ones left out; test/server/request-line.test.ts
 * holds them equal), written without making the entry: 0.4-0.5 µs a line instead of
 * 2.6-2.7 for the entry, its ISO time and JSON.stringify (one loop, 2026-12-08).
 */
export function requestLine(state: RequestState, method: string, route: string, status: number, ms: number): string {
  const code = state.code === undefined ? '' : `,"code":${JSON.stringify(state.code)}`;
  return `{"time":"${timeText()}","level":"${status >= 500 ? 'error' : 'info'}","msg":"request","request":${JSON.stringify(state.requestId)},"method":${JSON.stringify(method)},"route":${JSON.stringify(route)},"status":${JSON.stringify(status)},"ms":${JSON.stringify(ms)}${keyText(state.key)}${code}}`;
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
