/**
 * The HTTP application (Hono): the API under /api/v1, /healthz, /metrics and the
 * OpenAPI document. Every route comes from the table in routes.ts; a request goes
 * through one small chain: request id and log line → (API key, scope, rate limit)
 * → query validated with the route's schema → handler. Errors become RFC 9457
 * problem details (problem.ts). Testable without a socket: `app.request()`.
 */
import type { Readable } from 'node:stream';
import { Hono, type Context } from 'hono';
import type { ApiKeyRecord } from '../store/tenant-directory.ts';
import { authenticate } from './authenticate.ts';
import { buildOpenApiDocument } from './openapi.ts';
import { makeProblem, problemFor, problemResponse, ProblemError, shown } from './problem.ts';
import { readMessageBody, type IncomingBody } from './read-limited-body.ts';
import { ADD_IDENTITY, BATCH_RESULT, CREATE_BATCH, DELETE_BATCH, GET_BATCH, LIST_BATCHES, DECRYPT, ENCRYPT, HEALTH, IDENTITIES, METRICS, OPENAPI, RETIRE_IDENTITY, ROUTES, SIGN, TENANT_SETTINGS, CHANGE_TENANT_SETTINGS, VERIFY, type RouteSpec } from './routes.ts';
import { actorOf, type AppEnv, type ServiceContext } from './service-context.ts';
import { finishRequest, parsed, problemForRequest, startRequest } from './request-cycle.ts';
import { signForTenant } from './api/sign.ts';
import { verifyForTenant } from './api/verify.ts';
import { BatchListQuery, BatchPath, BatchQuery, EncryptQuery, IdentityPath, RetireQuery, SignQuery, TenantPath, TenantSettingsChange } from './schemas.ts';
import { changeTenantSettingsFor, tenantSettingsFor } from './api/tenant-settings.ts';
import { readJsonBody } from './read-json-body.ts';
import { BatchDirectory } from '../store/batch-directory.ts';
import { receiveBatch } from './batches/receive-batch.ts';
import { batchCursor, batchPath, readBatchCursor, streamBatchResult, summarizeBatch, viewBatch } from './batches/batch-view.ts';
import { encryptForTenant } from './api/encrypt.ts';
import { decryptForTenant } from './api/decrypt.ts';
import { listTenantIdentities } from './api/identities.ts';
import { addIdentityForTenant } from './api/add-identity.ts';
import { retireIdentityForTenant } from './api/retire-identity.ts';
import { readIdentityUpload } from './read-identity-upload.ts';
import { WorkGate } from './work-gate.ts';
import { addApiHeaders } from './api-headers.ts';
import type { ConsoleContext } from './console/console-context.ts';
import { consoleNotFound, mountConsole } from './console/create-console.ts';

/** A settings change is a few members: 4 KiB is room and to spare. */
const SETTINGS_MAX_BYTES = 4096;

type Handler = (c: Context<AppEnv>, key: ApiKeyRecord | undefined) => Promise<Response>;

/** The query, parsed with the route's schema. `lists`: parameters that repeat. */
function queryOf<T>(c: Context<AppEnv>, schema: Parameters<typeof parsed<T>>[0], lists: Record<string, string[]> = {}): T {
  return parsed(schema, { ...c.req.query(), ...lists }, 'Query parameter');
}

function messageResponse(bytes: Uint8Array): Response {
  return new Response(new Uint8Array(bytes), { status: 200, headers: { 'content-type': 'message/rfc822' } });
}

/** The node:http request when served by @hono/node-server (absent under app.request() in tests). */
function incomingOf(c: Context<AppEnv>): IncomingBody | undefined {
  return (c.env as { incoming?: IncomingBody } | undefined)?.incoming;
}

function noBatch(id: string): ProblemError {
  return new ProblemError(404, 'NOT_FOUND', `No batch ${id} for this tenant (deleted, expired, or never made with this tenant's keys).`);
}

