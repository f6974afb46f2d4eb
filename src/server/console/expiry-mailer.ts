/**
 * Sends the expiry notices (src/store/expiry-notices.ts) by the console's mail
 * relay, each in its person's language: once at start and then every
 * `intervalMs` (an hour) on the serve process's main thread. Each notice is
 * claimed in the store before it is sent, so several nodes on one PostgreSQL
 * never both send it; a refused mail releases its claim for the next run.
 */
import type { Store } from '../../store/store.ts';
import { claimNotice, findDueNotices, markNoticeSent, releaseNotice } from '../../store/expiry-notices.ts';
import { OrganisationSettings } from '../../store/organisation-settings.ts';
import type { ConsoleMailConfig } from '../config.ts';
import { sendConsoleMail } from './console-mail.ts';
import { LANGUAGES } from './messages/choose-language.ts';

export const EXPIRY_INTERVAL_MS = 3_600_000;

export interface ExpiryMailerOptions {
  store: Store;
  mail: ConsoleMailConfig;
  /** The console's address, for the link in the mail. */
  baseUrl: string;
  log: (entry: Record<string, unknown>) => void;
}

/** One run: every due notice this node wins is sent. */
export async function sendExpiryNotices(o: ExpiryMailerOptions): Promise<{ sent: number; failed: number }> {
  const now = o.store.now();
  const organisation = (await new OrganisationSettings(o.store).name()) ?? 'Kakitome';
  let sent = 0;
  let failed = 0;
  for (const n of await findDueNotices(o.store, now)) {
    if (!(await claimNotice(o.store, n, now))) continue;
    const t = LANGUAGES[n.language ?? 'en'].expiryMail;
    const until = new Intl.DateTimeFormat(n.language === 'ja' ? 'ja-JP' : 'en-GB', { dateStyle: 'long', timeZone: 'UTC' }).format(n.notAfter);
    try {
      await sendConsoleMail(o.mail, { to: n.email, fromName: organisation, subject: t.subject(n.daysLeft), text: t.body(until, n.daysLeft, `${o.baseUrl}/me`) });
      await markNoticeSent(o.store, n, o.store.now());
      await o.store.actingAs('serve').audit('console.expiry-notice', n.email, `${n.threshold} days`);
      sent++;
    } catch (e) {
      await releaseNotice(o.store, n);
      failed++;
      o.log({ time: new Date().toISOString(), level: 'warn', msg: 'expiry notice not sent', error: e instanceof Error ? e.message : String(e) });
    }
  }
  return { sent, failed };
}

/** Runs now and every `intervalMs`; stop() waits for a run in progress. */
export function startExpiryNotices(o: ExpiryMailerOptions & { intervalMs?: number }): { stop(): Promise<void> } {
  let running: Promise<unknown> = Promise.resolve();
  const run = () => {
    running = sendExpiryNotices(o).catch((e: unknown) => o.log({ time: new Date().toISOString(), level: 'error', msg: 'expiry notices failed', error: e instanceof Error ? e.message : String(e) }));
  };
  run();
  const timer = setInterval(run, o.intervalMs ?? EXPIRY_INTERVAL_MS);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
