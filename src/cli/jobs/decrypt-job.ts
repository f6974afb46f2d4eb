/**
 * The decrypt job: loads the recipient's keys (--cert/--key or --p12) and the
 * trust context for a signature inside once, then decrypts message after message
 * with the library's operation (src/operations/decrypt-with-trust.ts) and maps
 * each verdict to an exit status.
 *
 * Without key options the key store finds the keys itself, per message, by the
 * envelope's recipient identifiers (issuer and serial, or subject key identifier),
 * whatever the certificate's expiry or the key's status: renewed and retired keys
 * still open old mail (key history).
 */
import type { DecryptKey } from '../../cms/enveloped-data/decrypt.ts';
import { KakitomeError } from '../../errors.ts';
import { decryptStreamWithTrust, decryptWithTrust, findStoreKeysForMessage } from '../../operations/decrypt-with-trust.ts';
import type { MessageVerdict } from '../../smime/verdict.ts';
import { EXIT_OK, exitCodeForVerdict, type ExitCode } from '../exit-codes.ts';
import type { Job } from '../job.ts';
import { assertKeyMatches, loadKeyFile, loadLeafCertificate } from '../load-credentials.ts';
import { loadPkcs12File } from '../load-pkcs12.ts';
import type { TrustJobOptions } from '../commands/trust-options.ts';
import type { StoreLocation } from '../commands/store-options.ts';
import { openTrustContext } from './verify-job.ts';

export interface DecryptJobOptions {
  cert?: string;
  key?: string;
  p12?: string;
  passphrase?: string;
  trust: TrustJobOptions;
  /** The key store: trust anchors, harvesting, and the keys when no key option is given. */
  store?: StoreLocation;
  harvest?: boolean;
  /** --allow-unauthenticated: open CBC content that no trusted signature of the sender covers (EFAIL risk). */
  allowUnauthenticated?: boolean;
}

/**
 * Exit status of a decryption: decrypted and not signed inside is success (CBC
 * content only gets here with --allow-unauthenticated, and the report says so);
 * signed inside, the signature decides like verify. A message that is not
 * encrypted is refused by the operation (MALFORMED: exit 2, nothing written).
 */
function decryptExitCode(verdict: MessageVerdict): ExitCode {
  return verdict.status === 'unsigned' ? EXIT_OK : exitCodeForVerdict(verdict);
}

export async function createDecryptJob(o: DecryptJobOptions): Promise<Job> {
  let keys: DecryptKey[] | undefined;
  if (o.p12 !== undefined) {
    keys = await loadPkcs12File('--p12', o.p12, o.passphrase);
  } else if (o.cert !== undefined && o.key !== undefined) {
    const { leaf } = await loadLeafCertificate('--cert', o.cert);
    const key = await loadKeyFile('--key', o.key, o.passphrase);
    assertKeyMatches(key, leaf, '--key', '--cert');
    keys = [{ key, certificate: leaf }];
  } else if (o.store === undefined) {
    throw new KakitomeError('INVALID_ARGUMENT', 'decrypt needs your key: --cert FILE --key FILE, --p12 FILE, or a key store (kakitome init) that holds it.');
  }
  const { store, trust } = await openTrustContext({ ...o.trust, ...(o.store ? { store: o.store } : {}), ...(o.harvest !== undefined ? { harvest: o.harvest } : {}) });
  const options = o.allowUnauthenticated ? { allowUnauthenticated: true } : {};
  const job: Job = async (message) => {
    const { verdict, view, output } = await decryptWithTrust(message, keys ?? (await findStoreKeysForMessage(store!, message)), trust, options);
    // A failing signature over the decrypted message: exit 1 and nothing written (the library withholds it too).
    return { exitCode: decryptExitCode(verdict), ...(output ? { output } : {}), verdict: view };
  };
  // With the keys known up front a large message streams (the key store picks keys from the envelope, so it takes the message whole).
  if (keys !== undefined) {
    const fixedKeys = keys;
    job.stream = async (input, output) => {
      // Thrown: what was written to `output` is discarded.
      const { verdict, view, keepOutput } = await decryptStreamWithTrust(input, output, fixedKeys, trust, options);
      return { exitCode: decryptExitCode(verdict), verdict: view, keepOutput };
    };
  }
  job.streamTakesReusedBuffers = true;
  if (store) job.close = () => store.close();
  return job;
}
