/**
 * Inbound mail (a recipient in one of our domains): decrypted with any key the
 * store ever held for a recipient of the envelope (findEnvelopeKeysRecording: key
 * history, whatever the certificate's expiry) whose certificate names one of the
 * message's SMTP recipients (keysFor), verified with full trust and
 * revocation, labelled with Authentication-Results (smime-result.ts), and trusted
 * signers' certificates harvested under the directory's rules (the CLI's harvest
 * path).
 *
 * The keys are handed out while their uses' audit rows are being committed, so the
 * decryption runs during the commit's fsync; the result is returned only once the
 * commit is done, and a failed commit is thrown (the caller answers 4xx): nothing
 * decrypted leaves (relayed, or answered 250) before its key use is durable
 * (docs/store.md, "The audit of key uses").
 *
 * What is delivered:
 * - encrypted, opened: the decrypted message (the library's output: layers
 *   removed, protected header fields restored);
 * - signed, not encrypted: the message as received, its signature intact;
 * - CBC content no trusted signature of the sender covers (UNAUTH_ENC, EFAIL): by
 *   policy (unauthenticatedEncryption) either the original, still encrypted, inside
 *   a message with a notice, never opened ('deliver-encrypted', the default); or
 *   opened and rebuilt part by part so that nothing in it can fetch anything
 *   (neutralizeEntity: no URL in HTML, other parts as plain attachments), under a
 *   warning, labelled smime=neutral with UNAUTH_ENC ('deliver-decrypted'); or
 *   held for an administrator as received ('hold': action 'held', the message
 *   returned unchanged; handle-message.ts stores it and notifies the recipient);
 * - a decrypted message whose signature fails: the original, still encrypted
 *   (the library withholds the plaintext), labelled fail;
 * - anything the library refuses as a message (malformed, undecryptable, no key):
 *   the original, labelled.
 * Every Authentication-Results field already claiming our authserv-id and every
 * X-Kakitome- field is removed first, from the outer and from the decrypted header.
 *
 * A failure that is not a verdict about the message (the store, a bug) is thrown:
 * the caller answers 4xx and Postfix keeps the message.
 */
import { decryptMessage } from '../smime/decrypt-message.ts';
import type { MessageVerdict } from '../smime/verdict.ts';
import { findEnvelopeKeysRecording } from '../store/find-envelope-keys.ts';
import type { CmsInput } from '../cms/content-info.ts';
import { harvestQuietly } from '../operations/harvest-verdict-signers.ts';
import { claimsAuthservId, formatAuthenticationResults, isGatewayHeaderField, type SmimeAuthentication } from './authentication-results.ts';
import type { ResolvedPolicy } from '../policy/resolve-policy.ts';
import type { MethodResult } from '../dkim/authenticate-sender.ts';
import type { SignerValidator } from '../pki/types.ts';
import type { GatewayContext } from './gateway-context.ts';
import { rewriteHeaderSection } from './rewrite-header-section.ts';
import { isMessageVerdictError, smimeResultOfError, smimeResultOfVerdict } from './smime-result.ts';
import { tagSubject } from './tag-subject.ts';
import { wrapWithNotice } from './wrap-with-notice.ts';
import type { Certificate } from '../x509/certificate.ts';
import { mailboxKey } from '../x509/mailbox-address.ts';
import { parseEntity } from '../mime/parse-entity.ts';
import { neutralizeEntity } from '../mime/neutralize-entity.ts';
import { deliverDecrypted, type InboundAction } from './deliver-decrypted.ts';
import { ownedCopy } from '../threads/owned-copy.ts';

export interface InboundResult {
  message: Buffer;
  action: InboundAction;
  auth: SmimeAuthentication;
  /** Recipients the copy is not for: opened with keys none of their certificates name (notNamedBy). */
  notFor?: string[];
}

