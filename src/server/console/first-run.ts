/**
 * First run: while the store has no administrator, `kakitome serve` prints a
 * one-time setup link (a fresh 256-bit secret each start, valid for an hour,
 * replacing any earlier one, used up by the setup page). It goes to the terminal,
 * never to the JSON log: whoever reads the terminal installed the console.
 */
import type { ConsoleContext } from './console-context.ts';

export const SETUP_LINK_TTL_MS = 60 * 60_000;

export async function issueSetupLink(cx: ConsoleContext): Promise<{ url: string; expiresAt: Date } | undefined> {
  if ((await cx.people.countAdministrators()) > 0) return undefined;
  const { secret, expiresAt } = await cx.sessions.issueLink('setup', SETUP_LINK_TTL_MS);
  return { url: `${cx.origin.baseUrl}/setup/${secret}`, expiresAt };
}
