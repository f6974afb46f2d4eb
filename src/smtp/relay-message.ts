/**
 * Hands one message to the next hop (the gateway: Postfix's reinjection listener;
 * the signing service's submission port: its --relay) with
 * nodemailer's SMTP connection, and says per recipient what the next hop answered:
 * accepted (2xx to the final dot), temporary (4xx, or no answer at all: refused
 * connection, timeout, dropped connection) or permanent (5xx). Nothing here retries:
 * the gateway's answer to Postfix (reply-for-outcomes.ts) leaves retrying to
 * Postfix's queue.
 */
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import type { HostPort } from './parse-host-port.ts';

export type OutcomeStatus = 'accepted' | 'temporary' | 'permanent';

export interface RecipientOutcome {
  recipient: string;
  status: OutcomeStatus;
  /** The next hop's reply code; 0 when there was none (connection refused, timeout, dropped). */
  code: number;
  /** The next hop's reply, or what went wrong, for the reply to Postfix (one line, no secrets). */
  response: string;
  /** Set when the outcome is the gateway's own (a policy bounce, a hold), not the next hop's: the reply carries `response` as it is, with this enhanced status code (RFC 3463). */
  own?: { enhanced: string };
}

export interface RelayOptions {
  nextHop: HostPort;
  /** EHLO name. */
  name: string;
  timeoutMs: number;
  lmtp?: boolean;
}

interface SmtpError extends Error {
  responseCode?: number;
  response?: string;
  recipient?: string;
  rejectedErrors?: SmtpError[];
}

function statusOf(code: number): OutcomeStatus {
  return code >= 200 && code < 300 ? 'accepted' : code >= 500 && code < 600 ? 'permanent' : 'temporary';
}

/** One line of printable ASCII, at most 300 characters: what may go into an SMTP reply or a log. */
export function oneLine(text: string | undefined): string {
  return (text ?? '').replace(/[\r\n]+/g, ' ').replace(/[^\x20-\x7e]/g, '?').slice(0, 300);
}

function outcomesOfError(err: SmtpError, recipients: readonly string[]): RecipientOutcome[] {
  const perRecipient = new Map((err.rejectedErrors ?? []).filter((r) => r.recipient).map((r) => [r.recipient!, r]));
  return recipients.map((recipient) => {
    const e = perRecipient.get(recipient) ?? err;
    const code = e.responseCode ?? 0;
    return { recipient, status: code ? statusOf(code) : 'temporary', code, response: oneLine(e.response ?? e.message) };
  });
}

export function relayMessage(options: RelayOptions, envelope: { from: string; to: readonly string[] }, message: Buffer): Promise<RecipientOutcome[]> {
  return new Promise((resolve) => {
    let done = false;
    const connection = new SMTPConnection({
      host: options.nextHop.host,
      port: options.nextHop.port,
      name: options.name,
      ignoreTLS: true,
      lmtp: options.lmtp === true,
      connectionTimeout: Math.min(options.timeoutMs, 30_000),
      greetingTimeout: Math.min(options.timeoutMs, 30_000),
      socketTimeout: options.timeoutMs,
      logger: false,
    });
    const finish = (outcomes: RecipientOutcome[]) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      // QUIT after a transaction, a hard close after a failure (the next hop may be stuck).
      if (outcomes.some((o) => o.status === 'accepted')) connection.quit();
      else connection.close();
      resolve(outcomes);
    };
    const timer = setTimeout(() => finish(envelope.to.map((recipient) => ({ recipient, status: 'temporary', code: 0, response: `the next hop did not answer within ${options.timeoutMs} ms` }))), options.timeoutMs);
    connection.on('error', (err: SmtpError) => finish(outcomesOfError(err, envelope.to)));
    connection.on('end', () => finish(envelope.to.map((recipient) => ({ recipient, status: 'temporary', code: 0, response: 'the next hop closed the connection' }))));
    connection.connect((connectErr?: SmtpError | null) => {
      if (connectErr) return finish(outcomesOfError(connectErr, envelope.to));
      connection.send({ from: envelope.from, to: [...envelope.to], use8BitMime: true, size: message.length } as never, message, (err: SmtpError | null, info?: { accepted?: string[]; rejectedErrors?: SmtpError[]; response?: string }) => {
        if (err) return finish(outcomesOfError(err, envelope.to));
        const rejected = new Map((info?.rejectedErrors ?? []).filter((r) => r.recipient).map((r) => [r.recipient!, r]));
        finish(envelope.to.map((recipient) => {
          const r = rejected.get(recipient);
          if (r) {
            const code = r.responseCode ?? 0;
            return { recipient, status: code ? statusOf(code) : 'temporary', code, response: oneLine(r.response ?? r.message) };
          }
          return { recipient, status: 'accepted', code: 250, response: oneLine(info?.response) };
        }));
      });
    });
  });
}
