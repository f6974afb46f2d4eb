/**
 * Outbound copies of a message too large to hold in memory (issue 13, "large
 * messages stream"): the same plan (plan-outbound.ts decides, from the header
 * section alone) and the same steps as process-outbound.ts, with the library's
 * streaming twins: the trigger edits on the header section only, then per variant
 * signMessageStream (multipart/signed or opaque) or encryptMessageStream (signed
 * inside as multipart/signed, hideSubject), each written into a spool of its own, and
 * DKIM last: the body hash taken while the copy is read back (DkimBodyHash), the
 * DKIM-Signature fields put in front of the copy's header section. A copy that is
 * neither signed nor encrypted is the received message under the edited header.
 *
 * Every spool made is pushed to `owned` at once, so the caller disposes of it
 * whatever happens. A refusal about the message is thrown as the library's
 * KakitomeError, as in memory (the caller bounces it; nothing leaves unsigned).
 */
import type { ContentSpool } from '../cms/stream/content-spool.ts';
import { DkimBodyHash } from '../dkim/dkim-body-hash.ts';
import { dkimSignatureFields } from '../dkim/sign-dkim.ts';
import { encryptMessageStream } from '../smime/encrypt-message-stream.ts';
import { signMessageStream } from '../smime/sign-message-stream.ts';
import type { GatewayContext } from './gateway-context.ts';
import type { OutboundAction, OutboundPlan } from './plan-outbound.ts';
import { applyTriggerEdits, encryptionOf, prepareCopies } from './process-outbound.ts';
import { readHeaderFields } from './rewrite-header-section.ts';
import { outputSpool, spoolWritable, SpooledMessage, type SpoolPlace } from './spooled-message.ts';

export interface StreamedVariant {
  recipients: string[];
  message: SpooledMessage;
  action: OutboundAction;
}

export async function processOutboundStream(ctx: GatewayContext, received: SpooledMessage, plan: OutboundPlan, place: SpoolPlace, owned: ContentSpool[]): Promise<{ variants: StreamedVariant[]; unsignedNoKey: boolean; dkimNoKey: boolean }> {
  const material = await prepareCopies(ctx, plan);
  const message = received.withHead(applyTriggerEdits(received.head, plan));
  const variants: StreamedVariant[] = [];
  for (const v of plan.variants) {
    const signing = v.sign === 'none' ? undefined : material.sign;
    let copy = message;
    if (v.encryptTo.length || signing) {
      const out = outputSpool(place);
      owned.push(out);
      if (v.encryptTo.length) await encryptMessageStream(message.bytes(), spoolWritable(out), encryptionOf(v, plan, signing));
      else await signMessageStream(message.bytes(), spoolWritable(out), { ...signing!, ...(v.sign === 'opaque' ? { opaque: true } : {}) });
      copy = await SpooledMessage.read(out);
    }
    // DKIM last, over the copy as it leaves (its S/MIME structure included).
    if (material.dkim.length) {
      const hash = new DkimBodyHash();
      for await (const c of copy.body()) hash.update(c);
      copy = copy.withHead(Buffer.concat([...dkimSignatureFields(readHeaderFields(copy.head), hash.digest(), { signers: material.dkim }), copy.head]));
    }
    variants.push({ recipients: v.recipients, action: v.action, message: copy });
  }
  return { variants, unsignedNoKey: material.unsignedNoKey, dkimNoKey: material.dkimNoKey };
}
