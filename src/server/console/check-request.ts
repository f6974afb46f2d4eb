/**
 * Cross-site request forgery defence for every unsafe method (POST and the rest):
 * the browser says where the request comes from, and anything not from the
 * console itself is refused before a handler runs.
 * - Sec-Fetch-Site (Fetch Metadata), when present, must be 'same-origin';
 * - Origin must be present and one of the console's origins (console-origin.ts).
 * Every browser this console supports sends Origin on a POST; a client that sends
 * neither header is refused too (a script calling the console sends Origin
 * itself). No token is needed: the check cannot be satisfied from another site.
 */
import { ProblemError } from '../problem.ts';
import type { ConsoleOrigin } from './console-origin.ts';

/** The refusal of a request that does not come from the console itself (403). */
export class CrossSiteRequestError extends ProblemError {
  constructor() {
    super(403, 'FORBIDDEN', 'The request does not come from the console (Origin, Sec-Fetch-Site): refused.');
  }
}

export type RequestOriginCheck = 'same-origin' | 'cross-site';

export function checkRequestOrigin(headers: { get(name: string): string | null }, origin: ConsoleOrigin): RequestOriginCheck {
  const site = headers.get('sec-fetch-site');
  if (site !== null && site !== 'same-origin') return 'cross-site';
  const from = headers.get('origin');
  if (from === null || !origin.origins.has(from.toLowerCase())) return 'cross-site';
  return 'same-origin';
}

/** True when the Host header names the console (DNS rebinding defence). */
export function isConsoleHost(host: string | undefined, origin: ConsoleOrigin): boolean {
  return host !== undefined && origin.hosts.has(host.toLowerCase());
}

export function isUnsafeMethod(method: string): boolean {
  return method !== 'GET' && method !== 'HEAD' && method !== 'OPTIONS';
}
