/**
 * Inbound mail too large to hold in memory (issue 13, "large messages stream"): the
 * same labels as process-inbound.ts, from the library's streaming readers, with the
 * header edits (Authentication-Results on top, forged ones and our X- fields out,
 * subject tags) on the header section only:
 *
 * - application/pkcs7-mime: decryptMessageStream, the keys asked for once the
 *   envelope's RecipientInfos are read (findEnvelopeKeys, as in memory); the
 *   decrypted message goes to a spool (an unlinked file: see docs/security.md,
 *   "The gateway's spool") and is delivered from it under the label;
 * - multipart/signed: verifyMessageStream, and the message as received, signature
 *   intact, under the label;
 * - anything else: labelled `none`, or `neutral` (PARTIAL_SIGNED) when a part inside
 *   is S/MIME-signed (MimeStreamWalker finds it), as in memory, where only part of
 *   the message is signed; the parts themselves are not verified.
 *
 * What only the in-memory path does, and what happens instead:
 * - forms the streaming readers read only in memory (opaque signed-data, a signature
 *   around the encryption, CMS nested inside the envelope): labelled `permerror`
 *   (LIMIT) and delivered as received, unchecked and unopened;
 * - an encrypted message inside a multipart/signed: the signature is verified and
 *   labelled, the encryption stays closed;
 * - CBC content no trusted signature covers, policy `deliver-decrypted`: opened and
 *   rebuilt as it streams (neutralizeEntityStream: nothing fetchable survives, under
 *   the same warning), except that a text/html part larger than `inMemoryBytes` is
 *   removed (said in its place) and a text/plain one that large becomes an attachment;
 * - attached (forwarded) messages are not judged on their own (they never change the
 *   label anyway).
 */
import type { ContentSpool } from '../cms/stream/content-spool.ts';
import { isKakitomeError } from '../errors.ts';
import { resolveLimits, type Limits } from '../limits.ts';
import type { MethodResult } from '../dkim/authenticate-sender.ts';
import { MimeStreamWalker, type StreamEntityHeader } from '../mime/walk-mime-stream.ts';
import type { ResolvedPolicy } from '../policy/resolve-policy.ts';
import { classifyEntity } from '../smime/classify-entity.ts';
import { decryptMessageStream } from '../smime/decrypt-message-stream.ts';
import { headerOnlyEntity } from '../smime/read-header-section-stream.ts';
import type { MessageVerdict } from '../smime/verdict.ts';
import { verifyMessageStream } from '../smime/verify-message-stream.ts';
import { findEnvelopeKeys } from '../store/find-envelope-keys.ts';
import type { SmimeAuthentication } from './authentication-results.ts';
import type { GatewayContext } from './gateway-context.ts';
import { harvest, HELD_UNAUTHENTICATED, isForeignField, keysFor, notNamedBy, labelWith, noKeyHeld, NOT_OPENED_UNAUTHENTICATED, UNAUTHENTICATED_NOTICE, UNAUTHENTICATED_OPENED_NOTICE } from './process-inbound.ts';
import { deliverDecrypted, type InboundAction } from './deliver-decrypted.ts';
import { rewriteHeaderSection } from './rewrite-header-section.ts';
import { isMessageVerdictError, smimeResultOfError, smimeResultOfVerdict } from './smime-result.ts';
import { outputSpool, spoolWritable, SpooledMessage, type SpoolPlace } from './spooled-message.ts';
import { tagSubject } from './tag-subject.ts';
import type { Certificate } from '../x509/certificate.ts';
import { contentFrame, noticeFrame } from './wrap-with-notice.ts';
import { neutralizeEntityStream } from '../smime/neutralize-entity-stream.ts';

export interface StreamedInbound {
  message: SpooledMessage;
  action: InboundAction;
  auth: SmimeAuthentication;
  /** As InboundResult's (process-inbound.ts). */
  notFor?: string[];
}

/** Limits for the streaming readers: a form they would read into memory is refused past `inMemoryBytes` (LIMIT). */
function streamLimits(inMemoryBytes: number): Limits {
  return { ...resolveLimits(), maxMessageBytes: inMemoryBytes };
}

