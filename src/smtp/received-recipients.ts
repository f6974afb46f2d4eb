/**
 * The recipients of an smtp-server listener's transaction as the client gave them
 * (the gateway and the submission port). smtp-server (3.21) keeps one entry per
 * lower-cased address in envelope.rcptTo: a RCPT whose address differs from an
 * earlier one only in case replaces it, NOTIFY and ORCPT included. RFC 5321 2.4 makes
 * local parts case-sensitive, and a relay must keep such mailboxes apart: both RCPTs
 * were answered 250, one was relayed (with the other's DSN requests lost), and under
 * LMTP one reply came after DATA for two accepted RCPTs (RFC 2033 4.2 wants one each),
 * so the client waited for the missing one.
 *
 * So the listener keeps its own list, one entry per exact address in the order first
 * given (a repeat of the very same address replaces the earlier one's parameters, as
 * smtp-server does), and puts it in envelope.rcptTo at DATA: smtp-server's own replies
 * (LMTP's one per recipient for a refusal or an oversized message) then count it too.
 */
import type { SMTPServerAddress, SMTPServerSession } from 'smtp-server';
import { smtpError, type SmtpError } from './read-smtp-data.ts';

const received = new WeakMap<SMTPServerSession, Map<string, SMTPServerAddress>>();

/** At MAIL FROM: a new transaction, no recipient yet. */
export function startRecipients(session: SMTPServerSession): void {
  received.set(session, new Map());
}

/**
 * At RCPT TO, once the recipient is accepted: kept by its exact address. Past
 * `maxRecipients` distinct addresses, the refusal (smtp-server counts its
 * case-folded list, so addresses differing in case would pass its check).
 */
export function recordRecipient(address: SMTPServerAddress, session: SMTPServerSession, maxRecipients = 0): SmtpError | undefined {
  let list = received.get(session);
  if (!list) received.set(session, (list = new Map()));
  if (maxRecipients > 0 && list.size >= maxRecipients && !list.has(address.address)) return smtpError(452, '4.5.3', 'Too many recipients.');
  list.set(address.address, address);
  return undefined;
}

/** At DATA: the transaction's recipients as given, also put in session.envelope.rcptTo for smtp-server's replies. */
export function receivedRecipients(session: SMTPServerSession): SMTPServerAddress[] {
  const list = received.get(session);
  // Nothing recorded (no RCPT went through recordRecipient): smtp-server's list stands.
  if (!list || list.size === 0) return session.envelope.rcptTo;
  session.envelope.rcptTo = [...list.values()];
  received.delete(session);
  return session.envelope.rcptTo;
}
