/**
 * The decrypt job: loads the recipient's keys (--cert/--key or --p12) and the
 * validator for a signature inside once, then decrypts message after message.
 *
 * Without key options the key store finds the keys itself, per message, by the
 * envelope's recipient identifiers (issuer and serial, or subject key identifier),
 * whatever the certificate's expiry or the key's status: renewed and retired keys
 * still open old mail (key history).
 */
import type { DecryptKey } from '../../cms/enveloped-data/decrypt.ts';
import { KakitomeError } from '../../errors.ts';
import { decryptMessage } from '../../smime/decrypt-message.ts';
import { decryptMessageStream } from '../../smime/decrypt-message-stream.ts';
import { findEnvelopeKeys } from '../../store/find-envelope-keys.ts';
import type { Store } from '../../store/store.ts';
import { EXIT_OK, exitCodeForVerdict, type ExitCode } from '../exit-codes.ts';
import type { Job } from '../job.ts';
import { assertKeyMatches, loadKeyFile, loadLeafCertificate } from '../load-credentials.ts';
import { loadPkcs12File } from '../load-pkcs12.ts';
import type { TrustOptions } from '../commands/trust-options.ts';
import type { StoreLocation } from '../commands/store-options.ts';
import { findMessageEnvelope } from '../find-message-envelope.ts';
import { viewVerdict } from '../verdict-view.ts';
import type { MessageVerdict } from '../../smime/verdict.ts';
import type { SignerValidator } from '../../pki/types.ts';
import { harvestQuietly, openTrustContext } from './verify-job.ts';

export interface DecryptJobOptions {
  cert?: string;
  key?: string;
  p12?: string;
  passphrase?: string;
  trust: TrustOptions;
  /** The key store: trust anchors, harvesting, and the keys when no key option is given. */
  store?: StoreLocation;
  harvest?: boolean;
  /** --allow-unauthenticated: open CBC content that no trusted signature of the sender covers (EFAIL risk). */
  allowUnauthenticated?: boolean;
  /** Keys the caller found already (the signing service: its tenant's keys for this envelope); never crosses into a worker. */
  keys?: DecryptKey[];
  /** A validator the caller keeps between jobs, for a signature inside (as VerifyJobOptions.validateSigner). */
  validateSigner?: SignerValidator;
}

/**
 * Exit status of a decryption: decrypted and not signed inside is success (CBC
 * content only gets here with --allow-unauthenticated, and the report says so);
 * signed inside, the signature decides like verify.
 */
function decryptExitCode(verdict: MessageVerdict): ExitCode {
  return verdict.status === 'unsigned' ? EXIT_OK : exitCodeForVerdict(verdict);
}

const NOT_ENCRYPTED = 'The message is not encrypted (no application/pkcs7-mime enveloped-data or authEnveloped-data body): nothing was decrypted.';

/**
 * A message whose body is not encrypted decrypts nothing: an error (exit 2, nothing
 * written), never a success. That includes the EFAIL shape, encrypted parts inside
 * a multipart among parts anyone could have added: only an encrypted body is opened
 * (open-message.ts), so such a message would otherwise pass with exit 0, unchanged.
 */
function requireDecrypted(verdict: MessageVerdict): void {
  if (verdict.layers.some((l) => l.decrypted === true)) return;
  const parts = verdict.layers.some((l) => l.decrypted === false && !l.coversBody);
  throw new KakitomeError('MALFORMED', parts ? `${NOT_ENCRYPTED} Its encrypted parts are not opened: decrypted text is never shown among parts someone else may have added (EFAIL).` : NOT_ENCRYPTED);
}

export async function createDecryptJob(o: DecryptJobOptions): Promise<Job> {
  let keys: DecryptKey[] | undefined;
  if (o.keys !== undefined) {
    keys = o.keys;
  } else if (o.p12 !== undefined) {
    keys = await loadPkcs12File('--p12', o.p12, o.passphrase);
  } else if (o.cert !== undefined && o.key !== undefined) {
    const { leaf } = await loadLeafCertificate('--cert', o.cert);
    const key = await loadKeyFile('--key', o.key, o.passphrase);
    assertKeyMatches(key, leaf, '--key', '--cert');
    keys = [{ key, certificate: leaf }];
  } else if (o.store === undefined) {
    throw new KakitomeError('INVALID_ARGUMENT', 'decrypt needs your key: --cert FILE --key FILE, --p12 FILE, or a key store (kakitome init) that holds it.');
  }
  const { store, validateSigner, certificates } = await openTrustContext({ ...o.trust, ...(o.store ? { store: o.store } : {}), ...(o.validateSigner ? { validateSigner: o.validateSigner } : {}) });
  const harvested = new Set<string>();
  const unauthenticated = o.allowUnauthenticated ? { allowUnauthenticated: true } : {};
  const job: Job = async (message) => {
    const messageKeys = keys ?? (await storeKeysFor(store!, message));
    const { message: plain, verdict } = await decryptMessage(message, { keys: messageKeys, validateSigner, certificates, allowLegacy: o.trust.allowLegacy, ...unauthenticated });
    requireDecrypted(verdict);
    const view = viewVerdict(verdict);
    if (store && o.harvest !== false) await harvestQuietly(store, verdict, view, harvested, validateSigner);
    // A failing signature over the decrypted message: exit 1 and nothing written (the library withholds it too).
    return { exitCode: decryptExitCode(verdict), ...(verdict.status === 'invalid' ? {} : { output: plain }), verdict: view };
  };
  // With the keys known up front a large message streams (the key store picks keys from the envelope, so it takes the message whole).
  if (keys !== undefined) {
    const fixedKeys = keys;
    job.stream = async (input, output) => {
      const verdict = await decryptMessageStream(input, { keys: fixedKeys, validateSigner, certificates, allowLegacy: o.trust.allowLegacy, output, end: false, ...unauthenticated });
      // Thrown: what was written to `output` is discarded.
      requireDecrypted(verdict);
      const view = viewVerdict(verdict);
      if (store && o.harvest !== false) await harvestQuietly(store, verdict, view, harvested, validateSigner);
      return { exitCode: decryptExitCode(verdict), verdict: view, keepOutput: verdict.status !== 'invalid' };
    };
  }
  job.streamTakesReusedBuffers = true;
  if (store) job.close = () => store.close();
  return job;
}

async function storeKeysFor(store: Store, message: Buffer): Promise<DecryptKey[]> {
  const envelope = findMessageEnvelope(message);
  if (envelope === undefined) throw new KakitomeError('MALFORMED', NOT_ENCRYPTED);
  const found = await findEnvelopeKeys(store, envelope);
  if (found.length === 0) {
    throw new KakitomeError('NOT_RECIPIENT', 'The key store holds no private key for any recipient of this message: import yours (kakitome keys import --p12 FILE), or give --cert FILE --key FILE or --p12 FILE.');
  }
  return found.map(({ key, certificate }) => ({ key, certificate }));
}
