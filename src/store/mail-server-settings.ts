/**
 * The organisation's mail servers as people's mail programs reach them (IMAP in,
 * SMTP submission out), for the iPhone/iPad configuration profile's Mail account
 * payload (com.apple.mail.managed): with them the profile sets up the account with
 * S/MIME signing and encryption already on. Kept in the settings table (name
 * mail.server, one JSON value); set by an administrator on the console.
 *
 * Only TLS connections are described: implicit TLS (IMAPS 993, submissions 465) or
 * STARTTLS (143, 587); a profile that sends passwords in clear text is not made.
 */
import { KakitomeError } from '../errors.ts';
import { isMailDomain } from '../x509/mailbox-address.ts';
import type { Store } from './store.ts';

export type MailTls = 'implicit' | 'starttls';
export type MailUsername = 'address' | 'local-part';

export interface MailServer {
  host: string;
  port: number;
  tls: MailTls;
}

export interface MailServerSettings {
  imap: MailServer;
  smtp: MailServer;
  /** What people sign in to the servers with: their whole address (default) or the part before "@". */
  username: MailUsername;
}

const SETTING = 'mail.server';

function checkServer(what: string, s: { host?: unknown; port?: unknown; tls?: unknown }): MailServer {
  const host = typeof s.host === 'string' ? s.host.trim().toLowerCase().replace(/\.$/, '') : '';
  if (!isMailDomain(host)) throw new KakitomeError('INVALID_ARGUMENT', `The ${what} server is a host name such as mail.example.co.jp (internationalised names in their xn-- form), not "${String(s.host).slice(0, 80)}".`);
  const port = typeof s.port === 'string' ? Number(s.port) : s.port;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) throw new KakitomeError('INVALID_ARGUMENT', `The ${what} port is a number from 1 to 65535.`);
  if (s.tls !== 'implicit' && s.tls !== 'starttls') throw new KakitomeError('INVALID_ARGUMENT', `The ${what} server is reached with TLS ("implicit") or STARTTLS ("starttls"): a profile never sends passwords in clear text.`);
  return { host, port, tls: s.tls };
}

/** Checks settings typed by an administrator (or read back from the store). */
export function checkMailServerSettings(s: { imap?: Partial<Record<keyof MailServer, unknown>>; smtp?: Partial<Record<keyof MailServer, unknown>>; username?: unknown }): MailServerSettings {
  const username = s.username ?? 'address';
  if (username !== 'address' && username !== 'local-part') throw new KakitomeError('INVALID_ARGUMENT', 'The user name is "address" or "local-part".');
  return { imap: checkServer('IMAP', s.imap ?? {}), smtp: checkServer('SMTP', s.smtp ?? {}), username };
}

export async function readMailServerSettings(store: Store): Promise<MailServerSettings | undefined> {
  const rows = await store.engine.all('SELECT value FROM settings WHERE name = ?', [SETTING]);
  if (!rows[0]) return undefined;
  try {
    return checkMailServerSettings(JSON.parse(String(rows[0].value)) as Parameters<typeof checkMailServerSettings>[0]);
  } catch {
    // A row edited by hand into something else: no Mail payload rather than a wrong one.
    return undefined;
  }
}

/** Saves the settings (or removes them with undefined); audited. */
export async function saveMailServerSettings(store: Store, settings: MailServerSettings | undefined): Promise<void> {
  const checked = settings ? checkMailServerSettings(settings) : undefined;
  await store.engine.transaction(async (tx) => {
    await tx.run('DELETE FROM settings WHERE name = ?', [SETTING]);
    if (checked) await tx.run('INSERT INTO settings (name, value) VALUES (?, ?)', [SETTING, JSON.stringify(checked)]);
  });
  await store.audit('organisation.mail-server', undefined, checked ? `IMAP ${checked.imap.host}:${checked.imap.port} ${checked.imap.tls}, SMTP ${checked.smtp.host}:${checked.smtp.port} ${checked.smtp.tls}, user name ${checked.username}` : 'removed');
}
