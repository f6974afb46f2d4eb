/**
 * The recipients of an smtp-server listener's transaction as the client gave them
 * (the gateway and the submission port). smtp-server (3.21) keeps one entry per
 * lower-cased address in envelope.rcptTo: a RCPT whose address differs from an
 * earlier one only in case replaces it, NOTIFY and ORCPT included. RFC 5321 2.4 makes
 * local parts case-sensitive, and a relay must keep such mailboxes apart: both RCPTs
 * were answered 250, one was relayed (with the other's DSN requests lost), and under
 * LMTP one reply came after DATA for two accepted RCPTs, so the client waited for the
 * missing one.
 *
 * So the listener keeps its own lists:
 * - the recipients, one entry per mailbox in the order first given: the local part as
 *   given, the domain compared in its one form (x509/mailbox-address.ts mailboxKey:
 *   case-insensitive, no final dot, Unicode labels as their xn-- A-labels), so that
 *   bob@Example.COM after bob@example.com, or bob@例え.jp beside bob@xn--r8jz45g.jp,
 *   is that mailbox again, not a second copy (issue 13: "each recipient receives
 *   exactly one copy"; one of two copies could go out in clear if the certificate
 *   lookup differed by spelling). The entry keeps the spelling given first. Each
 *   gets one copy, which carries the DSN requests of all its RCPTs together
 *   (mergeRepeat: every NOTIFY value any of them asked for, NEVER only when all said
 *   NEVER; the first ORCPT given), so that no entry's request is lost on the one copy;
 * - every accepted RCPT command, repeats included: LMTP (RFC 2033 4.2) gives one reply
 *   after DATA for each, in order. Postfix's queue may hold one address twice (two
 *   entries whose NOTIFY or ORCPT differ) and its lmtp client then sends both RCPTs
 *   and counts a reply for each; a repeat is answered with its mailbox's outcome. It
 *   is accepted, not refused: a refusal would bounce (5xx) or retry (4xx) a recipient
 *   whose copy the first RCPT already delivers.
 * At DATA the command list goes into envelope.rcptTo, so smtp-server's own replies
 * (LMTP's one per RCPT for a refusal or an oversized message) count every one too.
 */
import type { SMTPServerAddress, SMTPServerSession } from 'smtp-server';
import { mailboxKey } from '../x509/mailbox-address.ts';
import { smtpError, type SmtpError } from './read-smtp-data.ts';

/** Accepted RCPT commands per transaction at most (repeats included): each costs a reply under LMTP. */
export const MAX_RCPT_COMMANDS = 10_000;

interface Recorded {
  recipients: Map<string, SMTPServerAddress>;
  commands: SMTPServerAddress[];
}

const received = new WeakMap<SMTPServerSession, Recorded>();

/** At MAIL FROM: a new transaction, no recipient yet. */
export function startRecipients(session: SMTPServerSession): void {
  received.set(session, { recipients: new Map(), commands: [] });
}

/**
 * At RCPT TO, once the recipient is accepted: kept by its mailbox (mailboxKey), and
 * the command counted. Past `maxRecipients` distinct mailboxes, or MAX_RCPT_COMMANDS
 * commands, the refusal (smtp-server counts its case-folded list, so addresses
 * differing in case would pass its check).
 */
export function recordRecipient(address: SMTPServerAddress, session: SMTPServerSession, maxRecipients = 0): SmtpError | undefined {
  let r = received.get(session);
  if (!r) received.set(session, (r = { recipients: new Map(), commands: [] }));
  const key = mailboxKey(address.address);
  const earlier = r.recipients.get(key);
  if ((maxRecipients > 0 && r.recipients.size >= maxRecipients && !earlier) || r.commands.length >= MAX_RCPT_COMMANDS) return smtpError(452, '4.5.3', 'Too many recipients.');
  r.recipients.set(key, earlier ? mergeRepeat(earlier, address) : address);
  r.commands.push(address);
  return undefined;
}

const NOTIFY_ORDER = ['SUCCESS', 'FAILURE', 'DELAY'];

/**
 * One mailbox's RCPTs as one recipient, under the address first given: NOTIFY is
 * every value any of them asked for (an RCPT without NOTIFY stands for the default,
 * FAILURE and DELAY, RFC 3461 4.1), NEVER only when every one said NEVER, absent when
 * none gave it; ORCPT the first given.
 */
function mergeRepeat(earlier: SMTPServerAddress, repeat: SMTPServerAddress): SMTPServerAddress {
  const notifies = [earlier.dsn?.notify, repeat.dsn?.notify];
  const orcpt = earlier.dsn?.orcpt ?? repeat.dsn?.orcpt;
  let notify: string[] | undefined;
  if (notifies.some((n) => n !== undefined)) {
    const asked = new Set(notifies.flatMap((n) => n ?? ['FAILURE', 'DELAY']).map((v) => v.toUpperCase()));
    notify = NOTIFY_ORDER.filter((v) => asked.has(v));
    if (notify.length === 0) notify = ['NEVER'];
  }
  return { ...earlier, dsn: { ...(notify ? { notify } : {}), ...(orcpt !== undefined ? { orcpt } : {}) } } as SMTPServerAddress;
}

export interface ReceivedRecipients {
  /** One per mailbox, under the address first given, in that order, with its RCPTs' DSN requests together. */
  recipients: SMTPServerAddress[];
  /** For each accepted RCPT command, in order, repeats included (LMTP's replies): its recipient's address as in `recipients`. */
  commands: string[];
}

/** At DATA: the transaction's recipients as given; every accepted RCPT is also put in session.envelope.rcptTo for smtp-server's replies. */
export function receivedRecipients(session: SMTPServerSession): ReceivedRecipients {
  const r = received.get(session);
  // Nothing recorded (no RCPT went through recordRecipient): smtp-server's list stands.
  if (!r || r.commands.length === 0) return { recipients: session.envelope.rcptTo, commands: session.envelope.rcptTo.map((a) => a.address) };
  received.delete(session);
  session.envelope.rcptTo = r.commands;
  return { recipients: [...r.recipients.values()], commands: r.commands.map((a) => r.recipients.get(mailboxKey(a.address))!.address) };
}
