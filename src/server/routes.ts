/**
 * The API's routes as data: method, path, scope, query schema, body and responses.
 * create-app.ts mounts a handler for each and validates the query with its schema;
 * openapi.ts writes the OpenAPI document from the same table, so the document
 * cannot describe a route the server does not have.
 */
import type { z } from 'zod';
import type { ApiScope } from '../store/tenant-directory.ts';
import { Batch, BatchList, BatchListQuery, BatchPath, BatchQuery, Decrypted, EncryptQuery, IdempotencyKeyHeader, NdjsonMessage, Health, Identities, IdentityAdded, IdentityPath, IdentityRetired, IssueIdentity, Pkcs12PasswordHeader, Pkcs12Upload, RetireQuery, SignQuery, TenantPath, TenantSettings, TenantSettingsChange, Verdict } from './schemas.ts';

export interface ResponseSpec {
  description: string;
  contentType?: string;
  schema?: z.ZodType;
}

export interface RouteSpec {
  method: 'get' | 'post' | 'patch' | 'delete';
  /** The OpenAPI path; {name} is a path parameter, declared in `params`. */
  path: string;
  operationId: string;
  /** The operation's name in the audit log (api.<name>.refused) and metrics; default the path's last segment. */
  audit?: string;
  summary: string;
  description: string;
  /** The API key scope the route needs; absent: no API key. */
  scope?: ApiScope;
  query?: z.ZodObject;
  /** Path parameters. */
  params?: z.ZodObject;
  /** Request header fields the route reads. */
  headers?: z.ZodObject;
  /** The request body: by media type, its schema (none: the raw bytes). */
  body?: { description: string; content: Record<string, z.ZodType | undefined> };
  responses: Record<number, ResponseSpec>;
}

const MESSAGE = 'message/rfc822';
const PROBLEMS = [400, 401, 403, 413, 415, 422, 429] as const;
const PROBLEM_TEXT: Record<number, string> = {
  400: 'Malformed message or query (MALFORMED, INVALID_ARGUMENT).',
  404: 'No such identity or batch for this tenant, or not the caller\'s tenant (NOT_FOUND).',
  409: 'Not now (CONFLICT): the batch is not done yet, or the first upload with this Idempotency-Key is still being received.',
  401: 'No API key, or an unknown, revoked or wrong one (UNAUTHENTICATED).',
  403: 'The key lacks the scope, or the From address is not the tenant\'s (FORBIDDEN).',
  413: 'The message is larger than the service accepts (LIMIT); sent before the rest of the body is read.',
  415: 'The body is not of a media type the route takes (message/rfc822; for batches application/mbox, application/x-ndjson, multipart/mixed).',
  422: 'The message was understood and refused: a misleading sender (IDENTITY_MISMATCH), no current identity (KEY_INVALID), not for this tenant (NOT_RECIPIENT), undecryptable (DECRYPT_FAILED, UNAUTH_ENC), a limit inside the message (LIMIT)...; for a batch upload, an Idempotency-Key already used for a different upload (CONFLICT).',
  429: 'The key used up its rate limit, or the tenant has too many unfinished batches (RATE_LIMITED); see Retry-After.',
};

function problems(which: readonly number[] = PROBLEMS): Record<number, ResponseSpec> {
  return Object.fromEntries(which.map((s) => [s, { description: PROBLEM_TEXT[s]!, contentType: 'application/problem+json' }]));
}

export const SIGN: RouteSpec = {
  method: 'post', path: '/api/v1/sign', operationId: 'sign', scope: 'sign',
  summary: 'Sign a message with the tenant\'s identity for its From address',
  description: 'The body is a whole RFC 5322 message. The identity is chosen by the From address among the caller tenant\'s identities; the From domain must be one of the tenant\'s domains. A message a careful verifier would refuse (two From fields, a display name carrying another address, several mailboxes) is refused and never signed. The content is put in canonical 7-bit form, as the CLI does, so relays cannot break the signature, and the header fields are protected inside (RFC 9788).',
  query: SignQuery,
  body: { description: 'The message to sign.', content: { [MESSAGE]: undefined } },
  responses: { 200: { description: 'The signed message.', contentType: MESSAGE }, ...problems() },
};

