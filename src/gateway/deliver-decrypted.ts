/**
 * What the gateway delivers for an inbound message the library decrypted, from its
 * verdict: the one rule for both paths, in memory (process-inbound.ts) and
 * streaming (process-inbound-stream.ts), which differ only in how a copy is made
 * (a Buffer, or a spool).
 *
 * - a failing signature over the decrypted content: the library withheld it; the
 *   original goes on, still encrypted, labelled fail (`unopened`);
 * - CBC content nobody trusted vouches for, opened because policy says
 *   `deliver-decrypted`: rebuilt so that nothing in it can fetch (a CBC gadget's only
 *   way out), under a warning, labelled neutral with UNAUTH_ENC;
 * - otherwise the decrypted message, labelled with the verdict.
 */
import type { MessageVerdict } from '../smime/verdict.ts';
import type { SmimeAuthentication } from './authentication-results.ts';
import { smimeResultOfVerdict } from './smime-result.ts';

export type InboundAction = 'decrypted' | 'decrypted-unauthenticated' | 'verified' | 'labelled' | 'unopened-notice' | 'unopened' | 'held';

export const OPENED_UNAUTHENTICATED = 'CBC-encrypted content without a trusted signature of its sender inside was opened by policy: it may have been altered; links, images and styles were removed.';

/** The copies one path can make of a decrypted message; each is made only when chosen. */
export interface DecryptedCopies<M> {
  /** The message as received (still encrypted). */
  received: M;
  /** The decrypted message. */
  plain: () => M | Promise<M>;
  /** The decrypted message rebuilt with nothing fetchable in it, under the warning. */
  neutralized: () => M | Promise<M>;
  /** `m` with our Authentication-Results on top (labelWith). */
  label: (m: M, auth: SmimeAuthentication) => M;
}

export async function deliverDecrypted<M>(verdict: MessageVerdict, copies: DecryptedCopies<M>): Promise<{ message: M; action: InboundAction; auth: SmimeAuthentication }> {
  const auth = smimeResultOfVerdict(verdict);
  if (verdict.status === 'invalid') return { message: copies.label(copies.received, auth), action: 'unopened', auth };
  if (verdict.encryption?.authenticatedBy === 'none') {
    auth.result = 'neutral';
    auth.code = 'UNAUTH_ENC';
    auth.reason = OPENED_UNAUTHENTICATED;
    return { message: copies.label(await copies.neutralized(), auth), action: 'decrypted-unauthenticated', auth };
  }
  return { message: copies.label(await copies.plain(), auth), action: 'decrypted', auth };
}
