/**
 * The password checks a form makes before anything is stored, in the reader's
 * language: the two entries agree, and the length is within password-hash.ts's
 * bounds (which hashPassword enforces again).
 */
import { MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH } from '../../../keys/password-hash.ts';
import type { ConsoleView } from '../console-context.ts';

export function passwordProblem(v: ConsoleView, password: string, again: string): string | undefined {
  if (password !== again) return v.t.setup.passwordsDiffer;
  const length = [...password.normalize('NFC')].length;
  if (length < MIN_PASSWORD_LENGTH || length > MAX_PASSWORD_LENGTH) return v.t.setup.passwordHint;
  return undefined;
}