export async function processInboundStream(ctx: GatewayContext, received: SpooledMessage, policy: ResolvedPolicy, senderAuth: readonly MethodResult[], recipients: readonly string[], place: SpoolPlace & { inMemoryBytes: number }, owned: ContentSpool[]): Promise<StreamedInbound> {
  const opened: Array<{ certificate: Certificate }> = [];
  const r = await openInboundStream(ctx, received, policy, senderAuth, recipients, place, owned, opened);
  // Whatever became of it (decrypted, held, unopened under a notice): a copy keys were opened for is theirs alone.
  const notFor = notNamedBy(recipients, opened);
  return { ...r, message: r.message.withHead(tagSubject(r.message.head, r.auth.result, policy.settings)), ...(notFor ? { notFor } : {}) };
}

async function openInboundStream(ctx: GatewayContext, received: SpooledMessage, policy: ResolvedPolicy, senderAuth: readonly MethodResult[], recipients: readonly string[], place: SpoolPlace & { inMemoryBytes: number }, owned: ContentSpool[], opened: Array<{ certificate: Certificate }>): Promise<StreamedInbound> {
  const label = (m: SpooledMessage, auth: SmimeAuthentication) => m.withHead(labelWith(ctx, m.head, auth, senderAuth));
  const refused = (e: unknown): StreamedInbound => {
    if (!isMessageVerdictError(e)) throw e;
    const auth = smimeResultOfError(e);
    if (e.code === 'LIMIT') auth.reason = `${e.message} The message (${received.size} bytes) is larger than the gateway reads into memory (streamAboveBytes, ${place.inMemoryBytes}) and is in a form only read there (opaque signing, a signature around the encryption, or nested S/MIME); it was delivered as received, unchecked.`;
    return { message: label(received, auth), action: 'unopened', auth };
  };
  const validate = ctx.validator(policy.settings.revocation);
  const limits = streamLimits(place.inMemoryBytes);
  const spool = { dir: place.dir, maxBytes: place.maxBytes };
  let kind: ReturnType<typeof classifyEntity>['kind'];
  try {
    kind = classifyEntity(headerOnlyEntity(received.head, limits, true)).kind;
  } catch (e) {
    return refused(e);
  }

  if (kind === 'pkcs7-mime') {
    let keysFound = -1;
    const out = outputSpool(place);
    owned.push(out);
    let verdict: MessageVerdict;
    const openUnauthenticated = policy.settings.unauthenticatedEncryption === 'deliver-decrypted';
    try {
      // The readers copy what they keep: the spool's buffers are reused (no garbage for V8 to collect late).
      verdict = await decryptMessageStream(received.bytes({ reuse: true }), {
        ...(openUnauthenticated ? { allowUnauthenticated: true } : {}),
        findKeys: async (envelope) => {
          // A store failure here is thrown (4xx), as in memory.
          const keys = (await findEnvelopeKeys(ctx.store, envelope, undefined, keysFor(recipients))).map(({ key, certificate }) => ({ key, certificate }));
          keysFound = keys.length;
          opened.push(...keys);
          return keys;
        },
        validateSigner: validate,
        output: spoolWritable(out),
        limits,
        spool,
      });
    } catch (e) {
      if (keysFound === 0 && isKakitomeError(e, 'NOT_RECIPIENT')) {
        const auth = noKeyHeld();
        return { message: label(received, auth), action: 'unopened', auth };
      }
      // Policy hold: kept as received by the caller (handle-message.ts), in the store's sealed segments.
      if (isKakitomeError(e, 'UNAUTH_ENC') && policy.settings.unauthenticatedEncryption === 'hold') return { message: received, action: 'held', auth: { result: 'neutral', code: 'UNAUTH_ENC', reason: HELD_UNAUTHENTICATED } };
      if (isKakitomeError(e, 'UNAUTH_ENC')) return deliverWithNotice(ctx, received, place, owned, label);
      return refused(e);
    }
    await harvest(ctx, verdict, validate);
    // A failing signature: nothing was written to `out`, and the original goes on.
    return deliverDecrypted(verdict, { received, plain: () => SpooledMessage.read(out), neutralized: () => deliverNeutralizedStream(ctx, received, out, place, owned), label });
  }

  if (kind === 'multipart-signed') {
    let verdict: MessageVerdict;
    try {
      verdict = await verifyMessageStream(received.bytes({ reuse: true }), { validateSigner: validate, limits, spool });
    } catch (e) {
      return refused(e);
    }
    await harvest(ctx, verdict, validate);
    const auth = smimeResultOfVerdict(verdict);
    return { message: label(received, auth), action: verdict.status === 'unsigned' ? 'labelled' : 'verified', auth };
  }

  let signedPart: boolean;
  try {
    signedPart = await hasSignedPart(received, limits);
  } catch (e) {
    return refused(e);
  }
  const auth: SmimeAuthentication = signedPart
    ? { result: 'neutral', code: 'PARTIAL_SIGNED', reason: `Only part of this message is signed; the rest (including what you see around the signed part) is not covered by any signature. In a message this large (${received.size} bytes) the signed parts were not verified.` }
    : { result: 'none', reason: 'The message is not signed.' };
  return { message: label(received, auth), action: 'labelled', auth };
}

