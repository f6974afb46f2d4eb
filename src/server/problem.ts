/**
 * Errors as RFC 9457 problem details (application/problem+json), carrying our
 * stable code (src/errors.ts) in the `code` member, so a client branches on the
 * same codes as the library and the CLI. The HTTP status follows from the code;
 * `ProblemError` sets it where the code alone cannot say (LIMIT on the request
 * body is 413, LIMIT inside a message is 422).
 */
import { KakitomeError, isKakitomeError, remedyOf, type ErrorCode, type Remedy } from '../errors.ts';
import { temporaryFailureCause } from './temporary-failure.ts';

export type ProblemCode = ErrorCode | 'INTERNAL';

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ProblemCode;
  /** What would let the request succeed, when the error names it (KakitomeError.remedy, docs/errors.md). */
  remedy?: Remedy;
  /** The request id, also in the request's log line. */
  instance?: string;
}

/** A KakitomeError with the HTTP status it answers with. */
export class ProblemError extends KakitomeError {
  readonly status: number;
  readonly headers: Record<string, string>;
  constructor(status: number, code: ErrorCode, message: string, headers: Record<string, string> = {}, remedy?: Remedy) {
    super(code, message, remedy ? { remedy } : undefined);
    this.name = 'ProblemError';
    this.status = status;
    this.headers = headers;
  }
}

const STATUS: Partial<Record<ProblemCode, number>> = {
  MALFORMED: 400,
  INVALID_ARGUMENT: 400,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  RATE_LIMITED: 429,
  INTERNAL: 500,
};

const TITLES: Record<number, string> = {
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 409: 'Conflict', 413: 'Content Too Large',
  415: 'Unsupported Media Type', 422: 'Unprocessable Content', 429: 'Too Many Requests', 500: 'Internal Server Error', 501: 'Not Implemented', 503: 'Service Unavailable',
};

/**
 * A value of the request (a media type, a path, a parameter's name) as an answer
 * names it: printable ASCII only, at most `max` characters. Problem details are
 * JSON, so nothing is unescaped, but a refusal audited under the caller's key keeps
 * its detail: echoed whole, a 16 KiB Content-Type or path went into the audit log
 * with every refused request, control and 8-bit bytes included.
 */
export function shown(value: string, max = 64): string {
  const printable = value.replace(/[^\x20-\x7e]/g, '?');
  return printable.length > max ? `${printable.slice(0, max)}...` : printable;
}

/** What a 503 for the service's own passing trouble asks the client to wait. */
const RETRY_AFTER_SECONDS = 30;

/**
 * The problem for any thrown value. A KakitomeError keeps its code and message (they
 * are written for people and carry no secret: decryption failures already have one
 * message for every cause); anything else is INTERNAL with a fixed message, its
 * text kept out of the response (it could describe the server's insides), or, when
 * it is the service's passing trouble with its storage, 503 with Retry-After naming
 * only the system's code for it (ENOSPC, SQLITE_BUSY).
 */
export function problemFor(e: unknown, instance?: string): { problem: Problem; headers: Record<string, string> } {
  if (isKakitomeError(e)) {
    // Every other code is about the message or a key: the request was understood and refused.
    const status = e instanceof ProblemError ? e.status : (STATUS[e.code] ?? 422);
    return { problem: { ...makeProblem(status, e.code, e.message, instance), ...remedyOf(e) }, headers: e instanceof ProblemError ? e.headers : {} };
  }
  // The disk full, the store locked or gone (temporary-failure.ts): the request was fine, send it again later.
  const cause = temporaryFailureCause(e);
  if (cause) return { problem: makeProblem(503, 'INTERNAL', `The service cannot use its storage now (${cause}); try again later.`, instance), headers: { 'retry-after': String(RETRY_AFTER_SECONDS) } };
  return { problem: makeProblem(500, 'INTERNAL', 'The service failed on this request; it is logged with the request id.', instance), headers: {} };
}

export function makeProblem(status: number, code: ProblemCode, detail: string, instance?: string): Problem {
  return { type: `urn:kakitome:error:${code}`, title: TITLES[status] ?? 'Error', status, detail, code, ...(instance ? { instance } : {}) };
}

export function problemResponse(p: Problem, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(p), { status: p.status, headers: { 'content-type': 'application/problem+json', ...headers } });
}
