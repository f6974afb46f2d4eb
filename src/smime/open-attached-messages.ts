/**
 * Forwarded and attached mail (issue 12, item 1): the message/rfc822 and
 * message/global parts of a message's payload (the message with its S/MIME layers
 * removed), each opened as a message of its own by the same reader, with the same
 * rules (trust, revocation, algorithm policy, the EFAIL rule for CBC content, the
 * identity check against ITS OWN From), and reported under its part number and file
 * name. Never merged into the verdict of the message holding it: an attached
 * message's valid signature never makes that message 'trusted', an invalid one never
 * makes it 'invalid'; a warning on it says so in words.
 *
 * Only content that is released is looked into: openMessage calls this after the
 * verdict allows the payload out (never inside CBC content it refuses, never inside
 * decrypted content it withholds).
 *
 * Bounds (src/limits.ts): forwarded messages nested in one another up to
 * limits.maxLayers deep, and limits.maxLayers * 4 attached messages opened per
 * message, all levels together; past either, the attachment is reported as not
 * opened (LIMIT) with the reason, and the rest of the message is read as usual. The
 * message's one decompression budget serves all of them.
 */
import type { DecompressionBudget } from '../cms/compressed-data.ts';
import { KakitomeError } from '../errors.ts';
import type { Limits } from '../limits.ts';
import { decodeBody } from '../mime/decode-body.ts';
import type { MimeEntity } from '../mime/entity.ts';
import { readPartFilename } from '../mime/read-part-filename.ts';
import { WITHHELD_INVALID } from './unauthenticated-content.ts';
import type { AttachedMessageVerdict, MessageVerdict } from './verdict.ts';

/** Where one message sits in a chain of attached messages, and what the chain has spent. */
export interface AttachedMessageContext {
  /** 0 for the message given to the reader, 1 for a message attached to it, and so on. */
  depth: number;
  /** Attached messages opened so far, all levels together. */
  opened: { count: number };
  /** One decompression budget for the message and everything attached to it. */
  budget: DecompressionBudget;
}

/** A message opened: its verdict and, for an attached message that was decrypted and may be released, its decrypted form. */
export interface OpenedMessage {
  verdict: MessageVerdict;
  /** The message with only its encryption removed (signatures made inside it kept). */
  decryptedForm?: Buffer;
}

/** Opens the bytes of one attached message as a message of its own, one level deeper. */
export type OpenAttached = (message: Buffer, context: AttachedMessageContext) => Promise<OpenedMessage>;

const MESSAGE_TYPES = new Set(['message/rfc822', 'message/global']);

/** True for a part that holds a whole message (RFC 2046 section 5.2.1, RFC 6532 section 3.7). */
export function isAttachedMessage(entity: Pick<MimeEntity, 'contentType'>): boolean {
  return MESSAGE_TYPES.has(entity.contentType.mediaType);
}

/** The attached messages inside `payload` with their IMAP part numbers, in order. */
export function* findAttachedMessages(payload: MimeEntity): Generator<{ entity: MimeEntity; part: string }> {
  if (payload.children.length === 0) {
    if (isAttachedMessage(payload)) yield { entity: payload, part: '1' };
    return;
  }
  const walk = function* (e: MimeEntity, part: string): Generator<{ entity: MimeEntity; part: string }> {
    if (isAttachedMessage(e)) yield { entity: e, part };
    for (let i = 0; i < e.children.length; i++) yield* walk(e.children[i]!, `${part}.${i + 1}`);
  };
  for (let i = 0; i < payload.children.length; i++) yield* walk(payload.children[i]!, `${i + 1}`);
}

/** "attached message 2 ("fwd.eml")": how a person is told which one. */
export function attachedMessageLabel(a: Pick<AttachedMessageVerdict, 'part' | 'filename'>): string {
  return `attached message ${a.part}${a.filename ? ` ("${a.filename}")` : ''}`;
}