export const UNAUTHENTICATED_NOTICE = [
  'This message was encrypted in a way that cannot show whether it was altered on its way (CBC encryption without a signature of its sender inside it).',
  'The mail gateway did not open it, so that altered content cannot reach you (EFAIL). The original is attached, still encrypted.',
  'Ask the sender to sign their encrypted mail or to use AES-GCM; open the attachment only if you expected this message.',
  '',
  'このメッセージは、途中で改ざんされたかどうかを確認できない方式（送信者の署名のない CBC 暗号化）で暗号化されています。',
  'メールゲートウェイは改ざんされた内容が表示されないよう（EFAIL 対策）、このメッセージを開いていません。元のメッセージは暗号化されたまま添付されています。',
  '送信者に署名付きの暗号化または AES-GCM の利用を依頼してください。心当たりのある場合のみ添付を開いてください。',
].join('\n');

export const UNAUTHENTICATED_OPENED_NOTICE = [
  'WARNING: this message was encrypted in a way that cannot show whether it was altered on its way (CBC encryption without a signature of its sender inside it).',
  'The mail gateway opened it as your organisation’s policy says, and removed every link, image, style and other reference that could fetch something, so that altered content cannot send what you read elsewhere (EFAIL). Attachments were kept as plain files.',
  'Do not trust what it says (an account number, a link, a request) without checking with the sender another way.',
  '',
  '警告: このメッセージは、途中で改ざんされたかどうかを確認できない方式（送信者の署名のない CBC 暗号化）で暗号化されていました。',
  '組織のポリシーに従いメールゲートウェイが復号し、改ざんされた内容が読んだ情報を外部へ送ることのないよう（EFAIL 対策）、リンク・画像・スタイルなど外部を参照するものをすべて取り除きました。添付ファイルはそのまま残しています。',
  '振込先の変更・リンク・依頼などの内容は、別の方法で送信者に確認するまで信用しないでください。',
].join('\n');

/** Encrypted for keys the store never held: delivered unopened. */
export function noKeyHeld(): SmimeAuthentication {
  return { result: 'neutral', code: 'NOT_RECIPIENT', reason: 'The message is encrypted for keys this gateway does not hold; it was delivered unopened.' };
}

export const NOT_OPENED_UNAUTHENTICATED = 'CBC-encrypted content without a trusted signature of its sender inside was not opened (EFAIL); delivered still encrypted, with a notice.';
export const HELD_UNAUTHENTICATED = 'CBC-encrypted content without a trusted signature of its sender inside was not opened (EFAIL); held for an administrator, still encrypted.';

/**
 * The decrypted message `plain` rebuilt by neutralizeEntity under the received
 * message's own header fields (none from inside the unauthenticated content), with
 * the notice first, in text and on top of each HTML part.
 */
function deliverNeutralized(ctx: GatewayContext, received: Buffer, plain: Buffer): Buffer {
  const content = neutralizeEntity(parseEntity(plain), { banner: UNAUTHENTICATED_OPENED_NOTICE });
  return wrapWithNotice(rewriteHeaderSection(received, { remove: isForeignField(ctx) }), UNAUTHENTICATED_OPENED_NOTICE, content.entity);
}

/**
 * The keys a copy for `recipients` may be opened with: those whose certificate names
 * one of them (case aside, the domain in its one form). Ciphertext is no secret (it
 * crossed the Internet); were any key the store holds accepted, whoever can send
 * mail to an address of ours they read (their own, an auto-reply, a ticket system)
 * would have the gateway decrypt what was encrypted for a colleague and deliver it
 * to them.
 */
export function keysFor(recipients: readonly string[]): (certificate: Certificate) => boolean {
  const wanted = new Set(recipients.map(sameMailboxKey));
  return (certificate) => certificate.emailAddresses.some((a) => wanted.has(sameMailboxKey(a)));
}

const sameMailboxKey = (address: string) => mailboxKey(address.toLowerCase());

/**
 * The recipients no certificate of the keys a copy was opened with names: a copy
 * opened for Alice is not theirs (a second RCPT is no key). inboundGroups makes
 * theirs apart (transform-message.ts). Undefined when nothing was opened or all are named.
 */
