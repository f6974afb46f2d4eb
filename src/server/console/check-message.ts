/**
 * "Is this mail genuine?": one message, judged in memory by the library exactly as
 * `kakitome verify` judges it (the same operation, src/operations/verify-with-trust.ts;
 * the store's trusted CAs as anchors, revocation as the service is configured), and
 * never stored: no harvesting, no copy on disk, nothing of it in the log. An
 * encrypted message is opened only for a signed-in person who is one of its
 * recipients, with that person's keys only (their use audited as every key use
 * is), under the decrypt operation's rules (decrypt-with-trust.ts: only an
 * encrypted body, EFAIL, one refusal for every decryption failure); what it
 * releases is shown as plain text only (readable-text.ts), in memory, never stored.
 * Signers are judged by the service's kept validator (service-cache.ts), so checks
 * share its revocation answers and downloads instead of each fetching its own.
 */
import { decryptWithTrust } from '../../operations/decrypt-with-trust.ts';
import { verifyWithTrust, type TrustContext } from '../../operations/verify-with-trust.ts';
import { findMessageEnvelope } from '../../smime/find-message-envelope.ts';
import type { VerdictView } from '../../smime/verdict-view.ts';
import { parseEnvelopeFromContentInfo } from '../../cms/enveloped-data/parse.ts';
import { isKakitomeError } from '../../errors.ts';
import { findOwnedEnvelopeKeys } from '../../store/find-envelope-keys.ts';
import { normalizeAddress } from '../../store/store.ts';
import type { Person } from '../../store/people-directory.ts';
import type { ConsoleContext } from './console-context.ts';
import { readableText, type ReadableText } from './readable-text.ts';
import { serviceCache } from '../service-cache.ts';

export interface EncryptionFacts {
  algorithm: string;
  recipients: number;
}

export type CheckOutcome =
  | { kind: 'verdict'; view: VerdictView; decryptedFor?: string; encryption?: EncryptionFacts; content?: ReadableText }
  | { kind: 'encrypted'; signedIn: boolean; encryption: EncryptionFacts }
  | { kind: 'refused'; reason: 'not-a-mail' | 'unauth-enc' | 'decrypt-failed' | 'unreadable'; detail?: string };

/** A header section: the first line is a header field (name, colon). */
function looksLikeMail(message: Buffer): boolean {
  return /^[\x21-\x39\x3b-\x7e]{1,76}:/.test(message.subarray(0, 80).toString('latin1'));
}

export async function checkMessage(cx: ConsoleContext, message: Buffer, person: Person | undefined): Promise<CheckOutcome> {
  if (!looksLikeMail(message)) return { kind: 'refused', reason: 'not-a-mail' };
  const store = cx.service.store.actingAs(person ? `console:${person.email}` : 'console:check');
  // The service's kept validator (service-cache.ts): its caches and shared downloads serve every check.
  const trust: TrustContext = { validateSigner: await serviceCache(cx.service).signerValidator(cx.service.config.revocation), certificates: [], allowLegacy: false };
  try {
    const envelope = findMessageEnvelope(message);
    if (envelope) {
      const parsed = parseEnvelopeFromContentInfo(envelope);
      const encryption = { algorithm: parsed.contentEncryption.cipher.name, recipients: parsed.recipients.length };
      const mine = person ? normalizeAddress(person.email) : undefined;
      const keys = mine ? await findOwnedEnvelopeKeys(store, envelope, async (address) => normalizeAddress(address) === mine) : [];
      if (!keys.length) return { kind: 'encrypted', signedIn: person !== undefined, encryption };
      const { view, output } = await decryptWithTrust(message, keys, trust);
      // The operation releases content only under its rules (EFAIL: no CBC content without
      // a trusted signature of its sender inside; nothing when a signature inside fails).
      const content = output ? readableText(output) : undefined;
      output?.fill(0);
      return { kind: 'verdict', view, decryptedFor: person!.email, encryption, ...(content ? { content } : {}) };
    }
    const { view } = await verifyWithTrust(message, trust);
    return { kind: 'verdict', view };
  } catch (e) {
    if (isKakitomeError(e, 'UNAUTH_ENC')) return { kind: 'refused', reason: 'unauth-enc' };
    if (isKakitomeError(e, 'DECRYPT_FAILED')) return { kind: 'refused', reason: 'decrypt-failed' };
    if (isKakitomeError(e)) return { kind: 'refused', reason: 'unreadable', detail: `${e.code}: ${e.message}` };
    throw e;
  }
}
