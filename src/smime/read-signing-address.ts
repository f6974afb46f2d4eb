/**
 * The address a service may sign a message as: the one From mailbox a reader
 * sees. A front end that signs for others (the signing service, the gateway)
 * chooses the identity by it, so a message a careful verifier would refuse must
 * not get a signature at all (issue 10): it would lend a real signature to a
 * sender the reader does not see.
 *
 * The rules are the reader's (read-displayed-sender.ts, judge-message.ts), applied
 * before signing:
 * - two From (or Sender) fields: MALFORMED;
 * - a From field naming no mailbox, or several: IDENTITY_MISMATCH (the signer's
 *   certificate names one address; RFC 5322 3.6.2 would need a Sender, and
 *   readers show the first or all);
 * - anything that can show another address than the mailbox (a display name or
 *   comment carrying an address, look-alike or invisible characters, bidi
 *   controls, an encoded-word in the address): IDENTITY_MISMATCH, with the
 *   reader's sentence.
 */
import { isKakitomeError, KakitomeError } from '../errors.ts';
import { resolveLimits, type Limits } from '../limits.ts';
import type { HeaderField } from '../mime/entity.ts';
import { parseHeaderSection } from '../mime/parse-header-section.ts';
import { readDisplayedSender, refuseRepeatedOriginator } from './read-displayed-sender.ts';

export function readSigningAddress(message: Uint8Array, limits?: Partial<Limits>, answers?: SigningAddressAnswers): string {
  const buf = Buffer.isBuffer(message) ? message : Buffer.from(message.buffer, message.byteOffset, message.byteLength);
  return readSigningAddressOf(parseHeaderSection(buf, 0, buf.length, resolveLimits(limits), true).fields, answers);
}

type Answer = string | { code: 'IDENTITY_MISMATCH'; message: string };

/**
 * The answers for the From and Sender values seen lately, owned by the service that
 * signs (ServiceCache.signingAddresses) and passed to readSigningAddressOf. The
 * rules read nothing but those two values, and a service signs the same few senders
 * over and over (a newsletter's From on every message): reading the address list,
 * normalising what a reader sees and checking it cost about 3.7 KB of allocations
 * and 1.5 µs a message, a tenth of what POST /sign allocated beside the signature.
 * Bounded: values longer than MAX_KEPT_VALUE are read every time, and the map is
 * emptied when it holds `maxEntries`. Nothing in it depends on the store, so a
 * store change does not empty it.
 */
export class SigningAddressAnswers {
  readonly #answers = new Map<string, Answer>();
  readonly #maxEntries: number;

  constructor(maxEntries = 1024) {
    this.#maxEntries = maxEntries;
  }

  /** How many answers are kept now (at most maxEntries). */
  get size(): number {
    return this.#answers.size;
  }

  get(key: string): Answer | undefined {
    return this.#answers.get(key);
  }

  keep(key: string, answer: Answer): void {
    if (this.#answers.size >= this.#maxEntries) this.#answers.clear();
    this.#answers.set(key, answer);
  }
}

const MAX_KEPT_VALUE = 256;

/**
 * The same rules over the message's header fields as parsed already (splitMessage's
 * root.headers). With `answers`, an answer kept for the same From and Sender values
 * is given again (a refusal as a fresh error with the same code and words), and a
 * new one is kept; without, every call reads the values.
 */
export function readSigningAddressOf(fields: readonly HeaderField[], answers?: SigningAddressAnswers): string {
  // Two From or Sender fields are refused first, as readDisplayedSender does.
  const { from, sender } = refuseRepeatedOriginator(fields);
  if (!answers) return decideSigningAddress(fields);
  // The From value's length first, so that no From and Sender pair can spell another's key.
  const key = from && from.value.length + (sender?.value.length ?? 0) <= MAX_KEPT_VALUE ? `${from.value.length}:${from.value}${sender ? `:${sender.value}` : ''}` : undefined;
  if (key === undefined) return decideSigningAddress(fields);
  const kept = answers.get(key);
  if (typeof kept === 'string') return kept;
  if (kept) throw new KakitomeError(kept.code, kept.message);
  try {
    const address = decideSigningAddress(fields);
    answers.keep(key, address);
    return address;
  } catch (e) {
    if (isKakitomeError(e, 'IDENTITY_MISMATCH')) answers.keep(key, { code: 'IDENTITY_MISMATCH', message: e.message });
    throw e;
  }
}

function decideSigningAddress(fields: readonly HeaderField[]): string {
  const shown = readDisplayedSender(fields);
  if (shown.from.length !== 1) {
    throw new KakitomeError('IDENTITY_MISMATCH', shown.from.length === 0
      ? 'The message has no From address to sign as: it is not signed.'
      : `The From field names ${shown.from.length} mailboxes (${shown.from.join(', ')}); a signature vouches for one sender, so it is not signed.`);
  }
  if (shown.misleading.length) {
    throw new KakitomeError('IDENTITY_MISMATCH', `${shown.misleading.map((m) => m.message).join(' ')} A verifier would refuse it, so it is not signed.`);
  }
  return shown.from[0]!;
}