export function notNamedBy(recipients: readonly string[], opened: ReadonlyArray<{ certificate: Certificate }>): string[] | undefined {
  if (opened.length === 0) return undefined;
  const named = new Set(opened.flatMap(({ certificate }) => certificate.emailAddresses.map(sameMailboxKey)));
  const rest = recipients.filter((r) => !named.has(sameMailboxKey(r)));
  return rest.length ? rest : undefined;
}

export function isForeignField(ctx: GatewayContext) {
  return (f: Parameters<typeof isGatewayHeaderField>[0]) => claimsAuthservId(f, ctx.authservId) || isGatewayHeaderField(f);
}

/**
 * Authentication-Results fields already written, by everything they are made of
 * (formatAuthenticationResults is a pure function of it): mail from one signer gets
 * the same field message after message, whose quoting and folding cost more than
 * the rest of the label. Only for fields without sender authentication results
 * (those carry per-message values). Bounded; the Buffers are never written to
 * (rewriteHeaderSection copies them into each message).
 */
const labels = new Map<string, Buffer>();
const MAX_LABELS = 256;

function authenticationResults(authservId: string, auth: SmimeAuthentication, senderAuth: readonly MethodResult[]): Buffer {
  if (senderAuth.length > 0) return formatAuthenticationResults(authservId, auth, senderAuth);
  // Every input, unambiguously (a signer's address is the sender's text).
  const key = JSON.stringify([authservId, auth.result, auth.code ?? null, auth.signer?.email ?? null, auth.signer?.serial ?? null, auth.reason]);
  let field = labels.get(key);
  if (!field) {
    if (labels.size >= MAX_LABELS) labels.clear();
    // In memory of its own: a kept view would keep a whole 8 KiB block of Buffer's pool alive.
    labels.set(key, (field = ownedCopy(formatAuthenticationResults(authservId, auth, senderAuth))));
  }
  return field;
}

/** `message` (or its header section alone) with our Authentication-Results on top and forged ones and our X- fields removed. */
export function labelWith(ctx: GatewayContext, message: Buffer, auth: SmimeAuthentication, senderAuth: readonly MethodResult[]): Buffer {
  return rewriteHeaderSection(message, { remove: isForeignField(ctx), prepend: [authenticationResults(ctx.authservId, auth, senderAuth)] });
}

/**
 * Trusted signers' certificates are harvested; a valid signer whose chain ends at a
 * CA root the store does not know records that root for an administrator's
 * decision (harvest-verdict-signers.ts, record-unknown-root.ts). Other verdicts
 * have nothing to keep.
 */
export async function harvest(ctx: Pick<GatewayContext, 'store' | 'harvested'>, verdict: MessageVerdict, validate: SignerValidator): Promise<void> {
  if (verdict.status !== 'trusted' && verdict.status !== 'valid-untrusted') return;
  // The harvest's notes go nowhere: the gateway shows no verdict view, so none is built for it.
  await harvestQuietly(ctx.store, verdict, { warnings: [] }, ctx.harvested, validate);
}

/**
 * One inbound message for recipients who share `policy` (the recipients' policy:
 * revocation, subject tags, unauthenticated encryption): labelled, and its Subject
 * tagged when policy says so.
 */
export async function processInbound(ctx: GatewayContext, received: Buffer, policy: ResolvedPolicy, senderAuth: readonly MethodResult[], recipients: readonly string[]): Promise<InboundResult> {
  const r = await openInbound(ctx, received, policy, senderAuth, recipients);
  return { ...r, message: tagSubject(r.message, r.auth.result, policy.settings) };
}

/** The envelope's keys, found when the library reached the envelope, handed out while their uses are being committed. */
type FoundKeys = Awaited<ReturnType<typeof findEnvelopeKeysRecording>>;

