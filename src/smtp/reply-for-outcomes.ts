/**
 * The gateway's answer to Postfix for one message, from what the next hop said to
 * each recipient's copy (no-loss rule, issue 13; the submission port of `kakitome
 * serve` answers its clients by the same SMTP rule):
 * - LMTP: one reply per recipient, in RCPT order: 250 when their copy was accepted,
 *   the next hop's 5xx when it refused it for good, 451 otherwise (Postfix retries
 *   only those recipients).
 * Outcomes that are the gateway's own (a policy bounce: 554 5.7.5; a hold: 250; a copy
 * it could not make: 451 4.3.0) keep their text and enhanced code: a reply never
 * blames the next hop for what the gateway itself could not do.
 * - SMTP: one reply for all: 250 only when every copy was accepted; 451 when any
 *   copy failed temporarily (Postfix retries the whole message, so recipients whose
 *   copy was already accepted get it again: a duplicate, never a loss; counted),
 *   saying how many recipients were deferred and naming the first cause: the first
 *   deferred recipient whose copy is not only held back for another's (`heldBack`),
 *   with what stopped it; a 5xx when copies were refused for good and none is to be
 *   retried (Postfix bounces the message to its sender with our text).
 */
import type { RecipientOutcome } from './relay-message.ts';

export interface SmtpReply {
  code: number;
  /** Enhanced status code (RFC 3463). */
  enhanced: string;
  text: string;
}

export function replyForRecipient(o: RecipientOutcome | undefined): SmtpReply {
  if (!o) return { code: 451, enhanced: '4.3.0', text: 'No copy was relayed for this recipient; try again later.' };
  if (o.own) return { code: o.code, enhanced: o.own.enhanced, text: o.response };
  if (o.status === 'accepted') return { code: 250, enhanced: '2.0.0', text: `Relayed: ${o.response || 'accepted by the next hop'}` };
  if (o.status === 'permanent') return { code: o.code, enhanced: '5.0.0', text: `The next hop refused the message: ${o.response}` };
  return { code: 451, enhanced: '4.4.0', text: `The next hop did not accept the message yet (${o.response || 'no answer'}); try again later.` };
}

export function replyForMessage(outcomes: readonly RecipientOutcome[]): SmtpReply {
  const accepted = outcomes.filter((o) => o.status === 'accepted').length;
  const temporary = outcomes.filter((o) => o.status === 'temporary');
  const permanent = outcomes.filter((o) => o.status === 'permanent');
  if (outcomes.length > 0 && accepted === outcomes.length) return replyForRecipient(outcomes[0]);
  const cause = temporary.find((o) => !o.heldBack) ?? temporary[0];
  const deferred = `${temporary.length} of ${outcomes.length} recipients deferred (${accepted} accepted, ${permanent.length} refused)`;
  if (cause?.own) return { code: 451, enhanced: cause.own.enhanced, text: `Not every copy was relayed: ${deferred}; the first cause, for <${cause.recipient}>: ${cause.response}` };
  if (cause) return { code: 451, enhanced: '4.4.0', text: `The next hop did not accept every copy yet: ${deferred}; the first cause, for <${cause.recipient}>: ${cause.response || 'no answer'}; try again later.` };
  if (outcomes.length === 0) return { code: 451, enhanced: '4.4.0', text: 'No copy was relayed; try again later.' };
  const first = permanent[0]!;
  if (first.own) return { code: first.code, enhanced: first.own.enhanced, text: `${permanent.length} of ${outcomes.length} recipients refused by the gateway (${accepted} accepted): ${first.response}` };
  return { code: first.code, enhanced: '5.0.0', text: `The next hop refused ${permanent.length} of ${outcomes.length} recipients (${accepted} accepted): ${first.response}` };
}
