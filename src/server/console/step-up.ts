/**
 * Step-up re-authentication ("sudo mode"): before its most dangerous actions
 * (a private key or a PKCS#12 leaves the store, or administrator rights are
 * given: the list and the reasons are in docs/console.md) the console asks the
 * person to prove their presence again, so a stolen session cookie, a screen left
 * unlocked or a planted session is not enough.
 *
 * - A proof is made by the factor the person has (pages/step-up.ts): a passkey
 *   with user verification when they have one (their sign-in is two-step, so the
 *   password alone is not enough); else the password, or a fresh single sign-on
 *   (prompt=login, max_age=0, the ID token's auth_time recent, the same subject).
 *   Completing a sign-in is a proof too, except single sign-on whose auth_time is
 *   not recent (the provider may have reused an old session of its own).
 * - It holds for `cx.stepUpWindowMs` (default 5 minutes), bound to the session
 *   that made it (console-sessions.ts: a row keyed by a digest of the session's
 *   id): another session of the same person, or a new one, has none.
 * - A route declares it (ConsoleRoute.stepUp: the page to come back to), or a
 *   handler asks once it knows what the form grants (administrator role, admin
 *   API scope). Without a fresh proof the request does nothing and the browser is
 *   sent to /confirm?next=<that page>: the form is not replayed (it may hold a
 *   passphrase), the person submits it again once back.
 * - Proofs and refused attempts are audited (`console.step-up`,
 *   `console.step-up.refused`, with the method, never what was typed); attempts
 *   are rate-limited per person (rate-limit.ts).
 */
import { ProblemError } from '../problem.ts';
import type { Person } from '../../store/people-directory.ts';
import type { ConsoleContext, ConsoleView } from './console-context.ts';
import { safeNext } from './render.ts';

export const DEFAULT_STEP_UP_WINDOW_MS = 5 * 60_000;
/** How old a single sign-on's auth_time may be to prove presence (the person's time at the provider included). */
export const OIDC_FRESH_MS = 5 * 60_000;
/** How far the provider's clock may run ahead of ours. */
export const OIDC_CLOCK_SKEW_MS = 60_000;

export type StepUpMethod = 'password' | 'passkey' | 'oidc' | 'sign-in';

/** The refusal of a dangerous action without a fresh proof: create-console.ts answers it with a 303 to /confirm. */
export class StepUpRequiredError extends ProblemError {
  /** The console page to come back to once the proof is made. */
  readonly back: string;
  constructor(back: string) {
    super(401, 'UNAUTHENTICATED', 'This action needs a fresh proof of presence (step-up re-authentication).');
    this.back = safeNext(back);
  }
}

/** The path of the page to come back to: the route's pattern with this request's parameters. */
export function stepUpBack(pattern: string, params: Record<string, string>): string {
  return pattern.replace(/:([a-z]+)/g, (_m, name: string) => encodeURIComponent(params[name] ?? ''));
}

/** Until when this session's proof holds, if it does now. */
export function freshProofUntil(cx: ConsoleContext, v: ConsoleView): Promise<Date | undefined> {
  return v.person ? cx.sessions.stepUpUntil(v.sessionSecret, v.person.id) : Promise.resolve(undefined);
}

/** Throws StepUpRequiredError unless this session holds a fresh proof. */
export async function requireStepUp(cx: ConsoleContext, v: ConsoleView, back: string): Promise<void> {
  if (!(await freshProofUntil(cx, v))) throw new StepUpRequiredError(back);
}

/** Records a proof for the session `sessionSecret` of `person`; audited unless it is the sign-in itself (audited as such). */
export async function recordStepUp(cx: ConsoleContext, sessionSecret: string, person: Person, method: StepUpMethod, detail?: string): Promise<void> {
  const until = await cx.sessions.recordStepUp(sessionSecret, person.id, cx.stepUpWindowMs);
  if (method === 'sign-in') return;
  await cx.service.store.actingAs(`console:${person.email}`).audit('console.step-up', person.email, `${detail ?? method}, until ${until.toISOString()}`);
}

export async function auditStepUpRefused(cx: ConsoleContext, person: Person, why: string): Promise<void> {
  await cx.service.store.actingAs(`console:${person.email}`).audit('console.step-up.refused', person.email, why.slice(0, 300));
}

/** True when an ID token's auth_time (seconds) says the person signed in at the provider within OIDC_FRESH_MS of `now`. */
export function isRecentAuthTime(authTime: number | undefined, now: Date): boolean {
  if (typeof authTime !== 'number' || !Number.isFinite(authTime)) return false;
  const age = now.getTime() - authTime * 1000;
  return age <= OIDC_FRESH_MS && age >= -OIDC_CLOCK_SKEW_MS;
}
