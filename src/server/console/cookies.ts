/**
 * The console's two cookies, both `__Host-` (Secure, Path=/, no Domain: no other
 * host or path can set or shadow them; browsers treat http://127.0.0.1 and
 * localhost as secure, so this holds for a console on loopback too):
 * - the session: HttpOnly, SameSite=Lax, no Max-Age (gone when the browser
 *   closes; the server ends it earlier: idle and absolute limits);
 * - the language: readable by the page, one year.
 */
import { getCookie } from 'hono/cookie';
import type { Context } from 'hono';
import { serialize } from 'hono/utils/cookie';
import type { ConsoleLanguage } from '../../store/people-directory.ts';
import { LANGUAGE_COOKIE } from './messages/choose-language.ts';

export const SESSION_COOKIE = '__Host-kakitome-session';

export function readSessionCookie(c: Context): string | undefined {
  return getCookie(c, SESSION_COOKIE);
}

export function readLanguageCookie(c: Context): string | undefined {
  return getCookie(c, LANGUAGE_COOKIE);
}

export function sessionCookie(secret: string): string {
  return serialize(SESSION_COOKIE, secret, { path: '/', secure: true, httpOnly: true, sameSite: 'Lax' });
}

export function clearSessionCookie(): string {
  return serialize(SESSION_COOKIE, '', { path: '/', secure: true, httpOnly: true, sameSite: 'Lax', maxAge: 0 });
}

export function languageCookie(lang: ConsoleLanguage): string {
  return serialize(LANGUAGE_COOKIE, lang, { path: '/', secure: true, sameSite: 'Lax', maxAge: 365 * 86_400 });
}
