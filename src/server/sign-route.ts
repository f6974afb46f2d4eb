/**
 * POST /api/v1/sign straight on node:http: the one route a platform calls
 * thousands of times a second, answered without building a fetch Request and
 * Response around each message (the Hono application costs about 25 µs of CPU a
 * request on the reference machine, a tenth of an RSA-2048 signature). Every step
 * is the Hono route's, by the same functions: the request cycle (request id, log
 * line, counters, problem details, refusals audited: request-cycle.ts), the query
 * by the route's schema, the key, its scope and rate limit (authenticate.ts), the
 * body within the limit (read-limited-body.ts: 415 before reading, 413 from
 * Content-Length or as soon as a chunked body passes it), signing (api/sign.ts).
 * test/server/serve-api.test.ts runs the same requests through both.
 *
 * A body left unread after the answer (413, 415, 401...) is drained as
 * @hono/node-server does (at most 64 MiB or 500 ms, nothing kept), then the
 * connection is closed, so the client reads its answer instead of a reset.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { signForTenant } from './api/sign.ts';
import { API_HEADER_LIST } from './api-headers.ts';
import { authenticate } from './authenticate.ts';
import { readMessageBody, type RequestBody } from './read-limited-body.ts';
import { finishRequest, parsed, problemForRequest, startRequest } from './request-cycle.ts';
import { SIGN } from './routes.ts';
import { SignQuery } from './schemas.ts';
import type { ServiceContext } from './service-context.ts';

const DRAIN_BYTES = 64 * 1024 * 1024;
const DRAIN_MS = 500;

/** True for the requests this route answers: POST to the path, with or without a query. */
export function isSignRequest(req: IncomingMessage): boolean {
  const url = req.url ?? '';
  return req.method === 'POST' && url.startsWith(SIGN.path) && (url.length === SIGN.path.length || url[SIGN.path.length] === '?');
}

/** The query's parameters, the first of each name (as Hono's c.req.query() gives them). */
function queryOf(url: string): Record<string, string> {
  const q = url.indexOf('?');
  const out: Record<string, string> = {};
  if (q < 0) return out;
  for (const [k, v] of new URLSearchParams(url.slice(q + 1))) if (!(k in out)) out[k] = v;
  return out;
}

/** The query most requests send (none), parsed once: zod's parse of an empty query per request is garbage for nothing. */
const NO_QUERY = Object.freeze(parsed(SignQuery, {}, 'Query parameter'));

function requestBody(req: IncomingMessage): RequestBody {
  return { headers: { get: (name: string) => (req.headers[name.toLowerCase()] as string | undefined) ?? null }, body: null };
}

/**
 * The header fields as a flat list: node:http then skips building and walking an
 * object per answer (a trivial node:http server answering 4.8 KB under wrk: 20.4-20.7
 * µs of CPU a request with the list, 22.5-23.0 with an object, 2026-12-07). Fields
 * set before (a problem's retry-after) are merged as with an object; the API's own
 * (api-headers.ts) close the list.
 */
function send(res: ServerResponse, status: number, type: string, body: Uint8Array | string): void {
  res.writeHead(status, ['content-type', type, 'content-length', String(Buffer.byteLength(body)), ...API_HEADER_LIST]);
  res.end(body);
}

/** After the answer, the rest of an unread body is read and dropped, within bounds, then the connection goes. */
function drainRest(req: IncomingMessage): void {
  if (req.readableEnded || req.destroyed) return;
  let read = 0;
  const close = () => {
    clearTimeout(timer);
    req.off('data', onData);
    req.socket?.destroySoon();
  };
  const onData = (chunk: Buffer) => {
    read += chunk.length;
    if (read > DRAIN_BYTES) close();
  };
  const timer = setTimeout(close, DRAIN_MS);
  timer.unref();
  req.on('data', onData);
  req.once('end', () => {
    clearTimeout(timer);
    req.off('data', onData);
  });
  req.resume();
}

/**
 * The Authorization field, none when the request has two: node:http keeps the first
 * and drops the rest, where the other routes' fetch Request joins them into a value
 * no key matches (401). Two credentials are a refusal on every route, whichever one a
 * proxy in front meant.
 */
function authorizationOf(req: IncomingMessage): string | undefined {
  const raw = req.rawHeaders;
  let seen = 0;
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.length === 13 && raw[i]!.toLowerCase() === 'authorization' && ++seen > 1) return undefined;
  return req.headers.authorization;
}

export async function answerSignRequest(ctx: ServiceContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const { state, started } = startRequest(ctx);
  state.route = SIGN.path;
  if (SIGN.audit) state.audit = SIGN.audit;
  let status = 500;
  try {
    const key = await authenticate(ctx, authorizationOf(req), 'sign');
    state.key = key;
    const url = req.url ?? '';
    const query = url.length === SIGN.path.length ? NO_QUERY : parsed(SignQuery, queryOf(url), 'Query parameter');
    const message = await readMessageBody(requestBody(req), ctx.config.maxMessageBytes, req);
    const signed = await signForTenant(ctx, key, message, query);
    ctx.metrics.countOperation('sign', 'ok');
    status = 200;
    send(res, 200, 'message/rfc822', signed);
  } catch (e) {
    const { problem, headers } = await problemForRequest(ctx, state, e);
    status = problem.status;
    for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
    send(res, problem.status, 'application/problem+json', JSON.stringify(problem));
  } finally {
    finishRequest(ctx, state, started, 'POST', status);
  }
  if (!req.readableEnded) res.once('finish', () => drainRest(req));
}
