/**
 * Forwarded encrypted mail, opened for sending on (issue 13, "Forwarding": a gateway
 * re-encrypts mail a user forwards for its new recipient). decryptMessage never
 * changes the message holding a forwarded encrypted message; this is the explicit
 * way to: the message as decryptMessage returns it (its own S/MIME layers removed),
 * with each encrypted message attached to it directly replaced by its decrypted
 * form (AttachedMessageVerdict.decrypted: only the encryption removed, signatures
 * made inside it kept, so the new recipient can verify them), where decryptMessage's
 * rules release that form for it alone: AEAD content,
 * or CBC content under a trusted signature of its own From made inside the
 * encryption (EFAIL), and no failing signature over it. An attachment that may not
 * be released stays exactly as received, and `verdict.attachedMessages` says why.
 * Only the replaced part changes (its header fields kept, its transfer encoding set
 * for the new body).
 *
 * The result holds plaintext that arrived encrypted: encrypt it again (encryptMessage)
 * before it leaves. Pass only the keys of the person forwarding (who could read the
 * attachment anyway): with every key of an organisation, re-encrypting attachments for
 * outside recipients would decrypt any intercepted message someone is tricked into
 * forwarding.
 *
 * @example
 *   const { message, decrypted } = await decryptAttachedMessages(outbound, { keys: senderKeys, validateSigner });
 *   const sealed = encryptMessage(message, { recipients: [{ certificate: recipientCert }] });
 */
import { resolveLimits } from '../limits.ts';
import { buildEntity } from '../mime/build-entity.ts';
import type { MimeEntity } from '../mime/entity.ts';
import { parseEntity } from '../mime/parse-entity.ts';
import { decryptMessage, type DecryptMessageOptions } from './decrypt-message.ts';
import { findAttachedMessages } from './open-attached-messages.ts';
import type { AttachedMessageVerdict, MessageVerdict } from './verdict.ts';

export interface DecryptAttachedMessagesResult {
  /** decryptMessage's message with the released attachments replaced (empty when decryptMessage withholds it). */
  message: Buffer;
  verdict: MessageVerdict;
  /** Part numbers of the attachments replaced by their decrypted form. */
  decrypted: string[];
}

/** An attachment whose decrypted form decryptMessage would release for it alone (openAttachedMessages sets it only then). */
function released(a: AttachedMessageVerdict): boolean {
  return a.decrypted !== undefined && a.verdict !== undefined && a.verdict.status !== 'invalid';
}

export async function decryptAttachedMessages(message: Uint8Array, options: DecryptMessageOptions): Promise<DecryptAttachedMessagesResult> {
  const { message: opened, verdict } = await decryptMessage(message, options);
  const open = new Map((verdict.attachedMessages ?? []).filter(released).map((a) => [a.part, a.decrypted!]));
  if (open.size === 0 || opened.length === 0) return { message: opened, verdict, decrypted: [] };
  // decryptMessage's message is in canonical CRLF form: parsed again, its parts number as attachedMessages counts them.
  const root = parseEntity(opened, { limits: resolveLimits(options.limits) });
  const pieces: Buffer[] = [];
  const decrypted: string[] = [];
  let at = 0;
  for (const { entity, part } of findAttachedMessages(root)) {
    const plain = open.get(part);
    // Parts inside a replaced one come after its start: attachedMessages lists only direct attachments anyway.
    if (plain === undefined || entity.offset < at) continue;
    pieces.push(opened.subarray(at, entity.offset), replacement(entity, plain));
    at = entity.offset + entity.raw.length;
    decrypted.push(part);
  }
  pieces.push(opened.subarray(at));
  return { message: Buffer.concat(pieces), verdict, decrypted };
}

/** The attached part with `plain` as its body: its header fields as they were, the transfer encoding the body needs (RFC 2046 section 5.2.1: 7bit, 8bit or binary). */
function replacement(entity: MimeEntity, plain: Buffer): Buffer {
  const headers = entity.headers.filter((h) => h.name.toLowerCase() !== 'content-transfer-encoding');
  return buildEntity([...headers, ['Content-Transfer-Encoding', transferEncodingFor(plain)]], plain);
}

function transferEncodingFor(body: Buffer): '7bit' | '8bit' | 'binary' {
  let eightBit = false;
  let line = 0;
  for (let i = 0; i < body.length; i++) {
    const b = body[i]!;
    if (b === 0x0a) {
      // A bare LF, or a line over RFC 5322's 998 octets: binary.
      if (i === 0 || body[i - 1] !== 0x0d) return 'binary';
      line = 0;
      continue;
    }
    if (b === 0 || (b === 0x0d && body[i + 1] !== 0x0a) || ++line > 999) return 'binary';
    if (b >= 0x80) eightBit = true;
  }
  return eightBit ? '8bit' : '7bit';
}