export const VERIFY: RouteSpec = {
  method: 'post', path: '/api/v1/verify', operationId: 'verify', scope: 'verify',
  summary: 'Verify a signed message',
  description: 'Returns the verdict, the same JSON as `kakitome verify --json`, for every message that could be judged (valid or not: read `status` and `code`). Trust comes from the store\'s trusted CA certificates. Signers\' certificates are not harvested into the store.',
  body: { description: 'The signed message.', content: { [MESSAGE]: undefined } },
  responses: { 200: { description: 'The verdict.', contentType: 'application/json', schema: Verdict }, ...problems([400, 401, 403, 413, 415, 422, 429]) },
};

export const ENCRYPT: RouteSpec = {
  method: 'post', path: '/api/v1/encrypt', operationId: 'encrypt', scope: 'sign',
  summary: 'Encrypt a message to addresses, optionally signed first',
  description: 'As `kakitome encrypt --to ADDRESS` with the key store: each recipient\'s current certificate is validated now against the store\'s trust anchors (a revoked or untrusted one is refused, never encrypted to), the cipher is the best every recipient is known to read, and the sender\'s own certificate is added so the Sent copy stays readable. The From address must be the tenant\'s identity, as for signing; with sign=true its identity signs first.',
  query: EncryptQuery,
  body: { description: 'The message to encrypt.', content: { [MESSAGE]: undefined } },
  responses: { 200: { description: 'The encrypted message (application/pkcs7-mime).', contentType: MESSAGE }, ...problems() },
};

export const DECRYPT: RouteSpec = {
  method: 'post', path: '/api/v1/decrypt', operationId: 'decrypt', scope: 'verify',
  summary: 'Decrypt a message for one of the tenant\'s identities',
  description: 'As `kakitome decrypt` with the key store, with the keys of the caller tenant\'s identities only (any of their keys, expired or retired ones too: old mail stays readable). The CLI\'s rules hold: only an encrypted body is opened (MALFORMED otherwise, the EFAIL shape included), CBC content without a trusted signature of its sender inside is not released (UNAUTH_ENC), every decryption failure is the one DECRYPT_FAILED, and content under a failing inner signature is withheld.',
  body: { description: 'The encrypted message.', content: { [MESSAGE]: undefined } },
  responses: { 200: { description: 'The verdict and the decrypted message.', contentType: 'application/json', schema: Decrypted }, ...problems() },
};

export const IDENTITIES: RouteSpec = {
  method: 'get', path: '/api/v1/identities', operationId: 'listIdentities', scope: 'admin',
  summary: 'The tenant\'s identities and their expiry',
  description: 'Every address registered to the caller\'s tenant (kakitome tenant identity) with its certificates: status (current, expired, revoked, ...) and days left, so a platform renews in time. Read without opening a key.',
  responses: { 200: { description: 'The identities.', contentType: 'application/json', schema: Identities }, ...problems([401, 403, 429]) },
};

export const ADD_IDENTITY: RouteSpec = {
  method: 'post', path: '/api/v1/identities', operationId: 'addIdentity', scope: 'admin', audit: 'identities.add',
  summary: 'Add a signing identity: upload a PKCS#12, or have the internal CA issue one',
  description: 'As `kakitome tenant identity`: the certificate\'s addresses must be within the tenant\'s domains and no other tenant\'s identity, and a refused identity leaves nothing behind. A PKCS#12 (at most 4 MiB; AES, 3DES and legacy RC2/RC4 files) is read with the CLI\'s bounds on key-derivation work, off the request threads; at most one is read at a time per node, a few more wait, beyond that 429. The identity signs from the next request on, on every node sharing the store.',
  headers: Pkcs12PasswordHeader,
  body: {
    description: 'A PKCS#12 file (raw, or as a form with its password), or a JSON request to issue one.',
    content: { 'application/pkcs12': undefined, 'multipart/form-data': Pkcs12Upload, 'application/json': IssueIdentity },
  },
  responses: { 201: { description: 'The identity was added.', contentType: 'application/json', schema: IdentityAdded }, ...problems() },
};

