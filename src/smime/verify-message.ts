/**
 * Verifies a whole message: multipart/signed or opaque signed-data bodies, in any
 * nesting up to limits.maxLayers, with the verdict rules of verdict.ts.
 *
 * @example
 *   const v = await verifyMessage(eml, { validateSigner });
 *   if (v.status !== 'trusted') console.log(v.code, v.summary);
 */
import type { Limits } from '../limits.ts';
import type { SignerValidator } from '../pki/types.ts';
import type { Certificate } from '../x509/certificate.ts';
import { openMessage } from './open-message.ts';
import type { MessageVerdict } from './verdict.ts';

export interface VerifyMessageOptions {
  /** Absent: the chain is "not checked" and the verdict can never be 'trusted'. */
  validateSigner?: SignerValidator;
  /** Untrusted extra certificates (as openssl -certfile): candidates for the signer certificate a message leaves out, and intermediates; never trust anchors. */
  certificates?: Certificate[];
  now?: Date;
  /** Accepted clock difference for a signing time in the future (default 5 minutes); a later signing time is ATTR_INVALID. */
  clockSkewMs?: number;
  limits?: Partial<Limits>;
  /**
   * Accept legacy message forms, flagged in the verdict: a signature without signed
   * attributes (Netscape-era clients, some AS2 receipts), checked over the content
   * itself; read in memory only (the streaming readers refuse it, ATTR_INVALID). The
   * validator's allowLegacy accepts legacy algorithms (SHA-1, short RSA keys); the
   * CLI's --allow-legacy sets both. Default false.
   */
  allowLegacy?: boolean;
}

export async function verifyMessage(message: Uint8Array, options: VerifyMessageOptions = {}): Promise<MessageVerdict> {
  return openMessage(message, options);
}
