/**
 * Outbound mail (envelope sender in one of our domains, recipients outside), one
 * copy per recipient in as few variants as possible (issue 13):
 * - signed with the store's current key for the From address (policy `sign`);
 * - a recipient whose current certificate is in the store and validates now
 *   (findTrustedRecipientCertificate: path, revocation, the address in it) gets the
 *   signed message encrypted (policy `encrypt: if-possible`), the cipher chosen from
 *   the recipients' announced capabilities (chooseContentEncryption). Recipients
 *   named in To/Cc share one envelope; a recipient not named there (Bcc) gets an
 *   envelope of their own, so no copy reveals a Bcc recipient's certificate;
 * - the others get the signed copy;
 * - a sender without a key passes unsigned (counted by the caller), still encrypted
 *   where possible.
 * Encryption keeps the header fields readable outside unless `hideSubject`
 * (RFC 9788 hcp_no_confidentiality, issue 12 item 2).
 *
 * A refusal about the message (malformed, over a limit) is thrown as the library's
 * KakitomeError: the caller bounces it rather than pass it on unsigned; a store
 * failure is thrown as is (4xx).
 */
import { isKakitomeError, type ErrorCode } from '../errors.ts';
import { getHeaderFields } from '../mime/entity.ts';
import { parseAddresses } from '../mime/parse-addresses.ts';
import { encryptMessage } from '../smime/encrypt-message.ts';
import { signMessage, type SignMessageOptions } from '../smime/sign-message.ts';
import { chooseContentEncryption } from '../store/choose-content-encryption.ts';
import { CERTIFICATE_REFUSALS, findTrustedRecipientCertificate } from '../store/find-trusted-recipient-certificate.ts';
import type { CertificateRecord } from '../store/store.ts';
import type { GatewayContext } from './gateway-context.ts';
import { readHeaderFields } from './rewrite-header-section.ts';

export type OutboundAction = 'signed' | 'signed-encrypted' | 'encrypted' | 'unchanged';

export interface Variant {
  recipients: string[];
  message: Buffer;
  action: OutboundAction;
}

export interface OutboundResult {
  variants: Variant[];
  /** The From address had no current signing key in the store: nothing was signed. */
  unsignedNoKey: boolean;
  /** Recipients whose stored certificate was refused (revoked, expired...): they got the signed copy. */
  refusedCertificates: Array<{ code: ErrorCode }>;
}

export async function processOutbound(ctx: GatewayContext, message: Buffer, recipients: readonly string[]): Promise<OutboundResult> {
  const fields = readHeaderFields(message);
  const header = { headers: fields };
  const from = getHeaderFields(header, 'from').flatMap((f) => parseAddresses(f.value))[0];
  const visible = new Set(['to', 'cc'].flatMap((n) => getHeaderFields(header, n)).flatMap((f) => parseAddresses(f.value)).map((a) => a.toLowerCase()));

  let sign: SignMessageOptions | undefined;
  let unsignedNoKey = false;
  if (ctx.policy.sign) {
    const id = from !== undefined ? await ctx.signingIdentity(from) : undefined;
    if (id) sign = { signers: [{ certificate: id.certificate, key: id.key }], certificates: id.chain };
    else unsignedNoKey = true;
  }

  const refusedCertificates: OutboundResult['refusedCertificates'] = [];
  const encryptable: Array<{ address: string; record: CertificateRecord }> = [];
  const plain: string[] = [];
  for (const address of recipients) {
    let record: CertificateRecord | undefined;
    if (ctx.policy.encrypt === 'if-possible') {
      try {
        record = (await findTrustedRecipientCertificate(ctx.store, address, ctx.validateRecipient))?.record;
      } catch (e) {
        if (!(isKakitomeError(e) && CERTIFICATE_REFUSALS.has(e.code))) throw e;
        refusedCertificates.push({ code: e.code });
      }
    }
    if (record) encryptable.push({ address, record });
    else plain.push(address);
  }

  const variants: Variant[] = [];
  const shared = encryptable.filter((r) => visible.has(r.address.toLowerCase()));
  const groups = [...(shared.length ? [shared] : []), ...encryptable.filter((r) => !visible.has(r.address.toLowerCase())).map((r) => [r])];
  for (const group of groups) {
    const contentEncryption = chooseContentEncryption(group.map((r) => ({ recipient: r.address, ...(r.record.capabilities ? { capabilities: r.record.capabilities } : {}) }))).name;
    variants.push({
      recipients: group.map((r) => r.address),
      message: encryptMessage(message, {
        recipients: group.map((r) => ({ certificate: r.record.certificate })),
        contentEncryption,
        ...(sign ? { sign } : {}),
        ...(ctx.policy.hideSubject ? { hideSubject: true } : {}),
      }),
      action: sign ? 'signed-encrypted' : 'encrypted',
    });
  }
  if (plain.length) variants.push({ recipients: plain, message: sign ? signMessage(message, sign) : message, action: sign ? 'signed' : 'unchanged' });
  return { variants, unsignedNoKey, refusedCertificates };
}
