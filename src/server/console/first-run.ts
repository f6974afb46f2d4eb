/**
 * First run: while the store has no administrator, `kakitome serve` prints a
 * one-time setup link (a fresh 256-bit secret each start, valid for an hour,
 * replacing any earlier one, used up by the setup page). It goes to the terminal,
 * never to the JSON log: whoever reads the terminal installed the console.
 *
 * The store may have its CA already (`kakitome ca init` before the first serve):
 * the link's text and the setup page then say so, and setup keeps that CA.
 */
import { listCertificateAuthorities } from '../../ca/certificate-authority.ts';
import type { ConsoleContext } from './console-context.ts';

export const SETUP_LINK_TTL_MS = 60 * 60_000;

export interface SetupLink {
  url: string;
  expiresAt: Date;
  /** The issuing CA the store has already (setup keeps it); absent: setup creates or imports one. */
  caName?: string;
}

/** The name of the store's issuing CA (the latest, as `ca issue` takes it), if it has one. */
export async function findExistingCaName(cx: ConsoleContext): Promise<string | undefined> {
  return (await listCertificateAuthorities(cx.service.store)).filter((ca) => ca.role === 'issuing').at(-1)?.name;
}

export async function issueSetupLink(cx: ConsoleContext): Promise<SetupLink | undefined> {
  if ((await cx.people.countAdministrators()) > 0) return undefined;
  const { secret, expiresAt } = await cx.sessions.issueLink('setup', SETUP_LINK_TTL_MS);
  const caName = await findExistingCaName(cx);
  return { url: `${cx.origin.baseUrl}/setup/${secret}`, expiresAt, ...(caName === undefined ? {} : { caName }) };
}

/** What the terminal shows with the link: what it sets up (a CA only when the store has none). */
export function describeSetupLink(link: SetupLink, now: Date): string {
  const creates = link.caName === undefined
    ? 'the first administrator, your CA and your mail domains'
    : `the first administrator and your mail domains (the store's CA, ${link.caName}, is kept)`;
  return `\nKakitome is not set up yet. Open this link within ${Math.round((link.expiresAt.getTime() - now.getTime()) / 60_000)} minutes to create ${creates}:\n\n  ${link.url}\n\nIt works once; restart kakitome serve for a new one.\n\n`;
}
