/**
 * A delivery status notification (RFC 3464, in a multipart/report of RFC 6522) that
 * the gateway (and, for "relayed", the signing service's submission port) sends to a
 * message's sender itself: when policy bounces some of its
 * recipients (encryption required, no valid certificate) and the other recipients'
 * copies were relayed, so that one SMTP reply cannot say both (the SMTP, not LMTP,
 * filter transport), and when an administrator bounces a held message; and the
 * "relayed" DSN (action 'relayed', Status 2.0.0, RFC 3461 4.1) for recipients who
 * asked NOTIFY=SUCCESS when the next hop does not advertise DSN
 * (build-relayed-notification.ts). Three parts:
 * a text for people (English and Japanese) naming each recipient and why, the
 * machine-readable message/delivery-status (Action: failed, Status: 5.7.5, RFC 3463
 * "cryptographic failure": the key needed was not available), and what is returned
 * of the original (RFC 6522 section 4).
 *
 * The sender's DSN requests (RFC 3461) decide what it holds:
 * - only recipients whose NOTIFY asks for failures (notifiesFailure: NOTIFY absent,
 *   or a list with FAILURE; NOTIFY=NEVER or a list without FAILURE: none) are named;
 *   the caller sends nothing when none is left (and says so in its log or audit);
 * - ENVID is written as Original-Envelope-Id (RFC 3464 2.2.1), each ORCPT as that
 *   recipient's Original-Recipient (2.3.1), both as decoded text (RFC 3461 6.3: the
 *   xtext of the SMTP command is undone), and only when it passes the checks the
 *   listeners apply (dsn-parameters.ts: printable US-ASCII, bounded): a value that
 *   could break the field (CR, LF, control characters) or is over-long is left out,
 *   never written mangled;
 * - RET=FULL returns the whole message (message/rfc822) up to RETURN_WHOLE_LIMIT
 *   (above it, the header section and a sentence saying why; the same when the
 *   next hop refused the DSN for its size, send-delivery-status-notification.ts, or
 *   when the message holds what SMTP cannot carry intact); RET=HDRS, and no RET
 *   (RFC 3461 4.3 leaves that case to the MTA), the header section only
 *   (text/rfc822-headers): unless the sender asks for it, the body of a message
 *   policy said must not travel in clear does not travel again (returnsWhole).
 *
 * It is sent with the null reverse-path (RFC 5321 4.5.5) and NOTIFY=NEVER, so
 * nothing bounces back.
 */
import { randomBytes } from 'node:crypto';
import { buildEntity, buildMultipartBody, createBoundary, formatParameterizedValue } from '../mime/build-entity.ts';
import { resolveLimits } from '../limits.ts';
import { parseHeaderSection } from '../mime/parse-header-section.ts';
import { mailDsnProblem, rcptDsnProblem, type MailDsn, type NotifyValue } from './dsn-parameters.ts';

export interface BouncedRecipient {
  recipient: string;
  /** The reason in one line (printable ASCII is kept in the machine part; the text part keeps it as is). */
  reason: string;
  /** The recipient's ORCPT as received, decoded (`addr-type;address`): its Original-Recipient. */
  orcpt?: string;
}

/** What goes back of the original: the whole message, or its header section (`tooLarge`: RET=FULL asked for the whole, over RETURN_WHOLE_LIMIT or refused by the next hop for its size). */
export type ReturnedContent = { whole: Buffer } | { head: Buffer; tooLarge?: boolean };

export interface DsnInput {
  /** The reporting gateway's name (authserv-id). */
  reportingMta: string;
  sender: string;
  /** The recipients it reports on: those whose NOTIFY asks for it (notifiesFailure). */
  recipients: readonly BouncedRecipient[];
  /** The message's ENVID, decoded: its Original-Envelope-Id. */
  envid?: string;
  returned: ReturnedContent;
  arrival: Date;
  queueId?: string;
  /** The text for people and the Subject, when the reason is not a missing certificate (UNAUTHENTICATED_RETURN, build-relayed-notification.ts's RELAYED_NOTICE). */
  explanation?: { text: readonly string[]; subject: string };
  /** What it reports: 'failed' (the default: Status 5.7.5 and the reason as Diagnostic-Code) or 'relayed' (Status 2.0.0: handed to a next hop that sends no DSN, RFC 3461 4.1). */
  action?: 'failed' | 'relayed';
}

