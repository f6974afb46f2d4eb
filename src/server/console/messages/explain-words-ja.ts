/**
 * 「ゲートウェイは何をするか」（explain）の日本語。ライブラリの判断データ
 * （policy/decision-words.ts の DecisionWords）から文を作る。英語は
 * ENGLISH_DECISION_WORDS（CLI と同じ文）。設定名・値・アドレスは原文のまま。
 */
import type { Because, CertificateFact } from '../../../policy/decide-recipient.ts';
import type { DecisionWords } from '../../../policy/decision-words.ts';

const DIRECTIONS: Record<string, string> = { outbound: '送信', inbound: '受信', pass: '通過' };
const ACTIONS: Record<string, string> = {
  signed: '署名', 'signed-encrypted': '署名と暗号化', encrypted: '暗号化', unchanged: '変更なし', bounce: '差し戻し', hold: '保留', 'verify-and-label': '検証して結果を付記',
};
const NO_SIGNER = 'the From address has no current signing key in the store';

function source(s: string): string {
  if (s === 'default') return '既定値';
  if (s === 'global') return '全体';
  if (s === NO_SIGNER) return '差出人アドレスの現在の署名鍵がストアにありません';
  const trigger = /^(subjectTriggers|headerTriggers) \((.+)\)$/.exec(s);
  if (trigger) return `${trigger[1]}（${source(trigger[2]!)}）`;
  const level = /^(domain|address) (.+)$/.exec(s);
  if (level) return `${level[1] === 'domain' ? 'ドメイン' : 'アドレス'} ${level[2]}`;
  return s;
}

const why = (b: readonly Because[]) => b.map((x) => `${x.setting}=${x.value}、${source(x.source)}`).join('；');

function certificate(c: CertificateFact | undefined): string {
  if (!c || c.status === 'missing') return '受信者の証明書が見つかりません';
  if (c.status === 'refused') return `受信者の証明書は使えません（${c.code}：${c.message}）`;
  return `証明書 ${c.fingerprint.slice(0, 16)}（「${c.subject}」）`;
}

export const JAPANESE_DECISION_WORDS: DecisionWords = {
  source,
  certificate,
  certificateShort(c) {
    if (!c) return '調べていません';
    return c.status === 'valid' ? `証明書 ${c.fingerprint.slice(0, 16)}「${c.subject}」` : c.status === 'missing' ? '証明書なし' : `証明書は使用不可（${c.code}）`;
  },
  outbound(d) {
    if (d.action === 'bounce' || d.action === 'hold') {
      const required = d.wantedBecause.map((b) => `${b.setting === 'trigger' ? `トリガー ${b.value}` : `${b.setting}=${b.value}`}（${source(b.source)}）`).join('、');
      return `${d.recipient} への暗号化は ${required} により必須ですが、${certificate(d.certificate)}。そのためメールは${d.action === 'bounce' ? 'この人には送られず、差出人に理由を書いた配送状態通知が届きます' : '管理者の判断を待つためストアに保留されます'}（missingCertificate=${d.action}、${source(d.sign.because[0]!.source)}）。`;
    }
    const sign = d.sign.mode === 'none' ? `署名しません（${why(d.sign.because)}）` : d.sign.mode === 'opaque' ? '署名します（不透明形式 application/pkcs7-mime）' : d.encrypted ? '暗号化の内側で署名します' : '署名します（multipart/signed）';
    const encrypt = d.encrypted ? `${certificate(d.certificate)} で暗号化します` : d.wanted === 'never' ? `暗号化しません（encrypt=never、${source(d.wantedBecause[0]!.source)}）` : `暗号化しません：${certificate(d.certificate)}`;
    return `${d.recipient}：${sign}。${encrypt}。`;
  },
  pass: (r) => `${r}：差出人も受信者もゲートウェイのドメインにないため、そのまま通します。`,
  inbound(r, f) {
    const tags = f.subjectTags === 'off' ? '件名タグは付けません' : `smime=pass なら件名タグ「${f.subjectTags.pass}」、smime=fail なら「${f.subjectTags.fail}」を付けます`;
    return `${r}：受信：このアドレスのためにストアが持ったことのあるどの鍵でも復号し、revocation=${f.revocation}（${source(f.revocationSource)}）で検証して Authentication-Results を付けます。認証のない（CBC）暗号化：${f.unauthenticatedEncryption}${f.unauthenticatedEncryption === 'hold' ? `（暗号化されたまま管理者の判断を待って保留し、受信者には ${f.noticeLanguage} の通知が届きます）` : ''}（${source(f.unauthenticatedSource)}）。${tags}（${source(f.subjectTagsSource)}）。`;
  },
  triggers: (found) => `暗号化トリガーがあります：${found.map((t) => `${t.kind === 'subject' ? '件名' : t.kind === 'header' ? 'ヘッダー' : t.kind} ${JSON.stringify(t.trigger)}`).join('、')}（暗号化が必須になります。件名か X-Kakitome- フィールドにあるものは送信前に取り除きます）。`,
  heading: (from, r, direction, action) => `${from} → ${r}：${DIRECTIONS[direction] ?? direction}、${ACTIONS[action] ?? action}`,
  signLine(sign, encrypted) {
    return `  署名：${sign.mode === 'none' ? 'しない' : sign.mode === 'opaque' ? 'する（不透明形式 application/pkcs7-mime）' : encrypted ? 'する（暗号化の内側）' : 'する（multipart/signed）'}${sign.certificate ? `、証明書 ${sign.certificate.slice(0, 16)}` : ''}  [${why(sign.because)}]`;
  },
  encryptLine(e) {
    const cert = JAPANESE_DECISION_WORDS.certificateShort(e.certificate);
    return `  暗号化：${e.encrypted ? `する、${cert}${e.cipher ? `、${e.cipher}` : ''}` : `しない（${e.wanted}；${cert}）`}  [${why(e.because)}]`;
  },
  policyOf: (owner) => `${owner || '（全体）'} のポリシー：`,
};
