/**
 * The "relayed" DSN (RFC 3461 4.1 and 6.2) that the gateway and the signing
 * service's submission port owe a sender: a recipient who asked NOTIFY=SUCCESS,
 * whose copy a next hop accepted without advertising DSN (RecipientOutcome's
 * `withoutDsn`), will hear nothing from beyond it, so the relaying side tells the
 * sender itself (Action: relayed, Status 2.0.0, with Original-Envelope-Id and each
 * recipient's Original-Recipient). One DSN for all such recipients of a message,
 * the header section only whatever RET says (RFC 3461 4.3: RET is for failure
 * DSNs), never for the null sender; sent like the other DSNs of ours with
 * `envelope`: the null reverse-path and NOTIFY=NEVER, so nothing comes back of it.
 */
import { buildDeliveryStatusNotification } from './build-delivery-status-notification.ts';
import { NOTIFY_NEVER, type RcptDsn } from './dsn-parameters.ts';
import type { RecipientOutcome, RelayEnvelope } from './relay-message.ts';

/** The text for people and the Subject (English and Japanese). */
export const RELAYED_NOTICE = {
  text: [
    'Your message was passed on to the recipients below by way of a mail system that',
    'does not return delivery notifications. You asked to be told when it is delivered',
    'to them: no further notice will come for them.',
    '',
    '%LIST%',
    '',
    '以下の宛先へのメッセージは、配信通知を返さないメールシステムに中継しました。',
    '配信通知をご希望でしたが、これらの宛先についてはこれ以上の通知は届きません。',
    '',
  ],
  subject: 'Delivery Status Notification (relayed) / 配信状況の通知（中継済み）',
};

export interface RelayedNotificationInput {
  /** The reporting system's name (Reporting-MTA, the From's host). */
  reportingMta: string;
  /** The message's reverse-path: none is owed to the null sender. */
  sender: string;
  /** The message's ENVID, decoded. */
  envid?: string;
  /** The message's final outcomes, one per recipient as received (undefined: none). */
  outcomes: ReadonlyArray<RecipientOutcome | undefined>;
  /** Each recipient's NOTIFY and ORCPT as received, in the order of `outcomes`. */
  recipientDsn?: ReadonlyArray<RcptDsn | undefined>;
  /** The message as received (its header section is returned). */
  head: Buffer;
  queueId?: string;
}

export interface RelayedNotification {
  /** How many recipients it names. */
  notified: number;
  envelope: RelayEnvelope;
  dsn: Buffer;
}

/** The relayed DSN owed for these outcomes, or undefined when none is (the usual case: a next hop with DSN). */
export function buildRelayedNotification(input: RelayedNotificationInput): RelayedNotification | undefined {
  if (!input.sender) return undefined;
  const asked: Array<{ recipient: string; orcpt: string | undefined }> = [];
  input.outcomes.forEach((o, i) => {
    const requests = input.recipientDsn?.[i];
    if (o?.status === 'accepted' && o.withoutDsn === true && requests?.notify?.includes('SUCCESS')) asked.push({ recipient: o.recipient, orcpt: requests.orcpt });
  });
  if (asked.length === 0) return undefined;
  const dsn = buildDeliveryStatusNotification({
    reportingMta: input.reportingMta,
    sender: input.sender,
    action: 'relayed',
    explanation: RELAYED_NOTICE,
    recipients: asked.map(({ recipient, orcpt }) => ({ recipient, reason: 'relayed to a system that does not send delivery notifications', ...(orcpt !== undefined ? { orcpt } : {}) })),
    ...(input.envid !== undefined ? { envid: input.envid } : {}),
    returned: { head: input.head },
    arrival: new Date(),
    ...(input.queueId ? { queueId: input.queueId } : {}),
  });
  return { notified: asked.length, envelope: { from: '', to: [input.sender], recipientDsn: [NOTIFY_NEVER] }, dsn };
}
