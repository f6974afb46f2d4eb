/**
 * Mail the console sends (sign-in links, invitations, expiry notices): a plain
 * text message in UTF-8, handed to the configured relay (serve --mail-relay,
 * --mail-from) by the same SMTP client the gateway and the submission port relay
 * with (src/smtp/relay-message.ts). Nothing retries here: a refusal is thrown to
 * the caller, which decides (a sign-in link is asked for again; an expiry notice
 * is tried again at the next run).
 *
 * The recipient is a person's stored, validated address; the organisation's name
 * and the subject go into encoded-words, the body into base64: no value can add a
 * header line. Marked Auto-Submitted (RFC 3834) so that auto-replies stay away.
 */
import { randomBytes } from 'node:crypto';
import { formatHeaderField } from '../../mime/build-entity.ts';
import { libmime } from '../../mime/libmime.ts';
import { relayMessage } from '../../smtp/relay-message.ts';
import type { ConsoleMailConfig } from '../config.ts';

const RELAY_TIMEOUT_MS = 30_000;

export interface ConsoleMail {
  to: string;
  subject: string;
  text: string;
  /** The display name of From: (the organisation). */
  fromName: string;
}

function rfc5322Date(d: Date): string {
  const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const p = (n: number) => String(n).padStart(2, '0');
  return `${days[d.getUTCDay()]}, ${d.getUTCDate()} ${months[d.getUTCMonth()]} ${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}

/** A header value of one line: control characters (CR, LF, TAB...) become spaces. */
function oneLine(text: string): string {
  return text.replace(/[\p{Cc}\p{Zl}\p{Zp}]+/gu, ' ').trim();
}

/** The message's bytes (CRLF lines). */
export function composeConsoleMail(config: ConsoleMailConfig, mail: ConsoleMail, now = new Date()): Buffer {
  const domain = config.from.slice(config.from.lastIndexOf('@') + 1);
  const body = Buffer.from(mail.text.replace(/\r?\n/g, '\r\n'), 'utf8').toString('base64').replace(/.{76}/g, '$&\r\n');
  return Buffer.concat([
    formatHeaderField('From', `${libmime().encodeWord(oneLine(mail.fromName), 'B')} <${config.from}>`),
    formatHeaderField('To', `<${mail.to}>`),
    formatHeaderField('Subject', oneLine(mail.subject)),
    formatHeaderField('Date', rfc5322Date(now)),
    formatHeaderField('Message-ID', `<${randomBytes(16).toString('hex')}@${domain}>`),
    formatHeaderField('MIME-Version', '1.0'),
    formatHeaderField('Content-Type', 'text/plain; charset=utf-8'),
    formatHeaderField('Content-Transfer-Encoding', 'base64'),
    formatHeaderField('Auto-Submitted', 'auto-generated'),
    Buffer.from(`\r\n${body}\r\n`, 'latin1'),
  ]);
}

/** Sends one message; throws when the relay did not accept it (the error names the relay's answer, never the body). */
export async function sendConsoleMail(config: ConsoleMailConfig, mail: ConsoleMail): Promise<void> {
  const [outcome] = await relayMessage({ nextHop: config.relay, name: config.from.slice(config.from.lastIndexOf('@') + 1), timeoutMs: RELAY_TIMEOUT_MS }, { from: config.from, to: [mail.to] }, composeConsoleMail(config, mail));
  if (outcome?.status !== 'accepted') throw new Error(`The mail relay did not take the message (${outcome?.code ?? 0} ${outcome?.response ?? ''}).`);
}