/**
 * RET=FULL: the whole message is returned up to this size (larger: its header
 * section, and the text says why). Below Postfix's default message_size_limit
 * (10,240,000 bytes), with 240,000 bytes left for the DSN's own parts (its header,
 * text and one delivery-status block per recipient) and the Received fields hops
 * add; a next hop with a lower limit refuses it, and the DSN goes again with the
 * header section (sendDeliveryStatusNotification).
 */
export const RETURN_WHOLE_LIMIT = 10_000_000;

/** Whether a failure DSN goes to the sender for a recipient with this NOTIFY (RFC 3461 4.1: absent means the MTA's default, which includes failures). */
export function notifiesFailure(notify: readonly NotifyValue[] | undefined): boolean {
  return notify === undefined || notify.includes('FAILURE');
}

/** Whether the whole message of `size` bytes is returned under `ret` (else its header section): only when RET=FULL asks for it, up to RETURN_WHOLE_LIMIT. */
export function returnsWhole(ret: MailDsn['ret'], size: number): boolean {
  return ret === 'FULL' && size <= RETURN_WHOLE_LIMIT;
}

/**
 * What a DSN returns of a message of `size` bytes under RET (returnsWhole): `whole`
 * is read only when it is returned whole, `head` (a buffer starting with the header
 * section) otherwise.
 */
export async function returnedContent(ret: MailDsn['ret'], size: number, whole: () => Promise<Buffer>, head: () => Promise<Buffer>): Promise<ReturnedContent> {
  if (returnsWhole(ret, size)) return { whole: await whole() };
  return { head: await head(), ...(ret === 'FULL' ? { tooLarge: true } : {}) };
}

/** A held message of unauthenticated encryption, returned by an administrator. */
export const UNAUTHENTICATED_RETURN = {
  text: [
    'This is the mail gateway. Your message was not delivered to the recipients below:',
    'it was encrypted in a way that cannot show whether it was altered on its way (CBC',
    'encryption without your signature inside), and an administrator returned it.',
    'Send it again signed and encrypted, or encrypted with AES-GCM.',
    '',
    '%LIST%',
    '',
    'メールゲートウェイからのお知らせです。以下の宛先にはメッセージを配信しませんでした。',
    '途中で改ざんされたかどうかを確認できない方式（送信者の署名のない CBC 暗号化）で暗号化されていたため、',
    '管理者が返送しました。署名付きで暗号化するか、AES-GCM で暗号化して送り直してください。',
    '',
  ],
  subject: 'Undelivered Mail: encryption cannot be verified / 配信できませんでした（暗号化を検証できません）',
};

/** Printable ASCII on one line, for the message/delivery-status fields. */
function ascii(text: string, max = 400): string {
  return text.replace(/[\r\n\t]+/g, ' ').replace(/[^\x20-\x7e]/g, '?').slice(0, max);
}

/** ENVID as Original-Envelope-Id's value, or undefined when it fails the listeners' checks (never written mangled). */
function envelopeIdField(envid: string | undefined): string | undefined {
  return envid !== undefined && mailDsnProblem({ envid }) === undefined ? `Original-Envelope-Id: ${envid}` : undefined;
}

/** ORCPT (decoded, `addr-type;address`) as Original-Recipient, or undefined when it fails the listeners' checks. */
function originalRecipientField(orcpt: string | undefined): string | undefined {
  return orcpt !== undefined && rcptDsnProblem({ orcpt }) === undefined ? `Original-Recipient: ${orcpt}` : undefined;
}

export const DSN_STATUS = '5.7.5';

/** Whether a message can go in a message/rfc822 part over SMTP as it is (7bit or 8bit: no NUL, no bare CR or LF, no line over 998 octets, RFC 5321 4.5.3.1.6). */
export function crossesSmtp(message: Buffer): boolean {
  return !/\0|(^|[^\r])\n|\r(?!\n)|[^\r\n]{999}/.test(message.toString('latin1'));
}

/**
 * The message/rfc822 part (RFC 2046 5.2.1: 7bit or 8bit here), or text/rfc822-headers.
 * A message that only a binary transfer could carry (NUL, a bare CR or LF, a line
 * over 998 octets) goes back as its header section: the DSN must cross SMTP intact.
 */
