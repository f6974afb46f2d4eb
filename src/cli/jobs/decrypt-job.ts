/**
 * The decrypt job: loads the recipient's keys (--cert/--key or --p12) and the
 * validator for a signature inside once, then decrypts message after message.
 */
import { decryptMessage } from '../../smime/decrypt-message.ts';
import { EXIT_OK, exitCodeForVerdict } from '../exit-codes.ts';
import type { Job } from '../job.ts';
import { assertKeyMatches, loadKeyFile, loadLeafCertificate } from '../load-credentials.ts';
import { loadPkcs12File } from '../load-pkcs12.ts';
import { createCliValidator } from '../create-cli-validator.ts';
import type { TrustOptions } from '../commands/trust-options.ts';
import { viewVerdict } from '../verdict-view.ts';

export interface DecryptJobOptions {
  cert?: string;
  key?: string;
  p12?: string;
  passphrase?: string;
  trust: TrustOptions;
}

export async function createDecryptJob(o: DecryptJobOptions): Promise<Job> {
  let keys;
  if (o.p12 !== undefined) {
    keys = await loadPkcs12File('--p12', o.p12, o.passphrase);
  } else {
    const { leaf } = await loadLeafCertificate('--cert', o.cert!);
    const key = await loadKeyFile('--key', o.key!, o.passphrase);
    assertKeyMatches(key, leaf, '--key', '--cert');
    keys = [{ key, certificate: leaf }];
  }
  const validateSigner = await createCliValidator(o.trust);
  return async (message) => {
    const { message: plain, verdict } = await decryptMessage(message, { keys, validateSigner });
    // Decrypted and not signed inside is success (with any warning, e.g. UNAUTH_ENC
    // for CBC, in the report); signed inside, the signature decides like verify.
    const exitCode = verdict.status === 'unsigned' ? EXIT_OK : exitCodeForVerdict(verdict);
    return { exitCode, output: plain, verdict: viewVerdict(verdict) };
  };
}