export const RETIRE_IDENTITY: RouteSpec = {
  method: 'delete', path: '/api/v1/identities/{address}', operationId: 'retireIdentity', scope: 'admin', audit: 'identities.retire',
  summary: 'Retire a signing identity',
  description: 'As `kakitome tenant retire-identity`: the keys of the address\'s certificates (or of the one named) are retired: from the next request on, on every node, they no longer sign; they still decrypt old mail for the tenant. The address stays the tenant\'s, for a new identity. A key that also serves another tenant\'s address is not retired (403).',
  params: IdentityPath,
  query: RetireQuery,
  responses: { 200: { description: 'Retired.', contentType: 'application/json', schema: IdentityRetired }, ...problems([400, 401, 403, 404, 429]) },
};

export const TENANT_SETTINGS: RouteSpec = {
  method: 'get', path: '/api/v1/tenants/{tenant}/settings', operationId: 'getTenantSettings', scope: 'admin', audit: 'tenant.settings.get',
  summary: 'The tenant\'s signing settings',
  description: 'How the tenant\'s messages are signed when a request does not say (POST /api/v1/sign and batches without the query option), and always on the SMTP submission port: opaque, hash, pss, dkim, each with the value in force. As `kakitome tenant settings NAME --json`. Only the caller key\'s own tenant: any other name is 404.',
  params: TenantPath,
  responses: { 200: { description: 'The settings.', contentType: 'application/json', schema: TenantSettings }, ...problems([400, 401, 403, 404, 429]) },
};

export const CHANGE_TENANT_SETTINGS: RouteSpec = {
  method: 'patch', path: '/api/v1/tenants/{tenant}/settings', operationId: 'changeTenantSettings', scope: 'admin', audit: 'tenant.settings.change',
  summary: 'Change the tenant\'s signing settings',
  description: 'As `kakitome tenant settings NAME --opaque on|off --hash ALG --pss on|off --dkim on|off`, by the same rules: a member not sent stays as it is; `"hash": "default"` and `false` go back to the defaults; DKIM is turned on only while one of the tenant\'s domains has an active DKIM key (422 KEY_INVALID otherwise). In force from the next message on every node. Audited (tenant.settings). Only the caller key\'s own tenant: any other name is 404.',
  params: TenantPath,
  body: { description: 'The settings to change (JSON; application/merge-patch+json too), at most 4 KiB.', content: { 'application/json': TenantSettingsChange, 'application/merge-patch+json': TenantSettingsChange } },
  responses: { 200: { description: 'The settings now in force.', contentType: 'application/json', schema: TenantSettings }, ...problems([400, 401, 403, 404, 413, 415, 422, 429]) },
};

export const CREATE_BATCH: RouteSpec = {
  method: 'post', path: '/api/v1/batches', operationId: 'createBatch', scope: 'sign', audit: 'batches.create',
  summary: 'Upload a batch of messages to sign',
  description: 'The body is many messages: an mbox (application/mbox, each message after its "From " line, mboxrd quoting), NDJSON (application/x-ndjson, one {"message": "..."} or {"base64": "..."} object a line) or multipart/mixed (one message a part; multipart/form-data too). It is streamed to storage as it arrives and never held in memory whole; the answer (202, Location: /api/v1/batches/{id}) comes once the whole upload is stored. The nodes of the service then sign it, each message by POST /api/v1/sign\'s rules with the query\'s options; a message that would be refused there is reported and skipped, never signed. Send Idempotency-Key to make a retry safe. Limits: --max-message-size per message, --max-batch-size per upload (413), --max-batch-messages (413), 10 unfinished batches per tenant (429).',
  query: SignQuery,
  headers: IdempotencyKeyHeader,
  body: { description: 'The messages.', content: { 'application/mbox': undefined, 'application/x-ndjson': NdjsonMessage, 'multipart/mixed': undefined } },
  responses: {
    202: { description: 'Stored and queued (or, for a retry with the same Idempotency-Key, the batch that upload made). Location names it.', contentType: 'application/json', schema: Batch },
    ...problems([400, 401, 403, 409, 413, 415, 422, 429]),
  },
};