function returnedPart(returned: ReturnedContent, intact: boolean): Buffer {
  if ('whole' in returned && intact) {
    return buildEntity([['Content-Type', 'message/rfc822'], ...(/[\x80-\xff]/.test(returned.whole.toString('latin1')) ? [['Content-Transfer-Encoding', '8bit'] as [string, string]] : [])], returned.whole);
  }
  const message = 'whole' in returned ? returned.whole : returned.head;
  const head = message.subarray(0, parseHeaderSection(message, 0, message.length, resolveLimits(), true).headerEnd);
  return buildEntity([['Content-Type', 'text/rfc822-headers'], ['Content-Transfer-Encoding', '8bit']], head);
}

export function buildDeliveryStatusNotification(input: DsnInput): Buffer {
  const list = input.recipients.map((r) => `  <${r.recipient}>: ${r.reason}`).join('\r\n');
  // RET=FULL asked for the whole message: whether it goes back so, else why only its header section does.
  const intact = 'whole' in input.returned && crossesSmtp(input.returned.whole);
  const returnedNote = 'whole' in input.returned
    ? intact ? [] : ['(Your message could not be returned whole: it holds content SMTP cannot carry intact (a NUL, a bare CR or LF, or a line over 998 octets). Its header section is attached. / メッセージに SMTP でそのまま送れない内容（NUL、単独の CR や LF、998 オクテットを超える行）が含まれているため、ヘッダー部分のみ添付しています。)', '']
    : input.returned.tooLarge
      ? ['(Your message was too large to be returned whole: its header section is attached. / メッセージが大きすぎるため、ヘッダー部分のみ添付しています。)', '']
      : [];
  const text = [...(input.explanation?.text.map((l) => (l === '%LIST%' ? list : l)) ?? [
    'This is the mail gateway. Your message was not delivered to the recipients below:',
    'the organisation\'s policy requires that mail to them is encrypted, and no valid',
    'certificate is known for them. Ask them for a signed message (their certificate is',
    'then learnt), or ask your administrator. Other recipients, if any, received it.',
    '',
    list,
    '',
    'メールゲートウェイからのお知らせです。以下の宛先にはメッセージを配信しませんでした。',
    '組織のポリシーでこれらの宛先への暗号化が必須とされていますが、有効な証明書が見つかりません。',
    '宛先の方から署名付きメールを送ってもらう（証明書が登録されます）か、管理者に連絡してください。',
    'その他の宛先には配信されています。',
    '',
  ]), ...returnedNote].join('\r\n');
  const envelopeId = envelopeIdField(input.envid);
  // RFC 3464 2.2 and 2.3: the fields in the grammar's order, extension fields (X-) after the standard ones.
  const status = [
    ...(envelopeId ? [envelopeId] : []),
    `Reporting-MTA: dns; ${ascii(input.reportingMta, 255)}`,
    `Arrival-Date: ${input.arrival.toUTCString()}`,
    ...(input.queueId ? [`X-Postfix-Queue-ID: ${ascii(input.queueId, 64)}`] : []),
    '',
    ...input.recipients.flatMap((r) => {
      const original = originalRecipientField(r.orcpt);
      return [
        ...(original ? [original] : []),
        `Final-Recipient: rfc822; ${ascii(r.recipient, 320)}`,
        ...(input.action === 'relayed' ? ['Action: relayed', 'Status: 2.0.0'] : ['Action: failed', `Status: ${DSN_STATUS}`, `Diagnostic-Code: smtp; 554 ${DSN_STATUS} ${ascii(r.reason)}`]),
        '',
      ];
    }),
  ].join('\r\n');
  const boundary = createBoundary();
  const parts = [
    buildEntity([['Content-Type', 'text/plain; charset=utf-8'], ['Content-Transfer-Encoding', '8bit']], Buffer.from(text, 'utf8')),
    buildEntity([['Content-Type', 'message/delivery-status']], Buffer.from(status, 'latin1')),
    returnedPart(input.returned, intact),
  ];
  const host = ascii(input.reportingMta, 255);
  return buildEntity(
    [
      ['From', `Mail Delivery System <MAILER-DAEMON@${host}>`],
      ['To', `<${ascii(input.sender, 320)}>`],
      ['Subject', input.explanation?.subject ?? 'Undelivered Mail: encryption required / 配信できませんでした（暗号化が必要です）'],
      ['Date', new Date().toUTCString()],
      ['Message-ID', `<${randomBytes(12).toString('hex')}@${host}>`],
      ['Auto-Submitted', 'auto-replied'],
      ['MIME-Version', '1.0'],
      ['Content-Type', formatParameterizedValue('multipart/report', { 'report-type': 'delivery-status', boundary })],
    ],
    buildMultipartBody(boundary, parts),
  );
}
