/**
 * Outbound mail (envelope sender in one of our domains, recipients outside): the
 * copies plan-outbound.ts decided, made (issue 13):
 * - the triggers' edits first (a subject trigger's text out of the Subject, a
 *   trigger field of ours removed), so the instruction to the gateway never leaves;
 * - per variant: signed (multipart/signed, or opaque), encrypted to the variant's
 *   recipients with the plan's cipher and signed inside, or both, or neither, with
 *   the sender's identity opened once (its key use audited);
 * - encryption keeps the header fields readable outside unless `hideSubject`
 *   (RFC 9788 hcp_no_confidentiality, issue 12 item 2);
 * - with policy `dkim`, every copy DKIM-signed last (signDkim) with the From
 *   domain's active keys, so DKIM covers the S/MIME structure as sent.
 * Recipients the plan bounces or holds get no copy here (handle-message.ts).
 *
 * A refusal about the message (malformed, over a limit) is thrown as the library's
 * KakitomeError: the caller bounces it rather than pass it on unsigned; a store
 * failure is thrown as is (4xx).
 */
import { checkDkimDomain } from '../dkim/dkim-key.ts';
import { signDkim } from '../dkim/sign-dkim.ts';
import { formatHeaderField } from '../mime/build-entity.ts';
import type { DkimSigningKey } from '../store/dkim-key-directory.ts';
import { encryptMessage } from '../smime/encrypt-message.ts';
import { signMessage, type SignMessageOptions } from '../smime/sign-message.ts';
import type { GatewayContext } from './gateway-context.ts';
import type { OutboundAction, OutboundPlan, VariantPlan } from './plan-outbound.ts';
import { rewriteHeaderSection } from './rewrite-header-section.ts';

export type { OutboundAction };

export interface Variant {
  recipients: string[];
  message: Buffer;
  action: OutboundAction;
}

export interface OutboundResult {
  variants: Variant[];
  /** The From address had no current signing key in the store: copies that policy wanted signed were not. */
  unsignedNoKey: boolean;
  /** Policy dkim is on and the From domain has no active DKIM key: the copies left without DKIM. */
  dkimNoKey: boolean;
}

/**
 * The DKIM keys for the copies: the From domain's active keys when the sender's
 * policy says `dkim` (none, and dkimNoKey, when the domain has none or is no DNS
 * name a key could be published under).
 */
async function dkimSigners(ctx: GatewayContext, plan: OutboundPlan): Promise<{ keys: DkimSigningKey[]; noKey: boolean }> {
  if (!plan.policy.settings.dkim || plan.from === undefined) return { keys: [], noKey: plan.policy.settings.dkim };
  let domain: string;
  try {
    domain = checkDkimDomain(plan.from.slice(plan.from.lastIndexOf('@') + 1));
  } catch {
    return { keys: [], noKey: true };
  }
  const keys = await ctx.dkimKeys(domain);
  return { keys, noKey: keys.length === 0 };
}

/** The message with the triggers' edits applied (unchanged when no trigger matched). */
export function applyTriggerEdits(message: Buffer, plan: OutboundPlan): Buffer {
  const t = plan.triggers;
  if (!t.matches.length) return message;
  return rewriteHeaderSection(message, {
    remove: t.removeField,
    ...(t.subject !== undefined ? { replace: (f) => (f.name.toLowerCase() === 'subject' ? formatHeaderField('Subject', t.subject!) : undefined) } : {}),
  });
}

/** What every copy of one message shares: the sender's identity (opened once, its key use audited) and the DKIM keys. */
export interface CopyMaterial {
  sign?: SignMessageOptions;
  dkim: DkimSigningKey[];
  unsignedNoKey: boolean;
  dkimNoKey: boolean;
}

export async function prepareCopies(ctx: GatewayContext, plan: OutboundPlan): Promise<CopyMaterial> {
  const unsignedNoKey = plan.decisions.some((d) => d.sign.because[0]?.setting === 'signer');
  let sign: SignMessageOptions | undefined;
  if (plan.variants.some((v) => v.sign !== 'none')) {
    const id = await ctx.signingIdentity(plan.from!);
    // The plan saw a signing certificate; a key gone since (retired a moment ago) fails safe: 4xx, retried.
    if (!id) throw new Error('the sender\'s signing key disappeared while the message was processed');
    sign = { signers: [{ certificate: id.certificate, key: id.key }], certificates: id.chain };
  }
  const dkim = await dkimSigners(ctx, plan);
  return { ...(sign ? { sign } : {}), dkim: dkim.keys, unsignedNoKey, dkimNoKey: dkim.noKey };
}

/** The options encryptMessage and encryptMessageStream take for an encrypted variant. */
export function encryptionOf(v: VariantPlan, plan: OutboundPlan, signing: SignMessageOptions | undefined) {
  return {
    recipients: v.encryptTo.map((r) => ({ certificate: r.certificate })),
    contentEncryption: v.contentEncryption!,
    ...(signing ? { sign: signing } : {}),
    ...(plan.policy.settings.hideSubject ? { hideSubject: true } : {}),
  };
}

export async function processOutbound(ctx: GatewayContext, received: Buffer, plan: OutboundPlan): Promise<OutboundResult> {
  const material = await prepareCopies(ctx, plan);
  const message = applyTriggerEdits(received, plan);
  const made: Variant[] = plan.variants.map((v) => {
    const signing = v.sign === 'none' ? undefined : material.sign;
    if (v.encryptTo.length) return { recipients: v.recipients, action: v.action, message: encryptMessage(message, encryptionOf(v, plan, signing)) };
    return { recipients: v.recipients, action: v.action, message: signing ? signMessage(message, { ...signing, ...(v.sign === 'opaque' ? { opaque: true } : {}) }) : message };
  });
  // DKIM last, over each copy as it leaves (its S/MIME structure included).
  const variants = material.dkim.length ? made.map((v) => ({ ...v, message: signDkim(v.message, { signers: material.dkim }) })) : made;
  return { variants, unsignedNoKey: material.unsignedNoKey, dkimNoKey: material.dkimNoKey };
}
