/**
 * Decrypting a message as every front end decrypts: with the keys found for its
 * envelope's recipients (the key store's, findStoreKeysForMessage: whatever the
 * certificate's expiry or the key's status, so renewed and retired keys still open
 * old mail; or a tenant's, or a person's, or the CLI's key files), a signature
 * inside judged against the trust context (verify-with-trust.ts), and the rules
 * that hold for every caller: only an encrypted body is opened (a message that is
 * not encrypted, or the EFAIL shape, is MALFORMED), CBC content without a trusted
 * signature of its sender inside is not released unless the caller allows it
 * (UNAUTH_ENC), every decryption failure is the one DECRYPT_FAILED, and content
 * under a failing signature inside is withheld.
 */
import type { Writable } from 'node:stream';
import type { DecryptKey } from '../cms/enveloped-data/decrypt.ts';
import { KakitomeError } from '../errors.ts';
import { decryptMessage } from '../smime/decrypt-message.ts';
import { decryptMessageStream } from '../smime/decrypt-message-stream.ts';
import { findMessageEnvelope } from '../smime/find-message-envelope.ts';
import type { MessageVerdict } from '../smime/verdict.ts';
import { findEnvelopeKeys } from '../store/find-envelope-keys.ts';
import type { Store } from '../store/store.ts';
import { viewAndHarvest, type TrustContext, type ViewedVerdict } from './verify-with-trust.ts';

export interface DecryptWithTrustOptions {
  /** Open CBC content that no trusted signature of the sender covers (EFAIL risk): the CLI's --allow-unauthenticated. */
  allowUnauthenticated?: boolean;
}

const NOT_ENCRYPTED = 'The message is not encrypted (no application/pkcs7-mime enveloped-data or authEnveloped-data body): nothing was decrypted.';

/** The message's outermost envelope (smime/find-message-envelope.ts), or MALFORMED: it is not encrypted. */
export function requireMessageEnvelope(message: Uint8Array): Buffer {
  const envelope = findMessageEnvelope(message);
  if (envelope === undefined) throw new KakitomeError('MALFORMED', NOT_ENCRYPTED);
  return envelope;
}

/**
 * The key store's keys for the recipients the message's envelope names (issuer and
 * serial, or subject key identifier), each use audited by the store; NOT_RECIPIENT
 * when it holds none.
 */
export async function findStoreKeysForMessage(store: Store, message: Buffer): Promise<DecryptKey[]> {
  const found = await findEnvelopeKeys(store, requireMessageEnvelope(message));
  if (found.length === 0) {
    throw new KakitomeError('NOT_RECIPIENT', 'The key store holds no private key for any recipient of this message: import the recipient\'s key and certificate into the key store (a PKCS#12 file), or give them with the request.', { remedy: 'recipientKey' });
  }
  return found.map(({ key, certificate }) => ({ key, certificate }));
}

/**
 * A message whose body is not encrypted decrypts nothing: an error, never a
 * success. That includes the EFAIL shape, encrypted parts inside a multipart among
 * parts anyone could have added: only an encrypted body is opened
 * (open-message.ts), so such a message would otherwise pass unchanged.
 */
function requireDecrypted(verdict: MessageVerdict): void {
  if (verdict.layers.some((l) => l.decrypted === true)) return;
  const parts = verdict.layers.some((l) => l.decrypted === false && !l.coversBody);
  throw new KakitomeError('MALFORMED', parts ? `${NOT_ENCRYPTED} Its encrypted parts are not opened: decrypted text is never shown among parts someone else may have added (EFAIL).` : NOT_ENCRYPTED);
}

/** `output`: the decrypted message; absent when a signature inside fails (the library withholds it too). */
export async function decryptWithTrust(message: Buffer, keys: DecryptKey[], trust: TrustContext, o: DecryptWithTrustOptions = {}): Promise<ViewedVerdict & { output?: Buffer }> {
  const { message: plain, verdict } = await decryptMessage(message, { keys, validateSigner: trust.validateSigner, certificates: trust.certificates, allowLegacy: trust.allowLegacy, ...(o.allowUnauthenticated ? { allowUnauthenticated: true } : {}) });
  requireDecrypted(verdict);
  const view = await viewAndHarvest(verdict, trust);
  return { verdict, view, ...(verdict.status === 'invalid' ? {} : { output: plain }) };
}

/**
 * The same over a message read as it streams, the decrypted message written to
 * `output` (never ended) after the verdict. Thrown, or `keepOutput` false (a
 * failing signature inside): what was written is the caller's to discard.
 */
export async function decryptStreamWithTrust(input: AsyncIterable<Buffer>, output: Writable, keys: DecryptKey[], trust: TrustContext, o: DecryptWithTrustOptions = {}): Promise<ViewedVerdict & { keepOutput: boolean }> {
  const verdict = await decryptMessageStream(input, { keys, validateSigner: trust.validateSigner, certificates: trust.certificates, allowLegacy: trust.allowLegacy, output, end: false, ...(o.allowUnauthenticated ? { allowUnauthenticated: true } : {}) });
  requireDecrypted(verdict);
  const view = await viewAndHarvest(verdict, trust);
  return { verdict, view, keepOutput: verdict.status !== 'invalid' };
}
