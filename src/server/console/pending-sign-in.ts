/**
 * A sign-in that passed its first step (the password, or a sign-in link) and
 * waits for the person's passkey. The browser holds a `__Host-` cookie with a
 * 256-bit secret (HttpOnly, SameSite=Lax, 5 minutes); the store keeps only its
 * SHA-256 as a single-use 'second-factor' secret bound to the person
 * (console-sessions.ts), so any node can finish it and it cannot be finished twice.
 * No session exists until the passkey is proven.
 */
import type { Context } from 'hono';
import { getCookie } from 'hono/cookie';
import { serialize } from 'hono/utils/cookie';
import { PasskeyDirectory } from '../../store/console-passkeys.ts';
import type { Person } from '../../store/people-directory.ts';
import type { ConsoleContext } from './console-context.ts';
import { safeNext, seeOther } from './render.ts';

export const PENDING_COOKIE = '__Host-kakitome-pending';
export const PENDING_TTL_MS = 5 * 60_000;

export async function startPendingSignIn(cx: ConsoleContext, person: Person, oidcIssuer?: string): Promise<string> {
  const { secret } = await cx.sessions.issueLink('second-factor', PENDING_TTL_MS, person.id, oidcIssuer ? { oidcIssuer } : {});
  return serialize(PENDING_COOKIE, secret, { path: '/', secure: true, httpOnly: true, sameSite: 'Lax', maxAge: PENDING_TTL_MS / 1000 });
}

export function clearPendingCookie(): string {
  return serialize(PENDING_COOKIE, '', { path: '/', secure: true, httpOnly: true, sameSite: 'Lax', maxAge: 0 });
}

export function readPendingSecret(c: Context): string | undefined {
  return getCookie(c, PENDING_COOKIE);
}

/** The person a pending sign-in is for, if it is still valid and they may still sign in. */
export async function pendingPerson(cx: ConsoleContext, secret: string | undefined): Promise<Person | undefined> {
  return (await pendingSignIn(cx, secret))?.person;
}

/** The pending sign-in: its person, and the provider when its first step was single sign-on. */
export async function pendingSignIn(cx: ConsoleContext, secret: string | undefined): Promise<{ person: Person; oidcIssuer?: string } | undefined> {
  const link = await cx.sessions.checkLink(secret, 'second-factor');
  const person = link?.personId ? await cx.people.findPerson(link.personId) : undefined;
  if (!person || person.disabledAt || !person.hasPassword) return undefined;
  return { person, ...(link?.oidcIssuer ? { oidcIssuer: link.oidcIssuer } : {}) };
}

/** A 303 with several cookies (Headers, since a record holds one Set-Cookie). */
export function seeOtherWithCookies(location: string, cookies: readonly string[]): Response {
  const headers = new Headers({ location });
  for (const c of cookies) headers.append('set-cookie', c);
  return new Response(null, { status: 303, headers });
}

/** After the first step: straight in without passkeys, else to the passkey step. */
export async function afterFirstStep(cx: ConsoleContext, person: Person, next: string, oidcIssuer?: string): Promise<Response | undefined> {
  if ((await new PasskeyDirectory(cx.service.store).count(person.id)) === 0) return undefined;
  const cookie = await startPendingSignIn(cx, person, oidcIssuer);
  return seeOther(`/sign-in/passkey?next=${encodeURIComponent(safeNext(next))}`, { 'set-cookie': cookie });
}