export const LIST_BATCHES: RouteSpec = {
  method: 'get', path: '/api/v1/batches', operationId: 'listBatches', scope: 'sign', audit: 'batches.list',
  summary: 'The tenant\'s batches, newest first',
  description: 'Every batch of the caller\'s tenant that is kept (until --batch-retention after it finished, or deleted), whichever key uploaded it, newest first, with its progress (failures are listed by GET /api/v1/batches/{id}). Paged: `limit` per page (default 50, at most 100); `next` names the following page.',
  query: BatchListQuery,
  responses: { 200: { description: 'A page of batches.', contentType: 'application/json', schema: BatchList }, ...problems([400, 401, 403, 429]) },
};

export const GET_BATCH: RouteSpec = {
  method: 'get', path: '/api/v1/batches/{id}', operationId: 'getBatch', scope: 'sign', audit: 'batches.get',
  summary: 'A batch\'s progress and failures',
  description: 'State (receiving, queued, running, done), counts (total, signed, failed, pending) and the failed messages by index with their code and reason, 1,000 at a time. Only the tenant\'s own batches: any other id is 404.',
  params: BatchPath,
  query: BatchQuery,
  responses: { 200: { description: 'The batch.', contentType: 'application/json', schema: Batch }, ...problems([400, 401, 403, 404, 429]) },
};

export const BATCH_RESULT: RouteSpec = {
  method: 'get', path: '/api/v1/batches/{id}/result', operationId: 'getBatchResult', scope: 'sign', audit: 'batches.result',
  summary: 'The signed messages of a finished batch, as an mbox',
  description: 'The signed messages in upload order, failed ones left out (their indexes are in GET /api/v1/batches/{id}), as an mbox (mboxrd): each after a "From " line, the upload\'s own for an mbox upload, "From MAILER-DAEMON <date>" otherwise. Streamed; Content-Length is exact. 409 CONFLICT until the batch is done.',
  params: BatchPath,
  responses: { 200: { description: 'The signed messages.', contentType: 'application/mbox' }, ...problems([401, 403, 404, 409, 429]) },
};

export const DELETE_BATCH: RouteSpec = {
  method: 'delete', path: '/api/v1/batches/{id}', operationId: 'deleteBatch', scope: 'sign', audit: 'batches.delete',
  summary: 'Delete a batch and its result',
  description: 'Removes the batch, its messages and its result now (a batch being signed stops; what is not signed yet never is). Finished batches are removed anyway after the service\'s retention (kakitome serve --batch-retention, default 24 hours). Its Idempotency-Key is free again.',
  params: BatchPath,
  responses: { 204: { description: 'Deleted.' }, ...problems([401, 403, 404, 429]) },
};

export const HEALTH: RouteSpec = {
  method: 'get', path: '/healthz', operationId: 'health',
  summary: 'Liveness and store reachability',
  description: '200 when the store answers: status "ok", or "degraded" while the batch thread starts again after it died or waits for the store (uploads are still taken and queued). 503 (problem details) when the store does not answer, the server is shutting down, or its batch thread died too often to be started again (this node would sign no batch).',
  responses: { 200: { description: 'Healthy.', contentType: 'application/json', schema: Health }, 503: { description: 'Not ready.', contentType: 'application/problem+json' } },
};

export const METRICS: RouteSpec = {
  method: 'get', path: '/metrics', operationId: 'metrics',
  summary: 'Counters in the Prometheus text format',
  description: 'Requests by route, method and status; durations; messages by operation and outcome. No tenant, address or key appears.',
  responses: { 200: { description: 'Prometheus text format 0.0.4.', contentType: 'text/plain; version=0.0.4' } },
};

export const OPENAPI: RouteSpec = {
  method: 'get', path: '/api/v1/openapi.json', operationId: 'openapi',
  summary: 'This document',
  description: 'The OpenAPI 3.1 description of the API, generated from the schemas the server validates with.',
  responses: { 200: { description: 'OpenAPI 3.1 document.', contentType: 'application/json' } },
};

export const ROUTES: RouteSpec[] = [SIGN, VERIFY, ENCRYPT, DECRYPT, IDENTITIES, ADD_IDENTITY, RETIRE_IDENTITY, TENANT_SETTINGS, CHANGE_TENANT_SETTINGS, CREATE_BATCH, LIST_BATCHES, GET_BATCH, BATCH_RESULT, DELETE_BATCH, HEALTH, METRICS, OPENAPI];