/**
 * Opens and judges every attached message inside `payload`. `warnings` (the verdict
 * of the message holding them) gets one sentence for each that is signed, encrypted or
 * could not be opened, saying that it does not change that verdict.
 */
export async function openAttachedMessages(payload: MimeEntity, limits: Limits, context: AttachedMessageContext, open: OpenAttached, warnings: string[]): Promise<AttachedMessageVerdict[]> {
  const found: AttachedMessageVerdict[] = [];
  for (const { entity, part } of findAttachedMessages(payload)) {
    const filename = readPartFilename(entity);
    const where = { part, ...(filename ? { filename } : {}) };
    const label = attachedMessageLabel(where);
    const sentenceStart = label[0]!.toUpperCase() + label.slice(1);
    let report: AttachedMessageVerdict;
    try {
      if (context.depth + 1 > limits.maxLayers) {
        throw new KakitomeError('LIMIT', `Not opened: it is forwarded more than ${limits.maxLayers} levels deep (messages attached to attached messages; limits.maxLayers).`);
      }
      if (context.opened.count >= limits.maxLayers * 4) {
        throw new KakitomeError('LIMIT', `Not opened: the message holds more than ${limits.maxLayers * 4} attached messages, all levels together (limits.maxLayers x 4).`);
      }
      context.opened.count++;
      const { verdict, decryptedForm } = await open(decodeBody(entity), { ...context, depth: context.depth + 1 });
      // decryptMessage's rule for it alone: decrypted content whose signature fails is withheld.
      if (verdict.status === 'invalid' && verdict.layers.some((l) => l.decrypted === true)) {
        verdict.output = Buffer.alloc(0);
        verdict.warnings.push(WITHHELD_INVALID);
      }
      if (entity.transferEncoding !== '7bit' && entity.transferEncoding !== '8bit' && entity.transferEncoding !== 'binary') {
        // QUIRK: RFC 2046 section 5.2.1 allows only identity encodings for message/rfc822; some clients base64 it.
        verdict.warnings.unshift(`The ${label} was ${entity.transferEncoding}-encoded (RFC 2046 section 5.2.1 allows only 7bit, 8bit or binary); it was decoded first.`);
      }
      report = { ...where, verdict, ...(decryptedForm ? { decrypted: decryptedForm } : {}), summary: `${sentenceStart}: ${verdict.summary}` };
      if (verdict.signers.length > 0 || verdict.layers.length > 0) warnings.push(`The ${label} ${inWords(verdict)}: that is its own verdict, and it does not change this message's.`);
    } catch (e) {
      if (!(e instanceof KakitomeError)) throw e;
      const error = { code: e.code, message: e.message };
      report = { ...where, error, summary: e.code === 'LIMIT' ? `${sentenceStart} was not opened (LIMIT): ${e.message.replace(/^Not opened: /, '')}` : `${sentenceStart} could not be opened (${e.code}): ${e.message}` };
      warnings.push(`The ${label} could not be opened (${e.code}); this message's verdict does not depend on it.`);
    }
    found.push(report);
  }
  return found;
}

/** What an attached message's verdict comes to, in a few words for the warning on the message holding it. */
function inWords(v: MessageVerdict): string {
  const who = [...new Set(v.signers.filter((s) => s.scope === 'message').map((s) => s.email ?? s.subject))].join(', ');
  const code = v.code ? ` (${v.code})` : '';
  switch (v.status) {
    case 'trusted': return `is signed by ${who} and trusted`;
    case 'valid-untrusted': return `is signed by ${who}, but not trusted${code}`;
    case 'invalid': return `has a signature that is NOT valid${code}`;
    case 'partial': return 'is signed only in part (PARTIAL_SIGNED)';
    case 'unsigned':
      if (v.layers.some((l) => l.decrypted === false && l.coversBody)) return 'is encrypted and was not decrypted';
      return v.layers.some((l) => l.decrypted === true) ? `was decrypted and is not signed${code}` : 'is not signed';
  }
}
