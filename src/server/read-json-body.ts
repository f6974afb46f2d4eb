/**
 * A JSON request body, read within a bound (read-limited-body.ts: 413 past it,
 * before more is read) and checked with the route's schema: 400 MALFORMED for
 * what is not JSON, 400 INVALID_ARGUMENT naming the first member that does not
 * fit. Used by POST /api/v1/identities (issue a certificate) and PATCH
 * /api/v1/tenants/{tenant}/settings.
 */
import { ProblemError } from './problem.ts';
import { readLimitedBody, type IncomingBody } from './read-limited-body.ts';

type Schema<T> = { safeParse(v: unknown): { success: true; data: T } | { success: false; error: { issues: Array<{ path: PropertyKey[]; message: string }> } } };

/** readLimitedBody, with a 413 that names what was too large. */
export async function readBoundedBody(request: Request, limit: number, incoming: IncomingBody | undefined, what: string): Promise<Buffer> {
  try {
    return await readLimitedBody(request, limit, incoming);
  } catch (e) {
    if (e instanceof ProblemError && e.status === 413) throw new ProblemError(413, 'LIMIT', `${what} is larger than ${limit} bytes: it was not read.`);
    throw e;
  }
}

/** `hint`: what to send instead, for the MALFORMED detail (e.g. 'send {"email": "news@example.com"}'). */
export async function readJsonBody<T>(request: Request, incoming: IncomingBody | undefined, schema: Schema<T>, o: { limit: number; hint: string }): Promise<T> {
  const text = (await readBoundedBody(request, o.limit, incoming, 'The JSON body')).toString('utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new ProblemError(400, 'MALFORMED', `The body is not JSON: ${o.hint}.`);
  }
  const r = schema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new ProblemError(400, 'INVALID_ARGUMENT', `${issue.path.map(String).join('.') || 'The body'}: ${issue.message}.`);
  }
  return r.data;
}
