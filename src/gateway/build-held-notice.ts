/**
 * The notice a recipient gets when the gateway holds a message to them for an
 * administrator (policy `unauthenticatedEncryption: hold`: CBC content no trusted
 * signature of its sender covers, EFAIL). It is the gateway's own message, not the
 * held one: it quotes nothing of the held message's content or text, since none of
 * it is authenticated. It says who the message claims to be from (the From
 * address only, reduced to the characters of an address, never its display name),
 * when it arrived (the gateway's clock) and the date it claims (reparsed, never
 * copied), why it was held, and what to do: ask the administrator to release it,
 * quoting the held message's id. In the recipient's policy language (English,
 * Japanese, or both).
 */
import { randomBytes } from 'node:crypto';
import { buildEntity } from '../mime/build-entity.ts';
import { readHeaderFields } from './rewrite-header-section.ts';
import { decodeHeaderText } from '../mime/decode-header-text.ts';
import type { PolicySettings } from '../policy/policy-settings.ts';

export interface HeldNoticeInput {
  /** The gateway's name (authserv-id): the notice's From domain and Message-ID. */
  authservId: string;
  /** The held message as received: only its From address and Date are read. */
  received: Buffer;
  heldId: string;
  arrival: Date;
  language: PolicySettings['noticeLanguage'];
}

const ADDRESS = /^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9.-]{1,253}$/;

/** The address a From field names (the last <...>, else the whole value), or undefined when it is not plainly one. */
export function claimedAddress(received: Buffer): string | undefined {
  const from = readHeaderFields(received).filter((f) => f.name.toLowerCase() === 'from');
  if (from.length !== 1) return undefined;
  const value = decodeHeaderText(from[0]!.value).replace(/\([^()]*\)/g, ' ').trim();
  const angle = /<([^<>]*)>\s*$/.exec(value);
  const address = (angle ? angle[1]! : value).trim();
  return ADDRESS.test(address) ? address : undefined;
}

/** The Date field's moment, or undefined (absent, several, unparseable). */
function claimedDate(received: Buffer): Date | undefined {
  const dates = readHeaderFields(received).filter((f) => f.name.toLowerCase() === 'date');
  if (dates.length !== 1) return undefined;
  const t = Date.parse(dates[0]!.value.trim().slice(0, 100));
  return Number.isFinite(t) ? new Date(t) : undefined;
}

const utc = (d: Date) => `${d.toISOString().slice(0, 19).replace('T', ' ')} UTC`;

function english(from: string | undefined, dated: Date | undefined, i: HeldNoticeInput): string[] {
  return [
    'A message to you was held by the mail gateway and has not been delivered.',
    '',
    `  Claims to be from: ${from ?? '(no readable sender address)'} (not verified)`,
    ...(dated ? [`  Claims to be dated: ${utc(dated)} (not verified)`] : []),
    `  Arrived:           ${utc(i.arrival)}`,
    `  Held message id:   ${i.heldId}`,
    '',
    'Why: it is encrypted in a way that cannot show whether it was altered on its way',
    '(CBC encryption without a signature of its sender inside). Opened, altered content',
    'could send what you read to someone else (EFAIL). Nothing of it is shown here.',
    '',
    'What to do: if you expected a message from this sender, ask your administrator to',
    'release it, quoting the id above. Otherwise you need do nothing. You may ask the',
    'sender, by a way you already know, to sign their encrypted mail or use AES-GCM.',
  ];
}

function japanese(from: string | undefined, dated: Date | undefined, i: HeldNoticeInput): string[] {
  return [
    'あなた宛てのメッセージをメールゲートウェイが保留しました。まだ配信されていません。',
    '',
    `  送信者（自称・未確認）: ${from ?? '（読み取れる送信者アドレスがありません）'}`,
    ...(dated ? [`  日付（自称・未確認）:   ${utc(dated)}`] : []),
    `  受信日時:               ${utc(i.arrival)}`,
    `  保留メッセージ ID:      ${i.heldId}`,
    '',
    '理由: このメッセージは、途中で改ざんされたかどうかを確認できない方式（送信者の署名のない',
    'CBC 暗号化）で暗号化されています。開くと、改ざんされた内容が読んだ情報を外部へ送る',
    'おそれがあります（EFAIL）。内容はこのお知らせには一切含めていません。',
    '',
    '対応: この送信者からのメッセージに心当たりがある場合は、上の ID を添えて管理者に配信を',
    '依頼してください。心当たりがなければ何もする必要はありません。送信者には、既に知っている',
    '連絡手段で、署名付きの暗号化または AES-GCM の利用を依頼できます。',
  ];
}

export function buildHeldNotice(i: HeldNoticeInput): Buffer {
  const from = claimedAddress(i.received);
  const dated = claimedDate(i.received);
  const en = i.language !== 'ja' ? english(from, dated, i) : [];
  const ja = i.language !== 'en' ? japanese(from, dated, i) : [];
  const text = [...en, ...(en.length && ja.length ? ['', '---', ''] : []), ...ja, ''].join('\r\n');
  const subject = [i.language !== 'ja' ? 'Held for your administrator: an encrypted message that cannot be verified' : '', i.language !== 'en' ? '【保留】確認できない暗号化メッセージ' : ''].filter(Boolean).join(' / ');
  const host = i.authservId.replace(/[^A-Za-z0-9.-]/g, '') || 'localhost';
  return buildEntity(
    [
      ['From', `Mail Gateway <postmaster@${host}>`],
      ['To', 'undisclosed-recipients:;'],
      ['Subject', subject],
      ['Date', new Date().toUTCString()],
      ['Message-ID', `<${randomBytes(12).toString('hex')}@${host}>`],
      ['Auto-Submitted', 'auto-generated'],
      ['MIME-Version', '1.0'],
      ['Content-Type', 'text/plain; charset=utf-8'],
      ['Content-Transfer-Encoding', '8bit'],
    ],
    Buffer.from(text, 'utf8'),
  );
}
