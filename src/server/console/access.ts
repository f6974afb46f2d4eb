/**
 * Who may use a console route, decided on the server for every request (the
 * navigation only hides what a person cannot use; it enforces nothing).
 *
 * - 'public': anyone, signed in or not (sign-in, the first-run and invitation
 *   links, the language switch, the static assets);
 * - 'check': the "is this mail genuine?" page: anyone, or signed-in people only,
 *   as the organisation's setting says;
 * - 'signed-in': any signed-in person (their own certificate, sign-out);
 * - a list of roles: a signed-in person holding one of them. An administrator
 *   holds every right: 'administrator' is in every list (routes declare it).
 */
import type { ConsoleRole, Person } from '../../store/people-directory.ts';

export type Access = 'public' | 'check' | 'signed-in' | readonly ConsoleRole[];

/** The role groups the route tables (console-routes.ts, admin-routes.ts, custody-routes.ts) grant routes to. */
export const STAFF = ['administrator', 'registration-officer', 'auditor', 'helpdesk'] as const;
export const PEOPLE_READERS = ['administrator', 'registration-officer', 'helpdesk'] as const;
export const REGISTRARS = ['administrator', 'registration-officer'] as const;
export const ADMINISTRATORS = ['administrator'] as const;
export const AUDITORS = ['administrator', 'auditor'] as const;
export const POLICY_READERS = ['administrator', 'auditor', 'helpdesk'] as const;
export const EXPLAINERS = ['administrator', 'helpdesk'] as const;

export type AccessDecision = 'allowed' | 'sign-in' | 'forbidden';

export function decideAccess(access: Access, person: Person | undefined, checkPage: 'public' | 'signed-in'): AccessDecision {
  if (access === 'public') return 'allowed';
  if (access === 'check' && checkPage === 'public') return 'allowed';
  if (!person) return 'sign-in';
  if (access === 'check' || access === 'signed-in') return 'allowed';
  return person.roles.some((r) => access.includes(r)) ? 'allowed' : 'forbidden';
}

/** True when the person holds a role that opens any administration page. */
export function hasStaffRole(person: Person | undefined): boolean {
  return (person?.roles.length ?? 0) > 0;
}
