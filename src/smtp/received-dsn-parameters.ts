/**
 * The DSN parameters (RFC 3461) an smtp-server listener received, as the gateway
 * and the submission port take them: checked at MAIL FROM and RCPT TO (a command
 * whose parameters could not be relayed is refused, 501 5.5.4, rather than relayed
 * without them), then read for the relay at DATA. The listener must advertise DSN
 * (smtp-server's hideDSN: false); smtp-server decodes the xtext and checks RET's
 * and NOTIFY's values and ORCPT's shape (dsn-parameters.ts checks the rest).
 */
import type { SMTPServerAddress, SMTPServerEnvelope, SMTPServerSession } from 'smtp-server';
import { mailDsnOf, mailDsnProblem, rcptDsnOf, rcptDsnProblem, type MailDsn, type RcptDsn } from './dsn-parameters.ts';
import { smtpError, type SmtpError } from './read-smtp-data.ts';

/**
 * At MAIL FROM: the refusal when RET or ENVID cannot be relayed. Otherwise the
 * session's envelope.dsn is set to this command's own RET and ENVID: smtp-server
 * (3.21) sets it before onMailFrom and clears it only with the next transaction, so
 * after a refused MAIL FROM (ours, or the gateway's 451 when busy) the next MAIL
 * FROM on the connection would otherwise inherit the refused one's values.
 */
export function acceptMailDsn(address: SMTPServerAddress, session: SMTPServerSession): SmtpError | undefined {
  if (!session.envelope.dsn) return undefined;
  const args = (address.args || {}) as Record<string, string | boolean>;
  const ret = typeof args.RET === 'string' ? args.RET.toUpperCase() : null;
  const envid = typeof args.ENVID === 'string' ? args.ENVID : null;
  session.envelope.dsn = { ret, envid };
  const problem = mailDsnProblem(mailDsnOf(session.envelope.dsn));
  if (problem === undefined) return undefined;
  session.envelope.dsn = { ret: null, envid: null };
  return smtpError(501, '5.5.4', `Bad DSN parameter: ${problem}.`);
}

/** At RCPT TO: the refusal when NOTIFY or ORCPT cannot be relayed. */
export function acceptRcptDsn(address: SMTPServerAddress): SmtpError | undefined {
  const problem = rcptDsnProblem(rcptDsnOf(address.dsn));
  return problem === undefined ? undefined : smtpError(501, '5.5.4', `Bad DSN parameter: ${problem}.`);
}

/**
 * At DATA: the transaction's RET and ENVID, and each recipient's NOTIFY and ORCPT in
 * the order of `recipients`, one entry per recipient (undefined where it gave none).
 * `recipients` is the list as given, one entry per exact address
 * (received-recipients.ts; RFC 5321 2.4: Bob@ and bob@ are two mailboxes, each with
 * its own requests). The relay takes it so (RelayEnvelope: beside `to`); the gateway
 * too, and picks each copy's recipients from it.
 */
export function receivedDsn(envelope: SMTPServerEnvelope, recipients: readonly SMTPServerAddress[]): { dsn?: MailDsn; recipientDsn?: Array<RcptDsn | undefined> } {
  const dsn = mailDsnOf(envelope.dsn);
  const recipientDsn = recipients.map((r) => rcptDsnOf(r.dsn));
  return { ...(dsn ? { dsn } : {}), ...(recipientDsn.some((d) => d !== undefined) ? { recipientDsn } : {}) };
}
