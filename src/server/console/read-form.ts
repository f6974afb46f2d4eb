/**
 * Reads a console form within a byte limit (413 before reading past it:
 * read-limited-body.ts), then parses it with the platform's own form parser
 * (URL-encoded or multipart). Fields are read as bounded strings: a value longer
 * than asked for is refused, never cut silently.
 */
import type { Context } from 'hono';
import { readLimitedBody, type IncomingBody } from '../read-limited-body.ts';
import { ProblemError } from '../problem.ts';

const FORM_TYPES = new Set(['application/x-www-form-urlencoded', 'multipart/form-data']);

export async function readForm(c: Context, limit: number): Promise<FormData> {
  const type = (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (!FORM_TYPES.has(type)) throw new ProblemError(415, 'INVALID_ARGUMENT', 'A console form is sent as application/x-www-form-urlencoded or multipart/form-data.');
  const incoming = (c.env as { incoming?: IncomingBody } | undefined)?.incoming;
  let body: Buffer;
  try {
    body = await readLimitedBody(c.req.raw, limit, incoming);
  } catch (e) {
    // The page names the limit of this form, not the API's.
    if (e instanceof ProblemError && e.status === 413) throw new ProblemError(413, 'LIMIT', `The form is larger than ${limit} bytes: it was not read.`, { 'x-limit-bytes': String(limit) });
    throw e;
  }
  try {
    return await new Response(body, { headers: { 'content-type': c.req.header('content-type')! } }).formData();
  } catch {
    throw new ProblemError(400, 'MALFORMED', 'The form could not be read.');
  }
}

/** A text field, trimmed (passwords: `trim` false); '' when absent; MALFORMED when longer than `max` characters or a file. */
export function textField(form: FormData, name: string, max = 1000, trim = true): string {
  const v = form.get(name);
  if (v === null) return '';
  if (typeof v !== 'string' || v.length > max) throw new ProblemError(400, 'MALFORMED', `The form field ${name} is not a text of at most ${max} characters.`);
  return trim ? v.trim() : v;
}

/** Every value of a repeated text field (check boxes), at most `max` of them. */
export function textFields(form: FormData, name: string, max = 20): string[] {
  const all = form.getAll(name);
  if (all.length > max || all.some((v) => typeof v !== 'string' || v.length > 200)) throw new ProblemError(400, 'MALFORMED', `The form field ${name} is malformed.`);
  return all as string[];
}

/** An uploaded file's bytes; undefined when no file was chosen. */
export async function fileField(form: FormData, name: string): Promise<Buffer | undefined> {
  const v = form.get(name);
  if (v === null || typeof v === 'string') return undefined;
  if (v.size === 0) return undefined;
  return Buffer.from(await v.arrayBuffer());
}