/** `console`: the web console under / (issue 11); without it only the API is served. */
export function createApp(ctx: ServiceContext, options: { console?: ConsoleContext } = {}): Hono<AppEnv> {
  const batchDirectory = (key: ApiKeyRecord) => {
    if (!ctx.batches) throw new ProblemError(404, 'NOT_FOUND', 'Batches are not served here.');
    return new BatchDirectory(ctx.store.actingAs(actorOf(key)), ctx.batches.blobs);
  };
  const findBatch = async (c: Context<AppEnv>, key: ApiKeyRecord, directory: BatchDirectory) => {
    const { id } = parsed(BatchPath, c.req.param(), 'Path parameter');
    const batch = await directory.find(key.tenant, id);
    if (!batch) throw noBatch(id);
    return batch;
  };
  const app = new Hono<AppEnv>();
  const isApiPath = (path: string) => path.startsWith('/api/') || ROUTES.some((r) => r.path === path);
  const openapi = JSON.stringify(buildOpenApiDocument(ROUTES, { version: ctx.version }));
  // New identities: one PKCS#12 read (or CA key made) at a time per node, four waiting.
  const identityWork = new WorkGate(1, 4);

  app.use('*', async (c, next) => {
    const { state, started } = startRequest(ctx);
    c.set('state', state);
    try {
      await next();
      if (isApiPath(c.req.path) || !options.console) addApiHeaders(c.res);
    } finally {
      finishRequest(ctx, state, started, c.req.method, c.res.status);
    }
  });

  const handlers = new Map<RouteSpec, Handler>([
    [SIGN, async (c, key) => {
      const query = queryOf(c, SignQuery);
      const message = await readMessageBody(c.req.raw, ctx.config.maxMessageBytes, incomingOf(c));
      const signed = await signForTenant(ctx, key!, message, query);
      ctx.metrics.countOperation('sign', 'ok');
      return messageResponse(signed);
    }],
    [VERIFY, async (c, key) => {
      const message = await readMessageBody(c.req.raw, ctx.config.maxMessageBytes, incomingOf(c));
      const verdict = await verifyForTenant(ctx, key!, message);
      ctx.metrics.countOperation('verify', verdict.status);
      return c.json(verdict);
    }],
    [ENCRYPT, async (c, key) => {
      const query = queryOf(c, EncryptQuery, { to: c.req.queries('to') ?? [] });
      const message = await readMessageBody(c.req.raw, ctx.config.maxMessageBytes, incomingOf(c));
      const encrypted = await encryptForTenant(ctx, key!, message, query);
      ctx.metrics.countOperation('encrypt', 'ok');
      return messageResponse(encrypted);
    }],
    [DECRYPT, async (c, key) => {
      const message = await readMessageBody(c.req.raw, ctx.config.maxMessageBytes, incomingOf(c));
      const { verdict, message: plain } = await decryptForTenant(ctx, key!, message);
      ctx.metrics.countOperation('decrypt', verdict.status);
      return c.json({ verdict, ...(plain ? { message: Buffer.from(plain).toString('base64') } : {}) });
    }],
    [IDENTITIES, async (c, key) => c.json({ identities: await listTenantIdentities(ctx, key!) })],
    [ADD_IDENTITY, async (c, key) => {
      const upload = await readIdentityUpload(c.req.raw, incomingOf(c));
      return c.json(await identityWork.run('identity imports', () => addIdentityForTenant(ctx, key!, upload)), 201);
    }],
    [RETIRE_IDENTITY, async (c, key) => {
      const { address } = parsed(IdentityPath, c.req.param(), 'Path parameter');
      const query = queryOf(c, RetireQuery);
      return c.json(await retireIdentityForTenant(ctx, key!, address, query.certificate));
    }],
    [TENANT_SETTINGS, async (c, key) => {
      const { tenant } = parsed(TenantPath, c.req.param(), 'Path parameter');
      return c.json(await tenantSettingsFor(ctx, key!, tenant));
    }],
    [CHANGE_TENANT_SETTINGS, async (c, key) => {
      const { tenant } = parsed(TenantPath, c.req.param(), 'Path parameter');
      const type = (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
      if (type !== 'application/json' && type !== 'application/merge-patch+json') {
        throw new ProblemError(415, 'INVALID_ARGUMENT', `Send the settings to change as application/json, e.g. {"dkim": true, "hash": "sha384"}${type ? `, not ${shown(type)}` : ''}.`);
      }
      const change = await readJsonBody(c.req.raw, incomingOf(c), TenantSettingsChange, { limit: SETTINGS_MAX_BYTES, hint: 'send e.g. {"opaque": false, "hash": "sha384", "pss": false, "dkim": true}' });
      return c.json(await changeTenantSettingsFor(ctx, key!, tenant, change));
    }],
    [CREATE_BATCH, async (c, key) => {
      const options = queryOf(c, SignQuery);
      const incoming = incomingOf(c) as Readable | undefined;
      const idempotencyKey = c.req.header('idempotency-key');
      const { batch, replayed } = await receiveBatch(ctx, key!, { request: c.req.raw, ...(incoming ? { incoming } : {}), options, ...(idempotencyKey !== undefined ? { idempotencyKey } : {}) });
      const view = await viewBatch(batchDirectory(key!), batch);
      return c.json(view, 202, { location: batchPath(batch.id), ...(replayed ? { 'idempotent-replayed': 'true' } : {}) });
    }],
    [LIST_BATCHES, async (c, key) => {
      const query = queryOf(c, BatchListQuery);
      const limit = Number(query.limit ?? 50);
      const directory = batchDirectory(key!);
      const page = await directory.list(key!.tenant, limit + 1, query.before === undefined ? undefined : readBatchCursor(query.before));
      const shown = page.slice(0, limit);
      await directory.audit('api.batches.list', key!.tenant, `${shown.length} batches${query.before ? ' (a later page)' : ''}`);
      return c.json({ batches: shown.map(summarizeBatch), ...(page.length > limit ? { next: batchCursor(shown.at(-1)!) } : {}) });
    }],
    [GET_BATCH, async (c, key) => {
      const query = queryOf(c, BatchQuery);
      const directory = batchDirectory(key!);
      const batch = await findBatch(c, key!, directory);
      const view = await viewBatch(directory, batch, Number(query.failuresFrom ?? 0));
      await directory.audit('api.batches.get', batch.id, `${batch.state}: ${batch.signed} signed, ${batch.failed} failed of ${batch.total}`);
      return c.json(view);
    }],
    [BATCH_RESULT, async (c, key) => {
      const directory = batchDirectory(key!);
      const batch = await findBatch(c, key!, directory);
      const response = await streamBatchResult(directory, batch, ctx.batches?.readOutputs);
      await directory.audit('api.batches.result', batch.id, `${batch.signed} messages, ${batch.resultBytes} bytes`);
      return response;
    }],
    [DELETE_BATCH, async (c, key) => {
      const { id } = parsed(BatchPath, c.req.param(), 'Path parameter');
      if (!(await batchDirectory(key!).remove(key!.tenant, id))) throw noBatch(id);
      return c.body(null, 204);
    }],
    [HEALTH, async (c) => {
      if (ctx.shuttingDown()) return problemResponse(makeProblem(503, 'INTERNAL', 'The service is shutting down.', c.get('state').requestId));
      try {
        await ctx.store.engine.all('SELECT 1');
      } catch {
        return problemResponse(makeProblem(503, 'INTERNAL', 'The store does not answer.', c.get('state').requestId));
      }
      // A node whose batch thread stopped for good takes uploads it never signs: out of the load balancer's set.
      const batches = (await ctx.batchHealth?.()) ?? { state: 'running' };
      if (batches.state === 'stopped') return problemResponse(makeProblem(503, 'INTERNAL', batches.reason, c.get('state').requestId));
      return c.json(batches.state === 'running' ? { status: 'ok', batches: 'running' } : { status: 'degraded', batches: batches.state, reason: batches.reason });
    }],
    [METRICS, async (c) => c.body(ctx.renderMetrics ? await ctx.renderMetrics() : ctx.metrics.render(), 200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' })],
    [OPENAPI, async (c) => c.body(openapi, 200, { 'content-type': 'application/json' })],
  ]);

  for (const spec of ROUTES) {
    const handler = handlers.get(spec);
    if (!handler) throw new Error(`No handler for ${spec.method.toUpperCase()} ${spec.path}`);
    app.on(spec.method.toUpperCase(), spec.path.replace(/\{(\w+)\}/g, ':$1'), async (c) => {
      const state = c.get('state');
      state.route = spec.path;
      if (spec.audit) state.audit = spec.audit;
      const key = spec.scope ? await authenticate(ctx, c.req.header('authorization'), spec.scope) : undefined;
      if (key) state.key = key;
      return handler(c, key);
    });
  }

  if (options.console) mountConsole(app, options.console);

  app.notFound((c) => {
    if (options.console && !isApiPath(c.req.path)) return consoleNotFound(c, options.console);
    const { problem } = problemFor(new ProblemError(404, 'NOT_FOUND', `No route ${shown(c.req.method, 16)} ${shown(c.req.path, 200)}: see /api/v1/openapi.json.`), c.get('state')?.requestId);
    c.get('state').code = problem.code;
    return problemResponse(problem);
  });

  app.onError(async (e, c) => {
    const { problem, headers } = await problemForRequest(ctx, c.get('state'), e);
    return problemResponse(problem, headers);
  });
  return app;
}