/** A part below the top is S/MIME-signed (multipart/signed, or pkcs7-mime not declared as an envelope). */
async function hasSignedPart(message: SpooledMessage, limits: Limits): Promise<boolean> {
  let found = false;
  const walker = new MimeStreamWalker({
    header(h: StreamEntityHeader) {
      if (h.depth === 0 || found) return;
      const k = classifyEntity({ ...headerOnlyEntity(h.raw, limits), children: [] });
      const smimeType = h.contentType.params['smime-type']?.toLowerCase();
      if (k.kind === 'multipart-signed' || (k.kind === 'pkcs7-mime' && smimeType !== 'enveloped-data' && smimeType !== 'authenveloped-data')) found = true;
    },
    body() {},
    bodyEnd() {},
    structure() {},
  }, limits);
  for await (const c of message.bytes()) {
    walker.push(c);
    if (found) return true;
  }
  walker.end();
  return found;
}

/**
 * deliverNeutralized of process-inbound.ts as it streams: the decrypted message in
 * `plain` rebuilt part by part (neutralizeEntityStream) under the received
 * message's own header fields, with the warning first, written to a new spool.
 */
async function deliverNeutralizedStream(ctx: GatewayContext, received: SpooledMessage, plain: ContentSpool, place: SpoolPlace & { inMemoryBytes: number }, owned: ContentSpool[]): Promise<SpooledMessage> {
  const { before, after } = contentFrame(rewriteHeaderSection(received.head, { remove: isForeignField(ctx) }), UNAUTHENTICATED_OPENED_NOTICE);
  const out = outputSpool(place);
  owned.push(out);
  await out.write(before);
  await neutralizeEntityStream(plain.replay(), (b) => out.write(b), { html: { banner: UNAUTHENTICATED_OPENED_NOTICE }, maxTextBytes: place.inMemoryBytes, limits: resolveLimits() });
  await out.write(after);
  return SpooledMessage.read(out);
}

/** CBC content nobody vouches for: the original, still encrypted, attached to a notice (wrapWithNotice's form, written to a spool). */
async function deliverWithNotice(ctx: GatewayContext, received: SpooledMessage, place: SpoolPlace, owned: ContentSpool[], label: (m: SpooledMessage, auth: SmimeAuthentication) => SpooledMessage): Promise<StreamedInbound> {
  const auth: SmimeAuthentication = { result: 'neutral', code: 'UNAUTH_ENC', reason: NOT_OPENED_UNAUTHENTICATED };
  const original = received.withHead(rewriteHeaderSection(received.head, { remove: isForeignField(ctx) }));
  const { before, after } = noticeFrame(original.head, UNAUTHENTICATED_NOTICE, '8bit');
  const out = outputSpool(place);
  owned.push(out);
  await out.write(before);
  for await (const c of original.bytes()) await out.write(c);
  await out.write(after);
  return { message: label(await SpooledMessage.read(out), auth), action: 'unopened-notice', auth };
}