/**
 * `senderAuth`: DKIM, SPF and DMARC of the message as received (checked by the
 * caller), written beside smime. One pass over the message: the library opens it
 * and asks for keys only when it reaches an envelope (findKeys), so a message is
 * read and its envelope found once.
 */
async function openInbound(ctx: GatewayContext, received: Buffer, policy: ResolvedPolicy, senderAuth: readonly MethodResult[], recipients: readonly string[]): Promise<InboundResult> {
  const label = (message: Buffer, auth: SmimeAuthentication) => labelWith(ctx, message, auth, senderAuth);
  const validate = ctx.validator(policy.settings.revocation);
  let asked = false;
  let found: FoundKeys | undefined;
  // Keys by the envelope's recipient identifiers; a store failure here is thrown (4xx).
  const findKeys = async (envelope: CmsInput) => {
    asked = true;
    found = await findEnvelopeKeysRecording(ctx.store, envelope, undefined, keysFor(recipients));
    return found.keys;
  };
  const openUnauthenticated = policy.settings.unauthenticatedEncryption === 'deliver-decrypted';
  let result: InboundResult;
  try {
    const { message: plain, verdict } = await decryptMessage(received, { findKeys, validateSigner: validate, ...(openUnauthenticated ? { allowUnauthenticated: true } : {}) });
    result = await judged(ctx, received, plain, verdict, found, validate, label);
  } catch (e) {
    // The commit's failure first: nothing made with a key is released without its record.
    await found?.recorded;
    if (!isMessageVerdictError(e)) throw e;
    result = refused(ctx, e, asked, policy, received, label);
  }
  // Decrypted while the key use was being committed; released only once it is (a failed commit is thrown: 4xx, nothing relayed).
  await found?.recorded;
  const notFor = found && notNamedBy(recipients, found.keys);
  return notFor ? { ...result, notFor } : result;
}

/** What is delivered for a message the library opened: verified (no envelope), unopened (no key held), or decrypted. */
async function judged(ctx: GatewayContext, received: Buffer, plain: Buffer, verdict: MessageVerdict, found: FoundKeys | undefined, validate: SignerValidator, label: (message: Buffer, auth: SmimeAuthentication) => Buffer): Promise<InboundResult> {
  if (found === undefined) {
    // No envelope: verified (or unsigned), delivered as received.
    await harvest(ctx, verdict, validate);
    const auth = smimeResultOfVerdict(verdict);
    return { message: label(received, auth), action: verdict.status === 'unsigned' ? 'labelled' : 'verified', auth };
  }
  if (found.keys.length === 0) {
    const auth = noKeyHeld();
    return { message: label(received, auth), action: 'unopened', auth };
  }
  await harvest(ctx, verdict, validate);
  return deliverDecrypted(verdict, { received, plain: () => plain, neutralized: () => deliverNeutralized(ctx, received, plain), label });
}

/** What is delivered for a message the library refused: before any envelope, labelled; at or past it, unopened (CBC content nobody vouches for: by policy). */
function refused(ctx: GatewayContext, e: Parameters<typeof smimeResultOfError>[0], atEnvelope: boolean, policy: ResolvedPolicy, received: Buffer, label: (message: Buffer, auth: SmimeAuthentication) => Buffer): InboundResult {
  const auth = smimeResultOfError(e);
  if (!atEnvelope) return { message: label(received, auth), action: 'labelled', auth };
  if (e.code === 'UNAUTH_ENC' && policy.settings.unauthenticatedEncryption === 'hold') {
    // Kept as received by the caller (handle-message.ts), which tells the recipient.
    auth.reason = HELD_UNAUTHENTICATED;
    return { message: received, action: 'held', auth };
  }
  if (e.code === 'UNAUTH_ENC') {
    auth.reason = NOT_OPENED_UNAUTHENTICATED;
    return { message: label(wrapWithNotice(rewriteHeaderSection(received, { remove: isForeignField(ctx) }), UNAUTHENTICATED_NOTICE), auth), action: 'unopened-notice', auth };
  }
  return { message: label(received, auth), action: 'unopened', auth };
}
