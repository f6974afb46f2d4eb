/**
 * The body of POST /api/v1/identities, by its media type, read within bounds
 * before anything is parsed (read-limited-body.ts: 413 past the bound):
 * - application/pkcs12 (or application/x-pkcs12): the file itself, its password
 *   in the Kakitome-Pkcs12-Password header field;
 * - multipart/form-data: the fields `pkcs12` (the file) and `password`;
 * - application/json: an IssueIdentity request (the internal CA issues one).
 * Anything else is 415. A password never reaches a log line or a problem detail.
 */
import type { z } from 'zod';
import { ProblemError, shown } from './problem.ts';
import type { IncomingBody } from './read-limited-body.ts';
import { readBoundedBody, readJsonBody } from './read-json-body.ts';
import { IssueIdentity } from './schemas.ts';

/** importPkcs12's own bound on a file (4 MiB), which the CLI applies too. */
export const MAX_PKCS12_BYTES = 4 * 1024 * 1024;
/** Room for the multipart framing and the password field around the file. */
const MULTIPART_OVERHEAD = 64 * 1024;
const MAX_JSON_BYTES = 16 * 1024;
export const PASSWORD_HEADER = 'kakitome-pkcs12-password';

export type IdentityUpload =
  | { kind: 'pkcs12'; bytes: Uint8Array; password: string }
  | { kind: 'issue'; request: z.infer<typeof IssueIdentity> };

function mediaType(request: Request): string {
  return (request.headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
}

function invalid(message: string): ProblemError {
  return new ProblemError(400, 'INVALID_ARGUMENT', message);
}

async function readForm(request: Request, incoming: IncomingBody | undefined): Promise<IdentityUpload> {
  const body = await readBoundedBody(request, MAX_PKCS12_BYTES + MULTIPART_OVERHEAD, incoming, 'The form');
  let form: FormData;
  try {
    // The whole body is in hand and bounded: the platform's parser reads it, nothing more.
    form = await new Response(body, { headers: { 'content-type': request.headers.get('content-type')! } }).formData();
  } catch {
    throw new ProblemError(400, 'MALFORMED', 'The multipart/form-data body could not be read: send the fields pkcs12 (the file) and password (curl -F pkcs12=@news.p12 -F password=...).');
  }
  const files = form.getAll('pkcs12');
  const passwords = form.getAll('password');
  if (files.length !== 1 || typeof files[0] === 'string') throw invalid('The form needs exactly one file field pkcs12 (curl -F pkcs12=@news.p12).');
  if (passwords.length !== 1 || typeof passwords[0] !== 'string') throw invalid('The form needs exactly one text field password (send it empty for a file without a password).');
  const file = files[0] as File;
  if (file.size > MAX_PKCS12_BYTES) throw new ProblemError(413, 'LIMIT', `The PKCS#12 file is larger than ${MAX_PKCS12_BYTES} bytes: it was not read.`);
  if (passwords[0].length > 1024) throw invalid('The password is longer than 1024 characters.');
  return { kind: 'pkcs12', bytes: new Uint8Array(await file.arrayBuffer()), password: passwords[0] };
}

export async function readIdentityUpload(request: Request, incoming: IncomingBody | undefined): Promise<IdentityUpload> {
  const type = mediaType(request);
  if (type === 'application/pkcs12' || type === 'application/x-pkcs12') {
    const password = request.headers.get(PASSWORD_HEADER);
    if (password === null) throw invalid('Send the PKCS#12 password in the Kakitome-Pkcs12-Password header field (empty for none), or use a multipart/form-data body with the fields pkcs12 and password.');
    if (password.length > 1024) throw invalid('The password is longer than 1024 characters.');
    return { kind: 'pkcs12', bytes: await readBoundedBody(request, MAX_PKCS12_BYTES, incoming, 'The PKCS#12 file'), password };
  }
  if (type === 'multipart/form-data') return readForm(request, incoming);
  if (type === 'application/json') {
    return { kind: 'issue', request: await readJsonBody(request, incoming, IssueIdentity, { limit: MAX_JSON_BYTES, hint: 'send {"email": "news@example.com"} to have the internal CA issue an identity' }) };
  }
  throw new ProblemError(415, 'INVALID_ARGUMENT', `Send a PKCS#12 file as application/pkcs12 (password in Kakitome-Pkcs12-Password) or as multipart/form-data (fields pkcs12 and password), or application/json {"email": ...} to issue one${type ? `, not ${shown(type)}` : ''}.`);
}
