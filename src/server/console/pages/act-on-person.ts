/**
 * Who may act on whom on a person's page and the pages it leads to (issue,
 * renew, leave, key recovery): a registration officer or an administrator, and
 * only an administrator on a person who holds a role (a registration officer
 * could otherwise lock out, or read the keys of, an administrator).
 */
import type { Person } from '../../../store/people-directory.ts';
import { ProblemError } from '../../problem.ts';
import type { ConsoleContext, ConsoleView } from '../console-context.ts';

export function isRegistrar(v: ConsoleView): boolean {
  return v.person?.roles.some((r) => r === 'administrator' || r === 'registration-officer') ?? false;
}

/** May the signed-in person act on `p`? Only an administrator acts on a person who holds a role. */
export function mayActOn(v: ConsoleView, p: Person): boolean {
  return isRegistrar(v) && (p.roles.length === 0 || v.person!.roles.includes('administrator'));
}

export function refuseUnlessMayActOn(v: ConsoleView, p: Person): void {
  if (!mayActOn(v, p)) throw new ProblemError(403, 'FORBIDDEN', 'Only an administrator acts on a person who holds a role.');
}

export async function findPersonOr404(cx: ConsoleContext, id: string): Promise<Person> {
  const p = id.length <= 100 ? await cx.people.findPerson(id) : undefined;
  if (!p) throw new ProblemError(404, 'NOT_FOUND', 'No such person.');
  return p;
}
