/**
 * Errors as pages in the reader's language. The status and the stable code come
 * from the error (problem.ts decides them as for the API); the words are the
 * console's. Anything unexpected is a 500 whose details go to the log only.
 */
import { isKakitomeError } from '../../errors.ts';
import { ProblemError } from '../problem.ts';
import { CrossSiteRequestError } from './check-request.ts';
import type { ConsoleContext, ConsoleView } from './console-context.ts';
import { h, notice, page, formatBytes } from './render.ts';

export function errorPage(cx: ConsoleContext, v: ConsoleView, e: unknown, requestId: string): { response: Response; code: string; text: string; status: number } {
  const t = v.t.errors;
  let status = 500;
  let text = t.internal;
  let code = 'INTERNAL';
  let headers: Record<string, string> = {};
  if (e instanceof ProblemError) {
    status = e.status;
    code = e.code;
    headers = e.headers;
    if (status === 413) text = t.tooLarge(formatBytes(Number(e.headers['x-limit-bytes'] ?? cx.checkMaxBytes)));
    else if (status === 429) text = t.rateLimited(Number(e.headers['retry-after'] ?? '60'));
    else if (e instanceof CrossSiteRequestError) text = t.crossSite;
    else if (status === 403) text = t.forbidden;
    else if (status === 404) text = t.notFound;
    else if (status === 401) text = t.signInFirst;
    else if (status < 500) text = t.badForm;
  } else if (isKakitomeError(e)) {
    status = 422;
    code = e.code;
    text = e.message;
  }
  if (status >= 500) {
    cx.service.log({ time: new Date().toISOString(), level: 'error', msg: 'console error', request: requestId, error: e instanceof Error ? `${e.name}: ${e.message}` : String(e) });
  }
  const body = h`${notice(status >= 500 ? 'bad' : 'warn', text)}<p><a href="/">${t.backHome}</a></p>`;
  return { response: page(v, { title: t.title, body, status, headers }), code, text, status };
}
