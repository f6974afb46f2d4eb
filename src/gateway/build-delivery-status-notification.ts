/**
 * A delivery status notification (RFC 3464, in a multipart/report of RFC 6522) that
 * the gateway sends to a message's sender when policy bounces some of its
 * recipients (encryption required, no valid certificate) and the other recipients'
 * copies were relayed, so that one SMTP reply cannot say both (the SMTP, not LMTP,
 * filter transport). Three parts: a text for people (English and Japanese) naming
 * each recipient and why, the machine-readable message/delivery-status (Action:
 * failed, Status: 5.7.5, RFC 3463 "cryptographic failure": the key needed was not
 * available), and the original's header section (text/rfc822-headers, RFC 6522
 * section 4: never the body, which policy said must not travel in clear).
 *
 * It is sent with the null reverse-path (RFC 5321 4.5.5), so nothing bounces back.
 */
import { randomBytes } from 'node:crypto';
import { buildEntity, buildMultipartBody, createBoundary, formatParameterizedValue } from '../mime/build-entity.ts';
import { readHeaderSectionBytes } from './rewrite-header-section.ts';

export interface BouncedRecipient {
  recipient: string;
  /** The reason in one line (printable ASCII is kept in the machine part; the text part keeps it as is). */
  reason: string;
}

export interface DsnInput {
  /** The reporting gateway's name (authserv-id). */
  reportingMta: string;
  sender: string;
  recipients: readonly BouncedRecipient[];
  original: Buffer;
  arrival: Date;
  queueId?: string;
  /** The text for people and the Subject, when the reason is not a missing certificate (UNAUTHENTICATED_RETURN). */
  explanation?: { text: readonly string[]; subject: string };
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

export const DSN_STATUS = '5.7.5';

export function buildDeliveryStatusNotification(input: DsnInput): Buffer {
  const list = input.recipients.map((r) => `  <${r.recipient}>: ${r.reason}`).join('\r\n');
  const text = (input.explanation?.text.map((l) => (l === '%LIST%' ? list : l)) ?? [
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
  ]).join('\r\n');
  const status = [
    `Reporting-MTA: dns; ${ascii(input.reportingMta, 255)}`,
    ...(input.queueId ? [`X-Postfix-Queue-ID: ${ascii(input.queueId, 64)}`] : []),
    `Arrival-Date: ${input.arrival.toUTCString()}`,
    '',
    ...input.recipients.flatMap((r) => [
      `Final-Recipient: rfc822; ${ascii(r.recipient, 320)}`,
      'Action: failed',
      `Status: ${DSN_STATUS}`,
      `Diagnostic-Code: smtp; 554 ${DSN_STATUS} ${ascii(r.reason)}`,
      '',
    ]),
  ].join('\r\n');
  const boundary = createBoundary();
  const parts = [
    buildEntity([['Content-Type', 'text/plain; charset=utf-8'], ['Content-Transfer-Encoding', '8bit']], Buffer.from(text, 'utf8')),
    buildEntity([['Content-Type', 'message/delivery-status']], Buffer.from(status, 'latin1')),
    buildEntity([['Content-Type', 'text/rfc822-headers'], ['Content-Transfer-Encoding', '8bit']], readHeaderSectionBytes(input.original)),
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
